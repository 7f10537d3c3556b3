package tether

import (
	"bytes"
	"context"
	"io"
	"testing"
)

// TestReadAllocatesOnce: Read hands the caller a buffer of its own, and that
// buffer is the only allocation a received message costs.
func TestReadAllocatesOnce(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	cc, sc := tcpPair(t, ConnOptions{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, size := range []int{16, 1024, 16 << 10} {
		msg := make([]byte, size)
		trip := func() {
			if err := sc.Write(ctx, Binary, msg); err != nil {
				t.Fatal(err)
			}
			if _, p, err := cc.Read(ctx); err != nil || len(p) != size {
				t.Fatalf("read %d bytes, %v", len(p), err)
			}
		}
		trip()
		if allocs := testing.AllocsPerRun(100, trip); allocs > 1 {
			t.Errorf("%d B: %.1f allocations per message read, want 1", size, allocs)
		}
	}
}

// TestReadAndReaderMixed: messages taken with Read stay the caller's while
// later ones go through Reader (whose buffers are recycled), whatever the
// message's size or framing.
func TestReadAndReaderMixed(t *testing.T) {
	cc, sc := tcpPair(t, ConnOptions{FragmentSize: 50_000}, nil)
	ctx := context.Background()
	sizes := []int{0, 5, 1000, 16 << 10, 70_000, 200_000} // 70,000 and up: fragmented, above firstAlloc
	var kept, want [][]byte
	buf := make([]byte, 300_000)
	for round := range 4 {
		for i, size := range sizes {
			msg := bytes.Repeat([]byte{byte(round*len(sizes) + i)}, size)
			if err := sc.Write(ctx, Binary, msg); err != nil {
				t.Fatal(err)
			}
			if (round+i)%2 == 0 {
				_, p, err := cc.Read(ctx)
				if err != nil || !bytes.Equal(p, msg) {
					t.Fatalf("round %d: Read %d bytes, %v; want %d", round, len(p), err, size)
				}
				if p == nil {
					t.Fatal("Read returned a nil slice")
				}
				kept, want = append(kept, p), append(want, msg)
				continue
			}
			_, r, err := cc.Reader(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n, err := io.ReadFull(r, buf[:size])
			if err != nil || !bytes.Equal(buf[:n], msg) {
				t.Fatalf("round %d: Reader gave %d bytes, %v; want %d", round, n, err, size)
			}
			if n, err := r.Read(buf); n != 0 || err != io.EOF {
				t.Fatalf("after the message: %d, %v; want 0, EOF", n, err)
			}
		}
	}
	for i := range kept {
		if !bytes.Equal(kept[i], want[i]) {
			t.Fatalf("message %d taken with Read changed after later reads", i)
		}
	}
}
