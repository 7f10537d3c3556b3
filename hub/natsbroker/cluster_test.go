package natsbroker

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/tetherws/tether"
)

// clients spreads n raw clients of room over the nodes, round robin.
func clients(t testing.TB, nodes []*node, room string, n int) []*tether.Conn {
	t.Helper()
	conns := make([]*tether.Conn, n)
	for i := range conns {
		conns[i] = nodes[i%len(nodes)].dial(t, room, false, 0)
	}
	for i, nd := range nodes {
		nd.joined(t, room, (n-i+len(nodes)-1)/len(nodes))
	}
	return conns
}

// collect reads from every client until each has seen an "end" from every
// publisher, and checks that each publisher's messages arrive exactly once
// and in order: "PUB/i" for i from 0, then "PUB/end" after count of them.
func collect(t *testing.T, conns []*tether.Conn, publishers []string, count int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(conns))
	for ci, c := range conns {
		wg.Go(func() {
			next := map[string]int{}
			ended := 0
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for ended < len(publishers) {
				_, p, err := c.Read(ctx)
				if err != nil {
					errs <- fmt.Errorf("client %d: %v after %v", ci, err, next)
					return
				}
				pub, idx, _ := strings.Cut(string(p), "/")
				if idx == "end" {
					if next[pub] != count {
						errs <- fmt.Errorf("client %d: end of %s after %d messages, want %d", ci, pub, next[pub], count)
						return
					}
					ended++
					continue
				}
				i, _ := strconv.Atoi(idx)
				if i != next[pub] {
					errs <- fmt.Errorf("client %d: got %s/%d, want %s/%d", ci, pub, i, pub, next[pub])
					return
				}
				next[pub]++
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// publish broadcasts count numbered messages and an end from each node at
// once.
func publish(t *testing.T, nodes []*node, room string, count int) {
	t.Helper()
	var wg sync.WaitGroup
	for _, nd := range nodes {
		wg.Go(func() {
			for i := range count {
				if _, err := nd.hub.Broadcast(room, tether.Text, fmt.Appendf(nil, "%s/%d", nd.name, i)); err != nil {
					t.Error(err)
					return
				}
			}
			nd.hub.Broadcast(room, tether.Text, []byte(nd.name+"/end"))
		})
	}
	wg.Wait()
}

func names(nodes []*node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.name)
	}
	return out
}

// TestClusterBroadcastExactlyOnce is the acceptance test: three hubs on one
// NATS server, 1,000 clients spread over them; every node broadcasts at
// once; every client gets every message exactly once, in order per
// publisher, and presence lists every client with its node on every node.
func TestClusterBroadcastExactlyOnce(t *testing.T) {
	for _, js := range []bool{false, true} {
		t.Run(map[bool]string{false: "core", true: "jetstream"}[js], func(t *testing.T) {
			s := natsServer(t, 0, js, false)
			var nodes []*node
			for i := range 3 {
				nodes = append(nodes, startNode(t, fmt.Sprintf("n%d", i+1), Options{URL: s.ClientURL(), JetStream: js, MemoryStorage: true,
					PresenceInterval: time.Second}))
			}
			total, count := 1000, 30
			if raceEnabled {
				count = 10 // the race detector makes each write ten times slower
			}
			conns := clients(t, nodes, "lobby", total)
			done := make(chan struct{})
			go func() {
				defer close(done)
				collect(t, conns, names(nodes), count)
			}()
			publish(t, nodes, "lobby", count)
			<-done
			// Exactly once, counted where the messages are written.
			var sent int64
			for _, nd := range nodes {
				eventually(t, "the writers to finish", func() bool { return nd.hub.Stats().Pending == 0 })
				sent += nd.hub.Stats().Sent
				st := nd.broker.Stats()
				if st.Published != int64(count+1) || st.LocalOnly != 0 {
					t.Errorf("%s: published %d (want %d), local only %d; log:\n%s", nd.name, st.Published, count+1, st.LocalOnly, nd.logs)
				}
			}
			if want := int64(total) * 3 * int64(count+1); sent != want {
				t.Errorf("hubs wrote %d messages, want %d: some went twice or not at all", sent, want)
			}
			// Presence: every node sees the whole cluster.
			for _, nd := range nodes {
				eventually(t, "presence of every client on "+nd.name, func() bool {
					by := map[string]int{}
					for _, p := range nd.hub.Presence() {
						if len(p.Rooms) == 1 && p.Rooms[0] == "lobby" && p.Role == "server" {
							by[p.Node]++
						}
					}
					for i, other := range nodes {
						if by[other.name] != (total-i+2)/3 {
							return false
						}
					}
					return len(by) == 3
				})
				if n := nd.broker.Stats().Nodes; n != 3 {
					t.Errorf("%s sees %d nodes, want 3", nd.name, n)
				}
			}
		})
	}
}

// TestNodeGoneTakesOnlyItsConnections: a node that stops, with a goodbye
// or without one (it crashed: its NATS connection and its clients drop at
// once), leaves the others' presence and delivery intact.
func TestNodeGoneTakesOnlyItsConnections(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(map[bool]string{false: "goodbye", true: "crash"}[crash], func(t *testing.T) {
			s := natsServer(t, 0, false, false)
			var nodes []*node
			for i := range 3 {
				nodes = append(nodes, startNode(t, fmt.Sprintf("n%d", i+1), Options{URL: s.ClientURL()}))
			}
			conns := clients(t, nodes, "lobby", 30)
			eventually(t, "presence of all", func() bool { return len(nodes[0].hub.Presence()) == 30 })
			if crash {
				nodes[2].broker.nc.Close() // no goodbye
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				nodes[2].reg.Shutdown(ctx, tether.StatusGoingAway, "")
			} else {
				nodes[2].hub.Close()
			}
			eventually(t, "n3 to leave n1's presence", func() bool {
				for _, p := range nodes[0].hub.Presence() {
					if p.Node == "n3" {
						return false
					}
				}
				return len(nodes[0].hub.Presence()) == 20
			})
			eventually(t, "n2 to count two nodes", func() bool { return nodes[1].broker.Stats().Nodes == 2 })
			var alive []*tether.Conn
			for i, c := range conns {
				if i%3 != 2 {
					alive = append(alive, c)
				}
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				collect(t, alive, names(nodes[:2]), 10)
			}()
			publish(t, nodes[:2], "lobby", 10)
			<-done
		})
	}
}

// TestNATSServerKilled: three NATS servers in a cluster, each node on its
// own; killing the server of one node moves it to another server, and
// delivery goes on everywhere.
func TestNATSServerKilled(t *testing.T) {
	servers := natsCluster(t)
	urls := []string{servers[0].ClientURL(), servers[1].ClientURL(), servers[2].ClientURL()}
	var nodes []*node
	for i := range 3 {
		// Each node starts on its own server and knows the others.
		list := append([]string{urls[i]}, append(urls[:i:i], urls[i+1:]...)...)
		nodes = append(nodes, startNode(t, fmt.Sprintf("n%d", i+1), Options{URL: strings.Join(list, ","),
			NATSOptions: []nats.Option{nats.ReconnectWait(50 * time.Millisecond), nats.ReconnectJitter(0, 0), nats.DontRandomize()}}))
	}
	conns := clients(t, nodes, "lobby", 30)
	// Before: everyone hears everyone.
	done := make(chan struct{})
	go func() {
		defer close(done)
		collect(t, conns, names(nodes), 5)
	}()
	publish(t, nodes, "lobby", 5)
	<-done

	servers[1].Shutdown()
	servers[1].WaitForShutdown()
	eventually(t, "n2 to fail over", func() bool {
		st := nodes[1].broker.Stats()
		return st.Connected && st.Disconnects >= 1
	})
	if got := nodes[1].broker.nc.ConnectedUrl(); got == urls[1] {
		t.Fatalf("n2 still on the killed server %s", got)
	}
	// Interest moves with the reconnection; wait until a probe from each
	// node reaches every client, then check ordered delivery again.
	probe(t, nodes, conns)
	done = make(chan struct{})
	go func() {
		defer close(done)
		collect(t, conns, names(nodes), 20)
	}()
	publish(t, nodes, "lobby", 20)
	<-done
	if !strings.Contains(nodes[1].logs.String(), "cluster broker disconnected") || !strings.Contains(nodes[1].logs.String(), "cluster broker reconnected") {
		t.Errorf("n2's log lacks the disconnect or reconnect record:\n%s", nodes[1].logs)
	}
}

// probe broadcasts "NODE/probe" from every node until every client has one
// from each, and drains them.
func probe(t *testing.T, nodes []*node, conns []*tether.Conn) {
	t.Helper()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, nd := range nodes {
				nd.hub.Broadcast("lobby", tether.Text, []byte(nd.name+"/probe"))
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	var readers sync.WaitGroup
	for _, c := range conns {
		readers.Go(func() {
			seen := map[string]bool{}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for len(seen) < len(nodes) {
				_, p, err := c.Read(ctx)
				if err != nil {
					t.Errorf("probe: %v (saw %v)", err, seen)
					return
				}
				pub, _, _ := strings.Cut(string(p), "/")
				seen[pub] = true
			}
		})
	}
	readers.Wait()
	close(stop)
	wg.Wait()
	// Drain the probes still in flight: a quiet 300 ms on every client.
	for _, c := range conns {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			_, p, err := c.Read(ctx)
			cancel()
			if err != nil {
				break
			}
			if !strings.HasSuffix(string(p), "/probe") {
				t.Fatalf("unexpected %q while draining probes", p)
			}
		}
	}
}

// TestNodeNameClash: two processes with one node name are told apart and
// the clash is logged as an error.
func TestNodeNameClash(t *testing.T) {
	s := natsServer(t, 0, false, false)
	a := startNode(t, "same", Options{URL: s.ClientURL()})
	b := startNode(t, "same", Options{URL: s.ClientURL()})
	eventually(t, "the clash to be logged", func() bool {
		return strings.Contains(a.logs.String(), "another process runs as this node") &&
			strings.Contains(b.logs.String(), "another process runs as this node")
	})
}
