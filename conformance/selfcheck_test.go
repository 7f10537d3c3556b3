package conformance

import (
	"bytes"
	"testing"
	"unicode/utf8"
)

// The suite's own codec, checked against the examples of RFC 6455 so that a
// failing case points at Tether and not at the peer.

func TestPeerCodecRFCExamples(t *testing.T) {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	hello := Frame{Op: opText, Fin: true, Payload: []byte("Hello")}
	for _, tc := range []struct {
		name string
		got  []byte
		want []byte
	}{
		{"unmasked text", appendFrame(nil, hello, false), []byte{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}},
		{"masked text", func() []byte {
			b := appendHeader(nil, hello, true, key, 5)
			p := []byte("Hello")
			maskBytes(key, 0, p)
			return append(b, p...)
		}(), []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}},
		{"fragmented first", appendFrame(nil, frag(opText, false, "Hel"), false), []byte{0x01, 0x03, 0x48, 0x65, 0x6c}},
		{"fragmented last", appendFrame(nil, frag(opCont, true, "lo"), false), []byte{0x80, 0x02, 0x6c, 0x6f}},
		{"unmasked ping", appendFrame(nil, pingFrame("Hello"), false), []byte{0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}},
		{"256 bytes binary header", appendHeader(nil, Frame{Op: opBinary, Fin: true}, false, key, 256), []byte{0x82, 0x7e, 0x01, 0x00}},
		{"64 KiB binary header", appendHeader(nil, Frame{Op: opBinary, Fin: true}, false, key, 65536), []byte{0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0}},
		{"rsv 4 = RSV1", appendHeader(nil, Frame{Op: opText, Fin: true, Rsv: 4}, false, key, 0), []byte{0xc1, 0x00}},
		{"rsv 1 = RSV3", appendHeader(nil, Frame{Op: opText, Fin: true, Rsv: 1}, false, key, 0), []byte{0x91, 0x00}},
	} {
		if !bytes.Equal(tc.got, tc.want) {
			t.Errorf("%s: % x, want % x", tc.name, tc.got, tc.want)
		}
	}
	if got := acceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Errorf("acceptKey = %q", got)
	}
}

func TestPeerMaskWordsMatchBytes(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	for off := range 4 {
		for n := range 40 {
			b := repeat("abcdefg", n)
			want := bytes.Clone(b)
			for i := range want {
				want[i] ^= key[(off+i)&3]
			}
			pos := maskBytes(key, off, b)
			if !bytes.Equal(b, want) || pos != (off+n)&3 {
				t.Fatalf("off %d n %d: % x pos %d, want % x pos %d", off, n, b, pos, want, (off+n)&3)
			}
		}
	}
}

// The validity flags of the UTF-8 vectors agree with the standard library,
// and the groups have Autobahn's sizes (145 cases in family 6 in all).
func TestUTF8Vectors(t *testing.T) {
	wantSizes := []int{5, 11, 4, 2, 4, 3, 5, 8, 5, 10, 1, 3, 5, 5, 5, 7, 8, 34, 7}
	groups := utf8Groups()
	if len(groups) != len(wantSizes) {
		t.Fatalf("%d groups, want %d", len(groups), len(wantSizes))
	}
	for i, g := range groups {
		if len(g.seqs) != wantSizes[i] {
			t.Errorf("6.%d (%s): %d sequences, want %d", i+5, g.title, len(g.seqs), wantSizes[i])
		}
		for j, s := range g.seqs {
			if utf8.ValidString(s.b) != s.valid {
				t.Errorf("6.%d.%d % x: valid=%t, utf8.ValidString says %t", i+5, j+1, s.b, s.valid, !s.valid)
			}
		}
	}
	if n := len(family6()); n != 145 {
		t.Errorf("family 6 has %d cases, want 145", n)
	}
}
