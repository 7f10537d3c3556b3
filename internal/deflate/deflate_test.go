package deflate

import (
	"bytes"
	"errors"
	"testing"
)

func TestRoundTripWithTakeover(t *testing.T) {
	for _, bits := range []int{8, 9, 12, 15} {
		c, d := NewCompressor(bits, true), NewDecompressor(bits, true)
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

func TestDecompressLimit(t *testing.T) {
	var out []byte
	CompressOnce(&out, make([]byte, 100000), 15)
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
	CompressOnce(&ok, []byte("hello, hello, hello"), 15)
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
