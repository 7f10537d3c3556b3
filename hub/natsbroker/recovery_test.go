package natsbroker

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tetherws/tether"
	"github.com/tetherws/tether/hub"
)

// broadcastN sends "prefix-i" for i in [from, to) from nd.
func broadcastN(t *testing.T, nd *node, room, prefix string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if _, err := nd.hub.Broadcast(room, tether.Text, fmt.Appendf(nil, "%s-%d", prefix, i)); err != nil {
			t.Fatal(err)
		}
	}
}

// expect reads envelopes "prefix-i" for i in [from, to), in order, and
// returns the position of the last.
func expect(t *testing.T, c *tether.Conn, prefix string, from, to int) uint64 {
	t.Helper()
	var last uint64
	for i := from; i < to; i++ {
		e := readEnvelope(t, c)
		if want := fmt.Sprintf("%s-%d", prefix, i); e.Kind != hub.KindMessage || string(e.Data) != want {
			t.Fatalf("got %+v (data %q), want message %q", e, e.Data, want)
		}
		if e.Seq <= last {
			t.Fatalf("position %d after %d", e.Seq, last)
		}
		last = e.Seq
	}
	return last
}

// TestRecoveryExactlyTheMissed is the acceptance test for recovery: a
// subscriber disconnected while N messages went out reconnects, to another
// node, with its last position and gets exactly those N, in order, then
// the live ones; beyond the history's size it gets a gap first.
func TestRecoveryExactlyTheMissed(t *testing.T) {
	s := natsServer(t, 0, true, false)
	const history = 50
	var nodes []*node
	for i := range 3 {
		nodes = append(nodes, startNode(t, fmt.Sprintf("n%d", i+1), Options{URL: s.ClientURL(), JetStream: true, MemoryStorage: true, History: history}))
	}
	// Another room's traffic interleaves: positions are shared, chains not.
	broadcastN(t, nodes[2], "other", "o", 0, 5)

	c, start := nodes[0].subscribe(t, "news", 0)
	if start != 0 {
		t.Fatalf("subscribed to an empty room at position %d", start)
	}
	broadcastN(t, nodes[1], "news", "m", 0, 10)
	last := expect(t, c, "m", 0, 10)
	c.CloseNow()
	nodes[0].joined(t, "news", 0)

	// Missed: 20 messages from two nodes, with the other room in between.
	broadcastN(t, nodes[1], "news", "m", 10, 20)
	broadcastN(t, nodes[2], "other", "o", 5, 10)
	broadcastN(t, nodes[2], "news", "m", 20, 30)

	c, _ = nodes[2].subscribe(t, "news", last)
	expect(t, c, "m", 10, 30)
	nodes[2].joined(t, "news", 1)
	broadcastN(t, nodes[0], "news", "m", 30, 35) // live ones follow, once
	last = expect(t, c, "m", 30, 35)
	c.CloseNow()
	nodes[2].joined(t, "news", 0)

	// Beyond the history: 80 missed, 50 kept.
	broadcastN(t, nodes[0], "news", "m", 35, 115)
	c, _ = nodes[1].subscribe(t, "news", last)
	e := readEnvelope(t, c)
	if e.Kind != hub.KindGap || e.Since != last || e.Next == 0 {
		t.Fatalf("got %+v, want a gap after %d", e, last)
	}
	first := expect(t, c, "m", 115-history, 115-history+1)
	if e.Next != first {
		t.Fatalf("gap says next %d, the first message kept is %d", e.Next, first)
	}
	expect(t, c, "m", 115-history+1, 115)

	// A fresh subscriber starts at the room's last message: no history.
	c2, start := nodes[0].subscribe(t, "news", 0)
	if start <= last {
		t.Fatalf("fresh subscriber starts at %d, before the last message (after %d)", start, last)
	}
	broadcastN(t, nodes[0], "news", "m", 115, 116)
	lastLive := expect(t, c2, "m", 115, 116)
	// Nothing missed: no gap, nothing replayed; live messages flow.
	c2.CloseNow()
	nodes[0].joined(t, "news", 0)
	c3, _ := nodes[0].subscribe(t, "news", lastLive)
	broadcastN(t, nodes[0], "news", "m", 116, 117)
	expect(t, c3, "m", 116, 117)
}

// TestRecoveryWithoutHistoryGivesGap: on core NATS a resuming subscriber
// is told at once that what it missed is lost.
func TestRecoveryWithoutHistoryGivesGap(t *testing.T) {
	s := natsServer(t, 0, false, false)
	nd := startNode(t, "n1", Options{URL: s.ClientURL()})
	c, _ := nd.subscribe(t, "news", 7)
	e := readEnvelope(t, c)
	if e.Kind != hub.KindGap || e.Since != 7 || e.Next != 0 {
		t.Fatalf("got %+v, want a gap after 7 with next unknown", e)
	}
	nd.joined(t, "news", 1)
	broadcastN(t, nd, "news", "m", 0, 1)
	if e := readEnvelope(t, c); e.Seq != 0 || e.Node != "n1" || string(e.Data) != "m-0" {
		t.Fatalf("got %+v, want m-0 from n1 without a position", e)
	}
}

// TestReconnectingSubscriber: the reconnecting client of package tether,
// its URL carrying the last position it got, loses nothing over a
// connection that drops.
func TestReconnectingSubscriber(t *testing.T) {
	s := natsServer(t, 0, true, false)
	a := startNode(t, "n1", Options{URL: s.ClientURL(), JetStream: true, MemoryStorage: true})
	b := startNode(t, "n2", Options{URL: s.ClientURL(), JetStream: true, MemoryStorage: true})
	var last atomic.Uint64
	nodes := []*node{a, b}
	opts := &tether.ReconnectOptions{InitialDelay: -1, MinDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond, Jitter: -1,
		URL: func(attempt int) string { // alternate nodes, resume after the last position
			return fmt.Sprintf("%s/news?since=%d", nodes[attempt%2].url, last.Load())
		}}
	opts.Subprotocols = []string{hub.Subprotocol}
	opts.Registry, opts.Logger, opts.PingInterval, opts.FanOut = tether.NoRegistry, discard, -1, true
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan string, 1000)
	done := make(chan error, 1)
	go func() {
		done <- tether.ReconnectFunc(ctx, a.url+"/news", opts, func(c *tether.Conn) error {
			for {
				_, p, err := c.Read(ctx)
				if err != nil {
					return nil // lost: redial
				}
				e, err := hub.ParseEnvelope(p)
				if err != nil {
					return err
				}
				switch e.Kind {
				case hub.KindGap:
					got <- "gap"
					continue
				case hub.KindSubscribed:
					last.Store(e.Seq)
					continue
				}
				last.Store(e.Seq)
				got <- string(e.Data)
			}
		})
	}()
	eventually(t, "the subscriber", func() bool { return a.hub.Len("news")+b.hub.Len("news") == 1 })
	// Publish 60 messages from both nodes; drop the subscriber's server
	// side three times on the way.
	want := []string{}
	for i := range 60 {
		nd := nodes[i%2]
		msg := fmt.Sprintf("m-%d", i)
		want = append(want, msg)
		if _, err := nd.hub.Broadcast("news", tether.Text, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if i%20 == 10 {
			ctx0, cancel0 := context.WithCancel(context.Background())
			cancel0()
			a.reg.Shutdown(ctx0, tether.StatusServiceRestart, "restart")
			b.reg.Shutdown(ctx0, tether.StatusServiceRestart, "restart")
		}
	}
	var seen []string
	timeout := time.After(20 * time.Second)
	for len(seen) < len(want) {
		select {
		case m := <-got:
			seen = append(seen, m)
		case <-timeout:
			t.Fatalf("after %d messages: %q", len(seen), seen)
		}
	}
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Fatalf("received %q\nwant      %q", seen, want)
	}
	cancel()
	<-done
}

// TestNATSOutageDegradesAndResumes: NATS stops: each node goes on
// delivering its own broadcasts to its own connections, warns and counts;
// NATS comes back on the same port: delivery across nodes resumes.
func TestNATSOutageDegradesAndResumes(t *testing.T) {
	s := natsServer(t, 0, false, false)
	port := s.Addr().(*net.TCPAddr).Port
	var nodes []*node
	for i := range 2 {
		nodes = append(nodes, startNode(t, fmt.Sprintf("n%d", i+1), Options{URL: s.ClientURL(),
			NATSOptions: []nats.Option{nats.ReconnectWait(50 * time.Millisecond), nats.ReconnectJitter(0, 0)}}))
	}
	ca := nodes[0].dial(t, "lobby", false, 0)
	cb := nodes[1].dial(t, "lobby", false, 0)
	nodes[0].joined(t, "lobby", 1)
	nodes[1].joined(t, "lobby", 1)
	eventually(t, "presence", func() bool { return nodes[0].broker.Stats().Nodes == 2 })

	s.Shutdown()
	s.WaitForShutdown()
	for _, nd := range nodes {
		eventually(t, nd.name+" to notice", func() bool { return !nd.broker.Stats().Connected })
	}
	if n, err := nodes[0].hub.Broadcast("lobby", tether.Text, []byte("during")); err != nil || n != 1 {
		t.Fatalf("broadcast during the outage: %d, %v; want 1 local delivery", n, err)
	}
	readIs(t, ca, "during")
	if st := nodes[0].broker.Stats(); st.LocalOnly != 1 || st.Disconnects != 1 {
		t.Fatalf("stats during the outage %+v: want 1 local-only broadcast and 1 disconnect", st)
	}
	if !strings.Contains(nodes[0].logs.String(), "cluster broker disconnected: delivering to this node's connections only") {
		t.Fatalf("no warning in the log:\n%s", nodes[0].logs)
	}
	metricIs(t, nodes[0].broker, "tether_cluster_connected", 0)
	metricIs(t, nodes[0].broker, "tether_cluster_local_only_total", 1)
	metricIs(t, nodes[0].broker, "tether_cluster_disconnects_total", 1)

	natsServer(t, port, false, false)
	for _, nd := range nodes {
		eventually(t, nd.name+" to reconnect", func() bool { return nd.broker.Stats().Connected })
	}
	// The subscription's interest reaches the server just after the
	// reconnection: probe until the other node hears.
	eventually(t, "delivery across nodes again", func() bool {
		nodes[0].hub.Broadcast("lobby", tether.Text, []byte("after"))
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, p, err := cb.Read(ctx)
		if string(p) == "during" {
			t.Fatal("n2 got a broadcast n1 made during the outage") // at most once, and not late
		}
		return err == nil && string(p) == "after"
	})
	if !strings.Contains(nodes[0].logs.String(), "cluster broker reconnected") {
		t.Fatalf("no record of the reconnection:\n%s", nodes[0].logs)
	}
	metricIs(t, nodes[0].broker, "tether_cluster_connected", 1)
	metricIs(t, nodes[0].broker, "tether_cluster_nodes", 2)
}

// metricIs checks one of the broker's Prometheus metrics.
func metricIs(t *testing.T, b *Broker, name string, want float64) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(b.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		got := m.GetGauge().GetValue() + m.GetCounter().GetValue()
		if got != want {
			t.Fatalf("%s = %v, want %v", name, got, want)
		}
		return
	}
	t.Fatalf("no metric %s", name)
}

func readIs(t *testing.T, c *tether.Conn, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, p, err := c.Read(ctx)
	if err != nil || string(p) != want {
		t.Fatalf("read %q, %v; want %q", p, err, want)
	}
}

// TestJetStreamOutage: with JetStream, a broadcast made while NATS is down
// is delivered on its node only, without a position; when NATS is back
// (the stream on disk), numbered delivery to every node resumes, and a
// subscriber that resumes over the outage gets what the stream kept.
func TestJetStreamOutage(t *testing.T) {
	dir := t.TempDir()
	s := natsServerIn(t, 0, dir)
	port := s.Addr().(*net.TCPAddr).Port
	opts := Options{URL: s.ClientURL(), JetStream: true,
		NATSOptions: []nats.Option{nats.ReconnectWait(50 * time.Millisecond), nats.ReconnectJitter(0, 0)}}
	a, b := startNode(t, "n1", opts), startNode(t, "n2", opts)
	ca, _ := a.subscribe(t, "news", 0)
	cb, _ := b.subscribe(t, "news", 0)
	broadcastN(t, a, "news", "m", 0, 1)
	expect(t, ca, "m", 0, 1)
	last := expect(t, cb, "m", 0, 1)

	s.Shutdown()
	s.WaitForShutdown()
	eventually(t, "n1 to notice", func() bool { return !a.broker.Stats().Connected })
	if n, err := a.hub.Broadcast("news", tether.Text, []byte("during")); err != nil || n != 1 {
		t.Fatalf("broadcast during the outage: %d, %v; want 1 local delivery", n, err)
	}
	if e := readEnvelope(t, ca); string(e.Data) != "during" || e.Seq != 0 {
		t.Fatalf("got %+v, want the local-only message without a position", e)
	}
	if st := a.broker.Stats(); st.LocalOnly != 1 {
		t.Fatalf("local only %d, want 1", st.LocalOnly)
	}

	natsServerIn(t, port, dir)
	eventually(t, "n1 to reconnect", func() bool { return a.broker.Stats().Connected })
	for tries := 0; ; tries++ {
		before := a.broker.Stats().LocalOnly
		if _, err := a.hub.Broadcast("news", tether.Text, []byte("after")); err != nil {
			t.Fatal(err)
		}
		if a.broker.Stats().LocalOnly == before {
			break // stored: numbered for every node
		}
		if e := readEnvelope(t, ca); e.Seq != 0 || string(e.Data) != "after" {
			t.Fatalf("got %+v, want the local-only \"after\"", e)
		}
		if tries > 100 {
			t.Fatal("the stream never came back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range []*tether.Conn{ca, cb} {
		if e := readEnvelope(t, c); string(e.Data) != "after" || e.Seq <= last {
			t.Fatalf("got %+v after the outage, want \"after\" with a position above %d", e, last)
		}
	}
	if !strings.Contains(a.logs.String(), "cluster broker reconnected") {
		t.Fatalf("no record of the reconnection:\n%s", a.logs)
	}
}
