package tether

import (
	"context"
	"io"
	"testing"
)

// BenchmarkFragmentSize writes 4 MiB messages split at different fragment
// sizes, to show what fragmenting costs in throughput. What it buys is
// bounded head-of-line delay for control frames: a pong waits at most one
// fragment (64 KiB is 0.5 s at 1 Mbit/s, 52 ms at 10 Mbit/s).
func BenchmarkFragmentSize(b *testing.B) {
	const size = 4 << 20
	for _, fs := range []int{16 << 10, 64 << 10, 256 << 10, 1 << 20, -1} {
		name := "unfragmented"
		if fs > 0 {
			name = byteSize(fs)
		}
		b.Run(name, func(b *testing.B) {
			cc, sc := tcpPair(b, ConnOptions{FragmentSize: fs, ReadLimit: 8 << 20, CompressionMode: CompressionDisabled}, nil)
			msg := make([]byte, size)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					_, r, err := sc.Reader(context.Background())
					if err != nil {
						return
					}
					io.Copy(io.Discard, r)
				}
			}()
			b.SetBytes(size)
			for b.Loop() {
				if err := cc.Write(context.Background(), Binary, msg); err != nil {
					b.Fatal(err)
				}
			}
			cc.CloseNow()
			<-done
		})
	}
}
