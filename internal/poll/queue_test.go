//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package poll

import (
	"bytes"
	"testing"
)

// FuzzQueue pushes and drains a write queue in arbitrary splits: what
// comes out is what went in, in order, and an empty queue holds nothing.
func FuzzQueue(f *testing.F) {
	f.Add([]byte{1, 200, 3, 255, 7}, uint16(300), uint8(2))
	f.Add([]byte{255, 255, 255, 255}, uint16(65535), uint8(64))
	f.Fuzz(func(t *testing.T, steps []byte, big uint16, maxVecs uint8) {
		var q queue
		var in, out []byte
		seq := byte(0)
		for i, s := range steps {
			if i%2 == 0 { // push s bytes, or a big write every 8 steps
				n := int(s)
				if i%8 == 0 {
					n = int(big) * 3
				}
				p := make([]byte, n)
				for k := range p {
					p[k] = seq
					seq++
				}
				q.push(p)
				in = append(in, p...)
				continue
			}
			vecs := q.vecs(make([][]byte, 0, max(int(maxVecs), 1)))
			n := 0
			for _, v := range vecs {
				n += len(v)
			}
			n = min(n, int(s)*97) // a short write
			var got []byte
			for _, v := range vecs {
				got = append(got, v...)
			}
			out = append(out, got[:n]...)
			q.advance(n)
		}
		for q.n > 0 {
			vecs := q.vecs(make([][]byte, 0, 4))
			for _, v := range vecs {
				out = append(out, v...)
				q.advance(len(v))
			}
		}
		if !bytes.Equal(in, out) {
			t.Fatalf("%d bytes in, %d out, different", len(in), len(out))
		}
		if q.bufs != nil || q.off != 0 {
			t.Fatal("an empty queue holds buffers")
		}
	})
}
