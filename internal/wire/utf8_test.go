package wire

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

var validUTF8 = []string{
	"",
	"a",
	"Hello, world",
	"κόσμε",
	"\u007f",
	"\u0080",       // smallest 2-byte
	"\u07ff",       // largest 2-byte
	"\u0800",       // smallest 3-byte
	"\ud7ff",       // ED 9F BF, just below the surrogates
	"\ue000",       // EE 80 80, just above the surrogates
	"\uffff",       // largest 3-byte
	"\U00010000",   // smallest 4-byte
	"\U0010ffff",   // F4 8F BF BF, largest code point
	"€😀é",          // mixed lengths back to back
	"a€b😀cκd",      // ASCII between multibyte
	"\x00\x00\x00", // NUL is valid
	strings.Repeat("😀", 20),
}

var invalidUTF8 = []struct {
	name string
	in   string
}{
	{"overlong 2-byte C0 80", "\xC0\x80"},
	{"overlong 2-byte C1 BF", "\xC1\xBF"},
	{"overlong 3-byte E0 80 80", "\xE0\x80\x80"},
	{"overlong 3-byte E0 9F BF", "\xE0\x9F\xBF"},
	{"overlong 4-byte F0 80 80 80", "\xF0\x80\x80\x80"},
	{"overlong 4-byte F0 8F BF BF", "\xF0\x8F\xBF\xBF"},
	{"surrogate ED A0 80", "\xED\xA0\x80"},
	{"surrogate ED BF BF", "\xED\xBF\xBF"},
	{"above U+10FFFF F4 90 80 80", "\xF4\x90\x80\x80"},
	{"lead F5", "\xF5\x80\x80\x80"},
	{"lead FE", "\xFE"},
	{"lead FF", "\xFF"},
	{"lone continuation", "\x80"},
	{"lone continuation BF", "\xBF"},
	{"continuation between ASCII", "a\x80b"},
	{"extra continuation", "\xC3\xA9\x80"},
	{"2-byte lead then ASCII", "\xC3\x28"},
	{"3-byte lead, bad second", "\xE2\x28\xA1"},
	{"3-byte lead, bad third", "\xE2\x82\x28"},
	{"4-byte lead, bad fourth", "\xF0\x9F\x98\x28"},
	{"invalid after valid text", "κόσμε\xF4\x90\x80\x80edited"},
	{"truncated 2-byte at end", "\xC3"},
	{"truncated 3-byte at end", "\xE2\x82"},
	{"truncated 4-byte at end", "\xF0\x9F\x98"},
	{"truncated after text", "hello\xE2"},
}

// writeAll feeds the pieces to a fresh validator and reports whether every
// Write succeeded and the message is complete.
func writeAll(pieces ...[]byte) bool {
	var v UTF8
	for _, p := range pieces {
		if !v.Write(p) {
			return false
		}
	}
	return v.Complete()
}

func TestUTF8Valid(t *testing.T) {
	for _, s := range validUTF8 {
		b := []byte(s)
		if !utf8.Valid(b) {
			t.Fatalf("fixture %q is not valid UTF-8", s)
		}
		if !writeAll(b) {
			t.Errorf("%q in one piece: rejected", s)
		}
		for i := 0; i <= len(b); i++ {
			if !writeAll(b[:i], b[i:]) {
				t.Errorf("%q split at %d: rejected", s, i)
			}
			for j := i; j <= len(b); j++ {
				if !writeAll(b[:i], b[i:j], b[j:]) {
					t.Errorf("%q split at %d and %d: rejected", s, i, j)
				}
			}
		}
		// Byte by byte, every prefix is valid, and Complete is true exactly on
		// code point boundaries.
		var v UTF8
		for i := range b {
			if !v.Write(b[i : i+1]) {
				t.Fatalf("%q byte by byte: rejected at %d", s, i)
			}
			if got, want := v.Complete(), utf8.Valid(b[:i+1]); got != want {
				t.Errorf("%q after %d bytes: Complete() = %t, want %t", s, i+1, got, want)
			}
		}
	}
}

func TestUTF8Invalid(t *testing.T) {
	for _, tc := range invalidUTF8 {
		t.Run(tc.name, func(t *testing.T) {
			b := []byte(tc.in)
			if utf8.Valid(b) {
				t.Fatalf("fixture %q is valid UTF-8", tc.in)
			}
			if writeAll(b) {
				t.Errorf("%q in one piece: accepted", tc.in)
			}
			for i := 0; i <= len(b); i++ {
				if writeAll(b[:i], b[i:]) {
					t.Errorf("%q split at %d: accepted", tc.in, i)
				}
				for j := i; j <= len(b); j++ {
					if writeAll(b[:i], b[i:j], b[j:]) {
						t.Errorf("%q split at %d and %d: accepted", tc.in, i, j)
					}
				}
			}
		})
	}
}

func TestUTF8TruncatedAtEnd(t *testing.T) {
	// A message that ends inside a code point passes every Write but is not
	// Complete.
	for _, s := range []string{"\xC3", "\xE2\x82", "\xF0\x9F\x98", "hello\xE2", "κόσμε\xF4\x8F\xBF"} {
		var v UTF8
		if !v.Write([]byte(s)) {
			t.Errorf("Write(%q) = false, want true (valid prefix)", s)
		}
		if v.Complete() {
			t.Errorf("after Write(%q): Complete() = true, want false", s)
		}
	}
}

func TestUTF8FailFast(t *testing.T) {
	for _, tc := range []struct {
		name     string
		writes   []string
		want     []bool // result of each Write
		complete bool   // Complete() after the last write, when all succeeded
	}{
		{"above U+10FFFF, 2 bytes", []string{"\xF4\x90"}, []bool{false}, false},
		{"above U+10FFFF, byte by byte", []string{"\xF4", "\x90"}, []bool{true, false}, false},
		{"F5 lead alone", []string{"\xF5"}, []bool{false}, false},
		{"C0 lead alone", []string{"\xC0"}, []bool{false}, false},
		{"C1 lead alone", []string{"\xC1"}, []bool{false}, false},
		{"overlong 3-byte prefix", []string{"\xE0\x80"}, []bool{false}, false},
		{"overlong 3-byte prefix, split", []string{"\xE0", "\x80"}, []bool{true, false}, false},
		{"overlong 4-byte prefix", []string{"\xF0\x8F"}, []bool{false}, false},
		{"surrogate prefix", []string{"\xED\xA0"}, []bool{false}, false},
		{"surrogate prefix, split", []string{"a\xED", "\xA0"}, []bool{true, false}, false},
		{"lone continuation first", []string{"\x80"}, []bool{false}, false},
		{"lead then ASCII", []string{"\xC3", "("}, []bool{true, false}, false},
		{"3-byte cut by new lead", []string{"\xE2\x82", "\xE2"}, []bool{true, false}, false},
		{"valid prefix κό + E1 BD", []string{"\xCE\xBA\xE1\xBD"}, []bool{true}, false},
		{"κόσμε across fragments", []string{"\xCE\xBA\xE1\xBD", "\xB9\xCF\x83\xCE\xBC\xCE\xB5"}, []bool{true, true}, true},
		{"largest code point byte by byte", []string{"\xF4", "\x8F", "\xBF", "\xBF"}, []bool{true, true, true, true}, true},
		{"emoji across three writes", []string{"\xF0\x9F", "\x98", "\x80A"}, []bool{true, true, true}, true},
		{"empty writes while pending", []string{"\xE2", "", "\x82", "", "\xAC"}, []bool{true, true, true, true, true}, true},
		// Autobahn 6.4.1: the second fragment is bad and must fail at once.
		{"autobahn 6.4.1", []string{"κόσμε", "\xF4\x90\x80\x80", "edited"}, []bool{true, false}, false},
		// Autobahn 6.4.2: the lead arrives at the end of a good fragment.
		{"autobahn 6.4.2", []string{"κόσμε\xF4", "\x90", "\x80\x80edited"}, []bool{true, false}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v UTF8
			for i, w := range tc.writes {
				got := v.Write([]byte(w))
				if got != tc.want[i] {
					t.Fatalf("Write #%d (%q) = %t, want %t", i, w, got, tc.want[i])
				}
				if !got {
					return
				}
			}
			if got := v.Complete(); got != tc.complete {
				t.Errorf("Complete() = %t, want %t", got, tc.complete)
			}
		})
	}
}

func TestUTF8Reset(t *testing.T) {
	var v UTF8
	if !v.Complete() {
		t.Fatal("zero value is not Complete")
	}
	if !v.Write([]byte("\xE2\x82")) || v.Complete() {
		t.Fatal("setup: want a pending sequence")
	}
	v.Reset()
	if !v.Complete() {
		t.Error("after Reset: Complete() = false")
	}
	// Without the Reset, "a" would end the pending E2 82 sequence badly.
	if !v.Write([]byte("a")) || !v.Complete() {
		t.Error("after Reset: a new message is not validated from scratch")
	}
	// Reset also recovers a validator that failed.
	v.Write([]byte("\xF4\x90"))
	v.Reset()
	if !v.Write([]byte("ok")) || !v.Complete() {
		t.Error("after a failure and Reset: valid text rejected")
	}
}

// randomUTF8ish returns bytes that are mostly made of valid code points of all
// lengths, with some boundary and random bytes mixed in.
func randomUTF8ish(r *rand.Rand, n int) []byte {
	interesting := []byte{0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff}
	runes := []rune{'a', 0x7f, 0x80, 0x7ff, 0x800, 0xd7ff, 0xe000, 0xfffd, 0xffff, 0x10000, 0x10ffff, 'κ', '€', '😀'}
	var b []byte
	for len(b) < n {
		switch r.IntN(10) {
		case 0:
			b = append(b, interesting[r.IntN(len(interesting))])
		case 1:
			b = append(b, byte(r.Uint32()))
		case 2:
			// A valid rune with one byte dropped or changed.
			e := utf8.AppendRune(nil, runes[r.IntN(len(runes))])
			i := r.IntN(len(e))
			if r.IntN(2) == 0 {
				e = append(e[:i], e[i+1:]...)
			} else {
				e[i] = interesting[r.IntN(len(interesting))]
			}
			b = append(b, e...)
		default:
			b = utf8.AppendRune(b, runes[r.IntN(len(runes))])
		}
	}
	return b
}

func TestUTF8Random(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	var valid, invalid int
	for iter := 0; iter < 20000; iter++ {
		b := randomUTF8ish(r, r.IntN(24))
		want := utf8.Valid(b)
		if want {
			valid++
		} else {
			invalid++
		}
		// Random split into up to 5 pieces.
		var pieces [][]byte
		rest := b
		for len(rest) > 0 && len(pieces) < 4 {
			k := r.IntN(len(rest) + 1)
			pieces = append(pieces, rest[:k])
			rest = rest[k:]
		}
		pieces = append(pieces, rest)
		if got := writeAll(pieces...); got != want {
			t.Fatalf("%q in pieces %q: got %t, want %t", b, pieces, got, want)
		}
		// Fail fast: byte by byte, each Write must report exactly whether the
		// bytes so far can still begin valid UTF-8.
		var v UTF8
		for i := range b {
			got := v.Write(b[i : i+1])
			if wantPrefix := validPrefixRef(b[:i+1]); got != wantPrefix {
				t.Fatalf("%q: Write of byte %d = %t, want %t", b, i, got, wantPrefix)
			}
			if !got {
				break
			}
		}
	}
	if valid < 1000 || invalid < 1000 {
		t.Fatalf("generator is unbalanced: %d valid, %d invalid", valid, invalid)
	}
}

func BenchmarkUTF8(b *testing.B) {
	ascii := []byte(strings.Repeat("The quick brown fox. ", 64)[:1024])
	var multi []byte
	for i := 0; ; i++ {
		r := []rune("κόσμε€😀é")[i%8]
		if len(multi)+utf8.RuneLen(r) > 1024 {
			break
		}
		multi = utf8.AppendRune(multi, r)
	}
	for len(multi) < 1024 {
		multi = append(multi, 'x')
	}
	for _, bc := range []struct {
		name string
		data []byte
	}{{"ascii", ascii}, {"multibyte", multi}} {
		if len(bc.data) != 1024 || !utf8.Valid(bc.data) {
			b.Fatalf("%s: bad fixture", bc.name)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.data)))
			b.ReportAllocs()
			var v UTF8
			for b.Loop() {
				v.Reset()
				if !v.Write(bc.data) || !v.Complete() {
					b.Fatal("rejected valid input")
				}
			}
		})
		b.Run(bc.name+"/split", func(b *testing.B) {
			b.SetBytes(int64(len(bc.data)))
			b.ReportAllocs()
			var v UTF8
			for b.Loop() {
				v.Reset()
				if !v.Write(bc.data[:511]) || !v.Write(bc.data[511:]) || !v.Complete() {
					b.Fatal("rejected valid input")
				}
			}
		})
	}
}
