package natsbroker

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/tetherws/tether"
	"github.com/tetherws/tether/hub"
	"github.com/tetherws/tether/internal/natstest"
	"go.uber.org/goleak"
)

// TestMain fails the run if a goroutine of the hubs, the brokers, the
// connections or the embedded NATS servers outlives the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var discard = slog.New(slog.DiscardHandler)

// natsServer starts an embedded NATS server on a random loopback port (or
// port, when not 0). With routes, it joins the cluster of those route URLs.
func natsServer(t testing.TB, port int, jetstream bool, cluster bool, routes ...string) *server.Server {
	t.Helper()
	return natstest.Start(t, natstest.Options{Port: port, JetStream: jetstream, Cluster: cluster, Routes: routes})
}

// natsServerIn is natsServer with JetStream storing in dir.
func natsServerIn(t testing.TB, port int, dir string) *server.Server {
	t.Helper()
	return natstest.Start(t, natstest.Options{Port: port, JetStream: true, StoreDir: dir})
}

// natsCluster starts three routed NATS servers.
func natsCluster(t *testing.T) []*server.Server {
	t.Helper()
	s1 := natsServer(t, 0, false, true)
	route := fmt.Sprintf("nats-route://%s", s1.ClusterAddr())
	s2 := natsServer(t, 0, false, true, route)
	s3 := natsServer(t, 0, false, true, route)
	all := []*server.Server{s1, s2, s3}
	eventually(t, "the NATS routes", func() bool {
		for _, s := range all {
			if s.NumRoutes() < 2 {
				return false
			}
		}
		return true
	})
	return all
}

// logBuffer collects a node's log records.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// node is one hub of a cluster behind a WebSocket server: every connection
// to /ROOM joins ROOM (raw messages), or subscribes to it when it offers
// hub.Subprotocol, resuming after ?since=.
type node struct {
	name   string
	hub    *hub.Hub
	broker *Broker
	reg    *tether.Registry
	url    string
	logs   *logBuffer
}

func startNode(t testing.TB, name string, bo Options) *node {
	t.Helper()
	n := &node{name: name, reg: tether.NewRegistry(), logs: &logBuffer{}}
	n.reg.Logger = discard
	bo.Logger = slog.New(slog.NewTextHandler(n.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if bo.PresenceInterval == 0 {
		bo.PresenceInterval = 200 * time.Millisecond
	}
	n.broker = New(bo)
	h, err := hub.NewClustered(&hub.Options{Broker: n.broker, Node: name, Registry: n.reg, Logger: discard, Queue: 4096})
	if err != nil {
		t.Fatal(err)
	}
	n.hub = h
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		c, err := tether.Accept(w, r, &tether.AcceptOptions{Subprotocols: []string{hub.Subprotocol},
			ConnOptions: tether.ConnOptions{Registry: n.reg, PingInterval: -1, Logger: discard}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		room := strings.TrimPrefix(r.URL.Path, "/")
		if c.Subprotocol() == hub.Subprotocol {
			err = h.Subscribe(r.Context(), room, c, hub.SinceFromRequest(r))
		} else {
			err = h.Join(room, c)
		}
		if err != nil {
			return
		}
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}))
	n.url = "ws" + strings.TrimPrefix(srv.URL, "http")
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		n.reg.Shutdown(ctx, tether.StatusGoingAway, "")
		h.Close()
		wg.Wait()
	})
	return n
}

// dial opens a client to room on n; sub asks for envelopes.
func (n *node) dial(t testing.TB, room string, sub bool, since uint64) *tether.Conn {
	t.Helper()
	opts := &tether.DialOptions{FanOut: true, ConnOptions: tether.ConnOptions{
		Registry: tether.NoRegistry, PingInterval: -1, Logger: discard}}
	u := n.url + "/" + room
	if sub {
		opts.Subprotocols = []string{hub.Subprotocol}
		if since > 0 {
			u += fmt.Sprintf("?since=%d", since)
		}
	}
	c, _, err := tether.Dial(context.Background(), u, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// readEnvelope reads one envelope, failing the test after 10 s.
func readEnvelope(t testing.TB, c *tether.Conn) hub.Envelope {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, p, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	e, err := hub.ParseEnvelope(p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// joined waits until room has want members on n.
func (n *node) joined(t testing.TB, room string, want int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d members of %s on %s", want, room, n.name), func() bool { return n.hub.Len(room) == want })
}

// subscribe opens a subscriber to room on n, resuming after since, and
// reads its "subscribed" envelope: it returns the position it starts from.
func (n *node) subscribe(t testing.TB, room string, since uint64) (*tether.Conn, uint64) {
	t.Helper()
	c := n.dial(t, room, true, since)
	e := readEnvelope(t, c)
	if e.Kind != hub.KindSubscribed || e.Room != room || since > 0 && e.Seq != since {
		t.Fatalf("first envelope %+v, want subscribed to %s from %d", e, room, since)
	}
	return c, e.Seq
}
