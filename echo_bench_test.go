package tether

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// readmeEcho runs the README's server loop on c with ctx, as a net/http
// handler does with r.Context(): Read a message, Write it back.
func readmeEcho(ctx context.Context, c *Conn) {
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			return
		}
	}
}

// BenchmarkReadmeEcho measures the echo a server written as the README shows
// costs: Read and Write.
func BenchmarkReadmeEcho(b *testing.B) { benchmarkEcho(b, readmeEcho) }

// BenchmarkServeEcho measures the echo written with Serve, whose handle
// writes each message back.
func BenchmarkServeEcho(b *testing.B) { benchmarkEcho(b, serveEcho) }

// serveEcho echoes with Serve until ctx ends or the connection does.
func serveEcho(ctx context.Context, c *Conn) {
	c.Serve(ctx, func(typ MessageType, p []byte) error { return c.Write(ctx, typ, p) })
}

// benchmarkEcho measures the echo the server loop echo costs, run under a
// cancellable context (a request's). The client streams its reads, which
// allocate nothing, so the allocations are the server's.
func benchmarkEcho(b *testing.B, echo func(context.Context, *Conn)) {
	for _, size := range []int{16, 1024, 16 << 10} {
		b.Run(byteSize(size), func(b *testing.B) {
			cc, sc := tcpPair(b, ConnOptions{}, nil)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				echo(ctx, sc)
			}()
			b.Cleanup(func() {
				cancel()
				sc.CloseNow()
				<-done
			})
			msg := make([]byte, size)
			buf := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				streamTrip(b, cc, cc, msg, buf)
			}
			// Wall time is mostly the loopback round trip; the CPU both
			// ends spend on it is what the library controls.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime returns the process's CPU time (user and system) so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
