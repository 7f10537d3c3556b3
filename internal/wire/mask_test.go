package wire

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"testing"
)

// maskRef is the byte-at-a-time masking of RFC 6455 section 5.3.
func maskRef(key [4]byte, pos int, b []byte) int {
	for i := range b {
		b[i] ^= key[pos&3]
		pos++
	}
	return pos & 3
}

func TestMaskRFCExample(t *testing.T) {
	// RFC 6455 section 5.7: "Hello" masked with 37 fa 21 3d.
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	b := []byte("Hello")
	if pos := Mask(key, 0, b); pos != 1 {
		t.Errorf("pos = %d, want 1", pos)
	}
	if want := []byte{0x7f, 0x9f, 0x4d, 0x51, 0x58}; !bytes.Equal(b, want) {
		t.Errorf("masked = % x, want % x", b, want)
	}
}

func TestMaskMatchesReference(t *testing.T) {
	key := [4]byte{0x01, 0x23, 0x45, 0x67} // distinct bytes, so a wrong pos shows
	r := rand.New(rand.NewPCG(1, 2))
	// An extra leading byte lets every length also run on a slice that does
	// not start on an 8-byte boundary.
	for off := 0; off < 8; off++ {
		for n := 0; n <= 100; n++ {
			for pos := 0; pos < 4; pos++ {
				backing := make([]byte, off+n)
				for i := range backing {
					backing[i] = byte(r.Uint32())
				}
				got := backing[off:]
				want := bytes.Clone(got)
				wantPos := maskRef(key, pos, want)
				gotPos := Mask(key, pos, got)
				if !bytes.Equal(got, want) {
					t.Fatalf("off=%d n=%d pos=%d:\n got % x\nwant % x", off, n, pos, got, want)
				}
				if gotPos != wantPos || gotPos != (pos+n)%4 {
					t.Fatalf("off=%d n=%d pos=%d: returned pos %d, want %d", off, n, pos, gotPos, (pos+n)%4)
				}
			}
		}
	}
}

func TestMaskInPieces(t *testing.T) {
	key := [4]byte{0xa1, 0xb2, 0xc3, 0xd4}
	r := rand.New(rand.NewPCG(3, 4))
	for n := 0; n <= 100; n++ {
		orig := make([]byte, n)
		for i := range orig {
			orig[i] = byte(r.Uint32())
		}
		for pos := 0; pos < 4; pos++ {
			whole := bytes.Clone(orig)
			Mask(key, pos, whole)
			for cut := 0; cut <= n; cut++ {
				pieces := bytes.Clone(orig)
				p := Mask(key, pos, pieces[:cut])
				p = Mask(key, p, pieces[cut:])
				if !bytes.Equal(pieces, whole) {
					t.Fatalf("n=%d pos=%d cut=%d: two pieces differ from one", n, pos, cut)
				}
				if p != (pos+n)%4 {
					t.Fatalf("n=%d pos=%d cut=%d: final pos %d, want %d", n, pos, cut, p, (pos+n)%4)
				}
			}
			// Masking is its own inverse.
			Mask(key, pos, whole)
			if !bytes.Equal(whole, orig) {
				t.Fatalf("n=%d pos=%d: unmasking did not restore the input", n, pos)
			}
		}
	}
}

func TestMaskLarge(t *testing.T) {
	key := [4]byte{0x10, 0x20, 0x30, 0x40}
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1023, 1024, 4099, 65536 + 3} {
		got := make([]byte, n)
		for i := range got {
			got[i] = byte(r.Uint32())
		}
		want := bytes.Clone(got)
		maskRef(key, 3, want)
		if p := Mask(key, 3, got); p != (3+n)%4 {
			t.Errorf("n=%d: pos = %d, want %d", n, p, (3+n)%4)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("n=%d: Mask differs from the reference", n)
		}
	}
}

func BenchmarkMask(b *testing.B) {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	for _, size := range []int{16, 1024, 32768} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			buf := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				Mask(key, 0, buf)
			}
		})
	}
}
