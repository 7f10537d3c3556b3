package tether

import (
	"bytes"
	"context"
	"testing"

	"github.com/tetherws/tether/internal/wire"
)

// TestWriterFrames: Writer holds a full fragment back until it knows whether
// more data follows, so a message that ends on a fragment boundary ends with
// its last data frame instead of an empty one, and the frames carry the
// message in order.
func TestWriterFrames(t *testing.T) {
	const k = 1 << 10
	for _, tc := range []struct {
		name   string
		frag   int   // FragmentSize (0: default, 64 KiB; the buffer is 16 KiB)
		writes []int // sizes of the Write calls
		frames []int // payload sizes of the frames sent
	}{
		{"16KiB in one write", 0, []int{16 * k}, []int{16 * k}},
		{"16KiB in two writes", 0, []int{8 * k, 8 * k}, []int{16 * k}},
		{"32KiB in one write", 0, []int{32 * k}, []int{16 * k, 16 * k}},
		{"16KiB twice", 0, []int{16 * k, 16 * k}, []int{16 * k, 16 * k}},
		{"20KiB in one write", 0, []int{20 * k}, []int{4 * k, 16 * k}},
		{"100KiB in one write", 0, []int{100 * k}, []int{64 * k, 20 * k, 16 * k}},
		{"fragments of 4KiB", 4 * k, []int{12 * k}, []int{4 * k, 4 * k, 4 * k}},
		{"fragments of 4KiB, uneven", 4 * k, []int{1 * k, 9 * k}, []int{4 * k, 4 * k, 2 * k}},
		{"small", 0, []int{10}, []int{10}},
		{"empty", 0, nil, []int{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, nc := pipeConn(t, wire.Server, ConnOptions{PingInterval: -1, FragmentSize: tc.frag,
				CompressionMode: CompressionDisabled, Registry: NoRegistry, Logger: discard})
			peer := newRawPeer(t, nc)
			w, err := c.Writer(context.Background(), Binary)
			if err != nil {
				t.Fatal(err)
			}
			var msg []byte
			for i, n := range tc.writes {
				p := bytes.Repeat([]byte{byte('a' + i)}, n)
				p[0] = byte(len(msg)) // the frames must keep the order
				msg = append(msg, p...)
				if m, err := w.Write(p); m != n || err != nil {
					t.Fatalf("Write: %d, %v", m, err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			var got []byte
			for i, want := range tc.frames {
				h, p := peer.readFrame()
				wantOp := wire.OpContinuation
				if i == 0 {
					wantOp = wire.OpBinary
				}
				if last := i == len(tc.frames)-1; h.Opcode != wantOp || h.Fin != last || len(p) != want {
					t.Fatalf("frame %d: %v fin=%v %d bytes, want %v fin=%v %d bytes", i, h.Opcode, h.Fin, len(p), wantOp, last, want)
				}
				got = append(got, p...)
			}
			if !bytes.Equal(got, msg) {
				t.Fatal("the frames do not carry the message")
			}
		})
	}
}
