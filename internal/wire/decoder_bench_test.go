package wire

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkDecoder measures the push decoder's throughput on a server's
// input (masked frames) as an event loop would feed it: a 1 MiB stream of
// frames of one size, cut into read-sized chunks. Text frames add UTF-8
// validation. The stream is unmasked in place on every pass, which only
// flips it between two valid states (testKey keeps ASCII ASCII), so no copy
// is timed.
func BenchmarkDecoder(b *testing.B) {
	for _, kind := range []struct {
		name string
		b0   byte
	}{{"binary", 0x82}, {"text", 0x81}} {
		for _, size := range []int{1 << 10, 64 << 10} {
			for _, chunk := range []int{4 << 10, 64 << 10} {
				name := fmt.Sprintf("%s/frame=%dKiB/chunk=%dKiB", kind.name, size>>10, chunk>>10)
				b.Run(name, func(b *testing.B) { benchDecoder(b, kind.b0, size, chunk) })
			}
		}
	}
}

func benchDecoder(b *testing.B, b0 byte, size, chunk int) {
	one := frame(b0, true, strings.Repeat("tether ", size/7+1)[:size])
	var stream []byte
	for len(stream) < 1<<20 {
		stream = append(stream, one...)
	}
	h := &nopHandler{}
	var d Decoder
	d.Init(DecoderConfig{}, h)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		for p := stream; len(p) > 0; {
			n := min(chunk, len(p))
			if err := d.Feed(p[:n]); err != nil {
				b.Fatal(err)
			}
			p = p[n:]
		}
	}
	b.ReportMetric(float64(h.frames)/float64(b.N), "frames/op")
}
