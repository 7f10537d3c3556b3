package deflate

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func TestRoundTripWithTakeover(t *testing.T) {
	for _, bits := range []int{8, 9, 12, 15} {
		c, d := NewCompressor(bits, 0, true), NewDecompressor(bits, true)
		for i := range 20 {
			msg := bytes.Repeat([]byte{byte('a' + i%3), 'x', 'y', byte(i)}, 50*i+1)
			var out []byte
			if err := c.Compress(&out, msg); err != nil {
				t.Fatal(err)
			}
			got, err := d.Decompress(out, 1<<20)
			if err != nil || !bytes.Equal(*got, msg) {
				t.Fatalf("bits %d message %d: %v", bits, i, err)
			}
		}
	}
}

// TestLevels: every level round-trips, with and without takeover, at the
// full window and a smaller one; a higher level is never larger on
// repetitive text; out-of-range levels mean the default.
func TestLevels(t *testing.T) {
	var text []byte
	for i := range 400 {
		text = fmt.Appendf(text, `{"id":%d,"user":"user-%d","text":"hello, again and again"},`, i, i%7)
	}
	sizes := map[int]int{}
	for _, bits := range []int{15, 12} {
		for level := 1; level <= 9; level++ {
			for _, takeover := range []bool{false, true} {
				c, d := NewCompressor(bits, level, takeover), NewDecompressor(bits, takeover)
				for i := range 3 {
					var out []byte
					if err := c.Compress(&out, text); err != nil {
						t.Fatal(err)
					}
					got, err := d.Decompress(out, 1<<20)
					if err != nil || !bytes.Equal(*got, text) {
						t.Fatalf("bits %d level %d takeover %v message %d: %v", bits, level, takeover, i, err)
					}
					if bits == 15 && !takeover && i == 0 {
						sizes[level] = len(out)
					}
				}
			}
		}
	}
	if sizes[9] > sizes[1] {
		t.Errorf("level 9 gave %d bytes, level 1 %d: want 9 no larger", sizes[9], sizes[1])
	}
	for _, level := range []int{0, -1, 10} {
		if got := NewCompressor(15, level, false).Level; got != DefaultLevel {
			t.Errorf("level %d: compressor at %d, want the default %d", level, got, DefaultLevel)
		}
	}
}

func TestDecompressLimit(t *testing.T) {
	var out []byte
	CompressOnce(&out, make([]byte, 100000), 15, 0)
	if _, err := NewDecompressor(15, false).Decompress(out, 99999); !errors.Is(err, ErrTooBig) {
		t.Fatalf("err = %v, want ErrTooBig", err)
	}
	got, err := NewDecompressor(15, false).Decompress(out, 100000)
	if err != nil || len(*got) != 100000 {
		t.Fatalf("at the limit: %v", err)
	}
}

// FuzzDecompress feeds arbitrary bytes as a compressed message: it must
// inflate or fail cleanly, never panic, and never exceed the limit.
func FuzzDecompress(f *testing.F) {
	var ok []byte
	CompressOnce(&ok, []byte("hello, hello, hello"), 15, 0)
	f.Add(ok)
	f.Add([]byte{0x00})
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Add([]byte{0x02, 0x00})
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := NewDecompressor(15, true).Decompress(append([]byte(nil), in...), 4096)
		if err == nil && len(*out) > 4096 {
			t.Fatalf("inflated %d bytes past the limit", len(*out))
		}
	})
}
