package tether

import (
	"context"
	"io"
	"strconv"
	"testing"

	"github.com/tetherws/tether/internal/wire"
)

// tcpPair returns a client and a server connection over loopback TCP, with
// keepalive off, no registry, and p as their negotiated compression (nil:
// none).
func tcpPair(tb testing.TB, opts ConnOptions, p *wire.DeflateParams) (*Conn, *Conn) {
	tb.Helper()
	a, b := socketPair(tb)
	opts.PingInterval, opts.Registry, opts.Logger = -1, NoRegistry, discard
	ccfg, scfg := opts.config(), opts.config()
	ccfg.deflate, scfg.deflate = p, p
	cc := newConn(a, nil, wire.Client, ccfg, "", "ws://loopback")
	sc := newConn(b, nil, wire.Server, scfg, "", "/")
	tb.Cleanup(func() {
		cc.CloseNow()
		sc.CloseNow()
	})
	return cc, sc
}

// streamTrip writes msg from w and reads it at r through the streaming
// reader, the zero-copy path.
func streamTrip(tb testing.TB, w, r *Conn, msg, buf []byte) {
	streamTripCtx(tb, context.Background(), w, r, msg, buf)
}

// streamTripCtx is streamTrip with ctx for the write and the read.
func streamTripCtx(tb testing.TB, ctx context.Context, w, r *Conn, msg, buf []byte) {
	if err := w.Write(ctx, Binary, msg); err != nil {
		tb.Fatal(err)
	}
	_, rd, err := r.Reader(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.ReadFull(rd, buf[:len(msg)]); err != nil {
		tb.Fatal(err)
	}
	if n, _ := rd.Read(buf); n != 0 {
		tb.Fatal("message longer than sent")
	}
}

// TestSteadyStateAllocs shows that writing and stream-reading messages that
// fit the buffers allocates nothing per message, in both roles.
func TestSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	cc, sc := tcpPair(t, ConnOptions{}, nil)
	msg := make([]byte, 1024)
	buf := make([]byte, 2048)
	for _, dir := range []struct {
		name string
		w, r *Conn
	}{{"client to server", cc, sc}, {"server to client", sc, cc}} {
		streamTrip(t, dir.w, dir.r, msg, buf) // warm the pools
		allocs := testing.AllocsPerRun(200, func() { streamTrip(t, dir.w, dir.r, msg, buf) })
		if allocs > 0 {
			t.Errorf("%s: %.1f allocations per 1 KiB message, want 0", dir.name, allocs)
		}
	}
}

func BenchmarkEcho(b *testing.B) {
	for _, size := range []int{16, 1024, 16 << 10} {
		b.Run(byteSize(size), func(b *testing.B) {
			cc, sc := tcpPair(b, ConnOptions{}, nil)
			msg := make([]byte, size)
			buf := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				streamTrip(b, cc, sc, msg, buf)
			}
		})
	}
}

func byteSize(n int) string {
	if n >= 1<<10 {
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
