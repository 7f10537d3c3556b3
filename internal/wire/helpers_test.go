package wire

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// bits turns a readable bit string such as "1000 0001 1 0000101" into bytes.
// Spaces are ignored; the remaining digits must be a whole number of bytes.
func bits(s string) []byte {
	s = strings.Join(strings.Fields(s), "")
	if len(s)%8 != 0 {
		panic("bits: " + s + " is not a whole number of bytes")
	}
	out := make([]byte, len(s)/8)
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '0':
		case '1':
			out[i/8] |= 0x80 >> (i % 8)
		default:
			panic("bits: bad digit in " + s)
		}
	}
	return out
}

func TestBitsHelper(t *testing.T) {
	got := bits("1000 0001 1 0000101  0011 0111")
	want := []byte{0x81, 0x85, 0x37}
	if string(got) != string(want) {
		t.Fatalf("bits = % x, want % x", got, want)
	}
}

// wantProtocolError fails t unless err is a *ProtocolError with the given code.
func wantProtocolError(t *testing.T, err error, code uint16) {
	t.Helper()
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("error = %v (%T), want *ProtocolError %d", err, err, code)
	}
	if pe.Code != code {
		t.Fatalf("error code = %d (%v), want %d", pe.Code, pe, code)
	}
}

// validPrefixRef is an independent reference for fail-fast UTF-8 validation:
// it reports whether some continuation of p (up to three more bytes) is valid
// UTF-8. The first completing byte is tried from {0x80, 0x90, 0xA0}, which
// hits every second-byte range of Unicode table 3-7; later bytes are 0x80.
func validPrefixRef(p []byte) bool {
	if utf8.Valid(p) {
		return true
	}
	buf := make([]byte, len(p), len(p)+3)
	copy(buf, p)
	for _, c := range []byte{0x80, 0x90, 0xA0} {
		s := append(buf[:len(p)], c)
		for k := 1; k <= 3; k++ {
			if utf8.Valid(s) {
				return true
			}
			s = append(s, 0x80)
		}
	}
	return false
}

func TestValidPrefixRef(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"", true}, {"a", true}, {"\xC3", true}, {"\xE0", true}, {"\xE0\xA0", true},
		{"\xE0\x80", false}, {"\xED\x9F", true}, {"\xED\xA0", false}, {"\xF0\x90", true},
		{"\xF0\x8F", false}, {"\xF4\x8F\xBF", true}, {"\xF4\x90", false}, {"\xC0", false},
		{"\xF5", false}, {"\x80", false}, {"\xCE\xBA\xE1\xBD", true},
	} {
		if got := validPrefixRef([]byte(tc.in)); got != tc.want {
			t.Errorf("validPrefixRef(%q) = %t, want %t", tc.in, got, tc.want)
		}
	}
}
