package faults

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/tetherws/tether"
	"github.com/tetherws/tether/hub"
	"github.com/tetherws/tether/hub/natsbroker"
	"github.com/tetherws/tether/internal/natstest"
	"github.com/tetherws/tether/internal/serve"
)

// NATS stopped, restarted and killed, and a node gone, are covered where
// the broker lives (hub/natsbroker: TestNATSOutageDegradesAndResumes,
// TestJetStreamOutage, TestNATSServerKilled, TestNodeGoneTakesOnlyItsConnections).
// Here: a node cut off from NATS by the network while NATS and the other
// nodes go on.

// natsPing is how often a node pings NATS; two unanswered pings and it
// takes the connection for dead.
const natsPing = 250 * time.Millisecond

// clusterNode is one `tether serve` node of a cluster.
type clusterNode struct {
	name   string
	srv    *serve.Server
	broker *natsbroker.Broker
	ws     string
}

func startClusterNode(t *testing.T, name, natsURL string) *clusterNode {
	t.Helper()
	b := natsbroker.New(natsbroker.Options{URL: natsURL, JetStream: true, MemoryStorage: true,
		PresenceInterval: 100 * time.Millisecond, Logger: quiet,
		NATSOptions: []nats.Option{nats.PingInterval(natsPing), nats.MaxPingsOutstanding(2),
			nats.ReconnectWait(50 * time.Millisecond), nats.ReconnectJitter(0, 0), nats.Timeout(time.Second)}})
	s := &serve.Server{
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
	return &clusterNode{name: name, srv: s, broker: b, ws: "ws" + strings.TrimPrefix(hs.URL, "http")}
}

func (n *clusterNode) dial(t *testing.T, query string, sub bool) *tether.Conn {
	t.Helper()
	opts := &tether.DialOptions{ConnOptions: tether.ConnOptions{Registry: tether.NoRegistry, PingInterval: -1, Logger: quiet}}
	if sub {
		opts.Subprotocols = []string{hub.Subprotocol}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := tether.Dial(ctx, n.ws+"/broadcast"+query, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// nextMessage reads envelopes until a message or a gap (not the
// "subscribed" notice), within d.
func nextMessage(t *testing.T, c *tether.Conn, d time.Duration) (hub.Envelope, error) {
	t.Helper()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		_, p, err := c.Read(ctx)
		cancel()
		if err != nil {
			return hub.Envelope{}, err
		}
		if strings.Contains(string(p), `"type":"subscribed"`) {
			continue
		}
		e, err := hub.ParseEnvelope(p)
		if err != nil {
			t.Fatal(err)
		}
		return e, nil
	}
}

// TestNodeCutOffFromNATS: node a reaches NATS through a proxy that starts
// dropping everything. a notices within its NATS keepalive (3 pings at
// most) and keeps serving its own connections; messages sent on node b
// meanwhile are kept by JetStream. Once the link is back, a reconnects,
// and a subscriber resuming on a with ?since= gets every message sent
// after its position exactly once, in order; the subscriber that stayed on
// a got none twice.
func TestNodeCutOffFromNATS(t *testing.T) {
	fault(t, "cut-off", func(t *testing.T) {
		ns := natstest.Start(t, natstest.Options{JetStream: true})
		p := newProxy(t, strings.TrimPrefix(ns.ClientURL(), "nats://"))
		a := startClusterNode(t, "a", "nats://"+p.addr())
		b := startClusterNode(t, "b", ns.ClientURL())
		eventually(t, "the nodes to see each other", func() bool {
			return a.broker.Stats().Nodes == 2 && b.broker.Stats().Nodes == 2
		})
		sender := b.dial(t, "", false)
		stay := a.dial(t, "", true)
		eventually(t, "members", func() bool { return a.srv.Hub().Len("broadcast") == 1 && b.srv.Hub().Len("broadcast") == 1 })
		send := func(i int) {
			t.Helper()
			if err := sender.Write(context.Background(), tether.Text, fmt.Appendf(nil, "m%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		send(0)
		first, err := nextMessage(t, stay, 10*time.Second)
		if err != nil || string(first.Data) != "m0" {
			t.Fatalf("before the cut: %+v %v", first, err)
		}

		at := time.Now()
		p.blackhole("upstream")
		p.blackhole("downstream")
		eventually(t, "a to notice", func() bool { return !a.broker.Stats().Connected })
		if d := time.Since(at); d > 3*natsPing+slack {
			t.Errorf("a noticed after %v, bound %v", d, 3*natsPing)
		} else {
			t.Logf("a noticed the cut after %v", d.Round(time.Millisecond))
		}
		const during, total = 10, 15
		for i := 1; i <= during; i++ {
			send(i)
		}
		p.remove("blackhole-upstream")
		p.remove("blackhole-downstream")
		eventually(t, "a to reconnect", func() bool { return a.broker.Stats().Connected })
		for i := during + 1; i < total; i++ {
			send(i)
		}

		back := a.dial(t, fmt.Sprintf("?since=%d", first.Seq), true)
		last := first.Seq
		for i := 1; i < total; i++ {
			e, err := nextMessage(t, back, 10*time.Second)
			if err != nil {
				t.Fatalf("resumed subscriber, message %d: %v", i, err)
			}
			if e.Kind != hub.KindMessage || string(e.Data) != fmt.Sprintf("m%d", i) || e.Seq <= last {
				t.Fatalf("resumed subscriber, message %d: %+v after seq %d", i, e, last)
			}
			last = e.Seq
		}
		if e, err := nextMessage(t, back, 300*time.Millisecond); err == nil {
			t.Fatalf("resumed subscriber got one more: %+v", e)
		}
		// The subscriber that stayed: never the same position twice.
		seen := map[uint64]bool{first.Seq: true}
		for {
			e, err := nextMessage(t, stay, 300*time.Millisecond)
			if err != nil {
				break
			}
			if e.Kind == hub.KindMessage && seen[e.Seq] {
				t.Fatalf("the subscriber that stayed got seq %d twice", e.Seq)
			}
			seen[e.Seq] = true
		}
	})
}
