package natsbroker

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherws/tether"
)

// BenchmarkCrossNode measures a broadcast across three nodes on one
// embedded NATS server, subscribers spread over the nodes: latency from
// Broadcast on n1 until a client on another node has the message (p50,
// p99), and messages delivered per second to all clients while n1 and n2
// publish flat out. Core NATS and JetStream.
func BenchmarkCrossNode(b *testing.B) {
	for _, js := range []bool{false, true} {
		for _, perNode := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/subscribers=%d", map[bool]string{false: "core", true: "jetstream"}[js], 3*perNode), func(b *testing.B) {
				benchCrossNode(b, js, perNode)
			})
		}
	}
}

func benchCrossNode(b *testing.B, js bool, perNode int) {
	s := natsServer(b, 0, js, false)
	var nodes []*node
	for i := range 3 {
		nodes = append(nodes, startNode(b, fmt.Sprintf("n%d", i+1), Options{URL: s.ClientURL(), JetStream: js, MemoryStorage: true, PresenceInterval: time.Second}))
	}
	conns := clients(b, nodes, "bench", perNode*3)
	// Every client reads; one client on n3 records arrival times.
	var (
		mu        sync.Mutex
		arrived   []time.Duration
		got       sync.WaitGroup
		delivered atomic.Int64
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var readers sync.WaitGroup
	watch := conns[2] // on n3
	for _, c := range conns {
		readers.Go(func() {
			for {
				_, p, err := c.Read(ctx)
				if err != nil {
					return
				}
				if c == watch && len(p) > 8 && p[8] == 'L' {
					sent := time.Unix(0, int64(binary.BigEndian.Uint64(p)))
					mu.Lock()
					arrived = append(arrived, time.Since(sent))
					mu.Unlock()
				}
				delivered.Add(1)
				got.Done()
			}
		})
	}
	msg := func(kind byte) []byte {
		p := make([]byte, 64)
		binary.BigEndian.PutUint64(p, uint64(time.Now().UnixNano()))
		p[8] = kind
		return p
	}
	// Latency: one message at a time, from n1.
	const rounds = 300
	for range rounds {
		got.Add(len(conns))
		if _, err := nodes[0].hub.Broadcast("bench", tether.Binary, msg('L')); err != nil {
			b.Fatal(err)
		}
		got.Wait()
	}
	// Throughput: n1 and n2 publish b.N messages each, all at once, never
	// more than a window ahead of the deliveries (the hubs' queues would
	// close the clients as slow consumers).
	b.ResetTimer()
	start := time.Now()
	got.Add(2 * b.N * len(conns))
	base := delivered.Load()
	var sent atomic.Int64
	const window = 500
	var pubs sync.WaitGroup
	for _, nd := range nodes[:2] {
		pubs.Go(func() {
			for range b.N {
				for sent.Load()-(delivered.Load()-base)/int64(len(conns)) > window {
					time.Sleep(50 * time.Microsecond)
				}
				sent.Add(1)
				nd.hub.Broadcast("bench", tether.Binary, msg('T'))
			}
		})
	}
	pubs.Wait()
	got.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	mu.Lock()
	slices.Sort(arrived)
	p50, p99 := arrived[len(arrived)/2], arrived[len(arrived)*99/100]
	mu.Unlock()
	b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
	b.ReportMetric(float64(2*b.N)/elapsed.Seconds(), "broadcasts/s")
	b.ReportMetric(float64(2*b.N*len(conns))/elapsed.Seconds(), "deliveries/s")
	cancel()
	for _, c := range conns {
		c.CloseNow()
	}
	readers.Wait()
}

// BenchmarkResume measures a subscriber resuming over 1,000 missed
// messages: from the dial to the last of them.
func BenchmarkResume(b *testing.B) {
	s := natsServer(b, 0, true, false)
	nd := startNode(b, "n1", Options{URL: s.ClientURL(), JetStream: true, MemoryStorage: true})
	c, _ := nd.subscribe(b, "r", 0)
	nd.hub.Broadcast("r", tether.Text, []byte("first"))
	start := readEnvelope(b, c).Seq // resume after it
	for i := range 1000 {
		if _, err := nd.hub.Broadcast("r", tether.Text, fmt.Appendf(nil, "m%d", i)); err != nil {
			b.Fatal(err)
		}
	}
	for range 1000 {
		readEnvelope(b, c)
	}
	c.CloseNow()
	b.ResetTimer()
	for range b.N {
		c, _ := nd.subscribe(b, "r", start)
		for range 1000 {
			readEnvelope(b, c)
		}
		c.CloseNow()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/resume")
}
