package tether

import (
	"context"
	"math/rand/v2"
	"net"
	"runtime"
	"testing"

	"github.com/tetherws/tether/internal/wire"
)

// compressionModes are the configurations docs/compression.md compares.
var compressionModes = []struct {
	name  string
	p     *wire.DeflateParams // nil: no compression
	mode  CompressionMode
	level int
}{
	{"off", nil, CompressionDisabled, 0},
	{"no-context-takeover", &wire.DeflateParams{ServerNoContextTakeover: true, ClientNoContextTakeover: true}, CompressionNoContextTakeover, 0},
	{"no-context-takeover-level-9", &wire.DeflateParams{ServerNoContextTakeover: true, ClientNoContextTakeover: true}, CompressionNoContextTakeover, 9},
	{"takeover-15", &wire.DeflateParams{}, CompressionContextTakeover, 0},
	{"takeover-12", &wire.DeflateParams{ServerMaxWindowBits: 12, ClientMaxWindowBits: 12}, CompressionContextTakeover, 0},
	{"takeover-9", &wire.DeflateParams{ServerMaxWindowBits: 9, ClientMaxWindowBits: 9}, CompressionContextTakeover, 0},
}

// BenchmarkCompression sends 1 KiB JSON-like messages from server to client
// and reports throughput and the compression ratio on the wire.
func BenchmarkCompression(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	msgs := make([][]byte, 64)
	for i := range msgs {
		msgs[i] = jsonish(r, 1024)
	}
	for _, m := range compressionModes {
		b.Run(m.name, func(b *testing.B) {
			cc, sc := tcpPair(b, ConnOptions{CompressionMode: m.mode, CompressionLevel: m.level}, m.p)
			ctx := context.Background()
			counter := &countingConn{Conn: sc.nc}
			sc.nc = counter
			b.SetBytes(1024)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := sc.Write(ctx, Text, msgs[i%len(msgs)]); err != nil {
					b.Fatal(err)
				}
				if _, _, err := cc.Read(ctx); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(counter.n)/float64(i*1024), "wire/plain")
		})
	}
}

type countingConn struct {
	net.Conn
	n int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.Conn.Write(p)
}

// TestIdleCompressedHeap reports (with -v) the heap an idle connection pair
// keeps after a few messages, per compression mode: what context takeover
// costs in memory. It asserts only that no-context-takeover keeps no window.
func TestIdleCompressedHeap(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("measurement")
	}
	const n = 200
	r := rand.New(rand.NewPCG(5, 6))
	perConn := map[string]float64{}
	for _, m := range compressionModes {
		runtime.GC()
		runtime.GC() // twice: pooled buffers survive one collection
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		pairs := make([][2]*Conn, n)
		for i := range pairs {
			cc, sc := tcpPair(t, ConnOptions{CompressionMode: m.mode, CompressionLevel: m.level}, m.p)
			for range 3 {
				sc.Write(context.Background(), Text, jsonish(r, 2048))
				cc.Read(context.Background())
				cc.Write(context.Background(), Text, jsonish(r, 2048))
				sc.Read(context.Background())
			}
			pairs[i] = [2]*Conn{cc, sc}
		}
		runtime.GC()
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		perConn[m.name] = float64(after.HeapInuse-before.HeapInuse) / (2 * n)
		t.Logf("%-20s %7.0f B heap per idle connection (client and server averaged)", m.name, perConn[m.name])
		for _, p := range pairs {
			p[0].CloseNow()
			p[1].CloseNow()
		}
	}
	if d := perConn["no-context-takeover"] - perConn["off"]; d > 2048 {
		t.Errorf("no-context-takeover costs %.0f B more per idle connection than no compression; want no window kept", d)
	}
}
