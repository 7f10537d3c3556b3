package serve

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/tetherws/tether"
	"github.com/tetherws/tether/hub"
	"github.com/tetherws/tether/hub/natsbroker"
	"github.com/tetherws/tether/internal/natstest"
)

var quiet = slog.New(slog.DiscardHandler)

// natsServer starts an embedded NATS server on a free loopback port, with
// JetStream when asked, and stops it when the test ends.
func natsServer(t *testing.T, jetstream bool) *server.Server {
	t.Helper()
	return natstest.Start(t, natstest.Options{JetStream: jetstream})
}

// node is one serve.Server of a cluster on loopback.
type node struct {
	name   string
	srv    *Server
	broker *natsbroker.Broker
	ws     string // ws://127.0.0.1:PORT
}

// startNode starts a Server named name on the NATS server at url.
func startNode(t *testing.T, name, url string, jetstream bool) *node {
	t.Helper()
	b := natsbroker.New(natsbroker.Options{URL: url, JetStream: jetstream, MemoryStorage: true,
		PresenceInterval: 100 * time.Millisecond, Logger: quiet})
	s := &Server{
		Options:   tether.AcceptOptions{ConnOptions: tether.ConnOptions{Logger: quiet, PingInterval: -1}},
		Broadcast: hub.Options{Broker: b, Node: name},
	}
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx, tether.StatusGoingAway, "test over")
	})
	return &node{name: name, srv: s, broker: b, ws: "ws" + strings.TrimPrefix(hs.URL, "http")}
}

// dial opens a client to path on n; with sub it offers hub.Subprotocol.
func (n *node) dial(t *testing.T, path string, sub bool) *tether.Conn {
	t.Helper()
	opts := &tether.DialOptions{FanOut: true, ConnOptions: tether.ConnOptions{
		Registry: tether.NoRegistry, PingInterval: -1, Logger: quiet}}
	if sub {
		opts.Subprotocols = []string{hub.Subprotocol}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := tether.Dial(ctx, n.ws+path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// members waits until n's /broadcast room has want members.
func (n *node) members(t *testing.T, want int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d members on %s", want, n.name), func() bool { return n.srv.Hub().Len(broadcastRoom) == want })
}

// cluster starts nodes a and b on one NATS server and waits until each sees
// the other (presence), so that each has its subscriptions in place.
func cluster(t *testing.T, jetstream bool) (a, b *node) {
	t.Helper()
	ns := natsServer(t, jetstream)
	a = startNode(t, "a", ns.ClientURL(), jetstream)
	b = startNode(t, "b", ns.ClientURL(), jetstream)
	eventually(t, "the nodes to see each other", func() bool {
		return a.broker.Stats().Nodes == 2 && b.broker.Stats().Nodes == 2
	})
	return a, b
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// read reads one message within d.
func read(c *tether.Conn, d time.Duration) (tether.MessageType, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return c.Read(ctx)
}

// quietFor checks that c receives nothing more for d.
func quietFor(t *testing.T, c *tether.Conn, what string, d time.Duration) {
	t.Helper()
	if _, p, err := read(c, d); err == nil {
		t.Fatalf("%s got a second message %q", what, p)
	}
}

// readEnvelope reads the next envelope but for a "subscribed" one, which
// the hub may send first: it says where the subscriber starts, the hub's
// concern.
func readEnvelope(t *testing.T, c *tether.Conn) hub.Envelope {
	t.Helper()
	for {
		typ, p, err := read(c, 10*time.Second)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if typ != tether.Text {
			t.Fatalf("envelope of type %v", typ)
		}
		if strings.Contains(string(p), `"type":"subscribed"`) {
			continue
		}
		e, err := hub.ParseEnvelope(p)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
}

// TestClusterBroadcastOnce: a message sent on node a's /broadcast reaches
// a's and b's clients exactly once each, raw for plain clients and in an
// envelope naming node a for a subscriber; /echo stays out of it.
func TestClusterBroadcastOnce(t *testing.T) {
	for _, js := range []bool{false, true} {
		t.Run(fmt.Sprintf("jetstream=%v", js), func(t *testing.T) {
			a, b := cluster(t, js)
			sender := a.dial(t, "/broadcast", false)
			onB := b.dial(t, "/broadcast", false)
			subB := b.dial(t, "/broadcast", true)
			if got := subB.Subprotocol(); got != hub.Subprotocol {
				t.Fatalf("subprotocol %q, want %q", got, hub.Subprotocol)
			}
			echo := b.dial(t, "/echo", false)
			a.members(t, 1)
			b.members(t, 2)

			if err := sender.Write(t.Context(), tether.Text, []byte("hello from a")); err != nil {
				t.Fatal(err)
			}
			for name, c := range map[string]*tether.Conn{"sender on a": sender, "client on b": onB} {
				typ, p, err := read(c, 10*time.Second)
				if err != nil || typ != tether.Text || string(p) != "hello from a" {
					t.Fatalf("%s: %v %q %v", name, typ, p, err)
				}
			}
			e := readEnvelope(t, subB)
			if e.Kind != hub.KindMessage || e.Room != broadcastRoom || e.Node != "a" || string(e.Data) != "hello from a" {
				t.Fatalf("envelope %+v", e)
			}
			if js && e.Seq == 0 {
				t.Fatalf("envelope without a position under JetStream: %+v", e)
			}
			// Binary too, and nothing twice.
			if err := onB.Write(t.Context(), tether.Binary, []byte{0, 1, 2}); err != nil {
				t.Fatal(err)
			}
			for name, c := range map[string]*tether.Conn{"sender on a": sender, "client on b": onB} {
				typ, p, err := read(c, 10*time.Second)
				if err != nil || typ != tether.Binary || string(p) != "\x00\x01\x02" {
					t.Fatalf("%s: %v %q %v", name, typ, p, err)
				}
			}
			if e := readEnvelope(t, subB); e.Type != tether.Binary || e.Node != "b" || string(e.Data) != "\x00\x01\x02" {
				t.Fatalf("envelope %+v", e)
			}
			quietFor(t, sender, "sender on a", 300*time.Millisecond)
			quietFor(t, onB, "client on b", 10*time.Millisecond)
			quietFor(t, subB, "subscriber on b", 10*time.Millisecond)
			quietFor(t, echo, "echo client on b", 10*time.Millisecond)
		})
	}
}

// TestClusterResume: with JetStream a subscriber that comes back with
// ?since=N gets the messages after N, from whichever node, then the live
// ones, each once.
func TestClusterResume(t *testing.T) {
	a, b := cluster(t, true)
	sender := a.dial(t, "/broadcast", false)
	sub := b.dial(t, "/broadcast", true)
	a.members(t, 1)
	b.members(t, 1)
	var seqs []uint64
	for i := range 3 {
		if err := sender.Write(t.Context(), tether.Text, fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
		e := readEnvelope(t, sub)
		if string(e.Data) != fmt.Sprintf("m%d", i) {
			t.Fatalf("envelope %d: %+v", i, e)
		}
		seqs = append(seqs, e.Seq)
	}
	sub.CloseNow()

	back := b.dialPath(t, fmt.Sprintf("/broadcast?since=%d", seqs[0]))
	for i := 1; i < 3; i++ {
		e := readEnvelope(t, back)
		if e.Kind != hub.KindMessage || e.Seq != seqs[i] || string(e.Data) != fmt.Sprintf("m%d", i) {
			t.Fatalf("replayed %d: %+v, want seq %d", i, e, seqs[i])
		}
	}
	if err := sender.Write(t.Context(), tether.Text, []byte("live")); err != nil {
		t.Fatal(err)
	}
	if e := readEnvelope(t, back); string(e.Data) != "live" || e.Seq <= seqs[2] {
		t.Fatalf("live envelope %+v", e)
	}
	quietFor(t, back, "resumed subscriber", 200*time.Millisecond)
}

// dialPath dials path on n as a subscriber.
func (n *node) dialPath(t *testing.T, path string) *tether.Conn { return n.dial(t, path, true) }

// TestResumeWithoutHistory: without JetStream nothing is kept, so a
// subscriber resuming after a position is told of the gap first.
func TestResumeWithoutHistory(t *testing.T) {
	a, _ := cluster(t, false)
	c := a.dialPath(t, "/broadcast?since=7")
	if e := readEnvelope(t, c); e.Kind != hub.KindGap || e.Since != 7 || e.Room != broadcastRoom {
		t.Fatalf("first envelope %+v, want a gap after 7", e)
	}
}

// TestClusterPresence: each node's hub lists the other's connections, /echo
// included, with their node.
func TestClusterPresence(t *testing.T) {
	a, b := cluster(t, false)
	a.dial(t, "/echo", false)
	b.dial(t, "/broadcast", true)
	eventually(t, "both connections in a's presence", func() bool {
		nodes := map[string]string{}
		for _, p := range a.srv.Hub().Presence() {
			nodes[p.Path] = p.Node
		}
		return len(nodes) == 2 && nodes["/echo"] == "a" && nodes["/broadcast"] == "b"
	})
}

// TestEchoRefusesSubprotocol: only /broadcast speaks hub.Subprotocol; /echo
// accepts the client without selecting it, and echoes as ever.
func TestEchoRefusesSubprotocol(t *testing.T) {
	s := &Server{Options: tether.AcceptOptions{ConnOptions: tether.ConnOptions{Logger: quiet, PingInterval: -1}}}
	hs := httptest.NewServer(s.Handler())
	defer func() {
		hs.Close()
		s.Shutdown(context.Background(), tether.StatusGoingAway, "")
	}()
	n := &node{ws: "ws" + strings.TrimPrefix(hs.URL, "http")}
	c := n.dial(t, "/echo", true)
	if sp := c.Subprotocol(); sp != "" {
		t.Fatalf("/echo selected %q", sp)
	}
	if err := c.Write(t.Context(), tether.Text, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := read(c, 5*time.Second); err != nil || string(p) != "x" {
		t.Fatalf("echo: %q %v", p, err)
	}
	if sub := n.dial(t, "/broadcast", true); sub.Subprotocol() != hub.Subprotocol {
		t.Fatalf("/broadcast selected %q", sub.Subprotocol())
	}
}

// TestInitError: a broker that cannot start (JetStream asked of a server
// without it) fails Init, and /broadcast answers 503 instead of serving a
// node cut off from its cluster.
func TestInitError(t *testing.T) {
	ns := natsServer(t, false)
	s := &Server{
		Options: tether.AcceptOptions{ConnOptions: tether.ConnOptions{Logger: quiet}},
		Broadcast: hub.Options{Node: "a", Broker: natsbroker.New(natsbroker.Options{URL: ns.ClientURL(),
			JetStream: true, Logger: quiet})},
	}
	if err := s.Init(); err == nil {
		t.Fatal("Init succeeded without JetStream")
	}
	hs := httptest.NewServer(s.Handler())
	defer func() {
		hs.Close()
		s.Shutdown(context.Background(), tether.StatusGoingAway, "")
	}()
	resp, err := http.Get(hs.URL + "/broadcast")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", resp.StatusCode)
	}
}
