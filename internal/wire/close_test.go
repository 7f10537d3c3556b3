package wire

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

var closeCodes = []struct {
	code  uint16
	valid bool
}{
	{0, false}, {999, false},
	{1000, true}, {1001, true}, {1002, true}, {1003, true},
	{1004, false}, {1005, false}, {1006, false},
	{1007, true}, {1008, true}, {1009, true}, {1010, true}, {1011, true},
	{1012, true}, {1013, true}, {1014, true},
	{1015, false}, {1016, false}, {1100, false}, {2000, false}, {2999, false},
	{3000, true}, {3999, true}, {4000, true}, {4999, true},
	{5000, false}, {65535, false},
}

func TestValidCloseCode(t *testing.T) {
	for _, tc := range closeCodes {
		if got := ValidCloseCode(tc.code); got != tc.valid {
			t.Errorf("ValidCloseCode(%d) = %t, want %t", tc.code, got, tc.valid)
		}
	}
}

func TestParseCloseCodes(t *testing.T) {
	for _, tc := range closeCodes {
		p := []byte{byte(tc.code >> 8), byte(tc.code), 'o', 'k'}
		code, reason, err := ParseClose(p)
		if !tc.valid {
			if err == nil {
				t.Errorf("ParseClose(code %d) = %d, %q, nil; want 1002", tc.code, code, reason)
				continue
			}
			wantProtocolError(t, err, CloseProtocolError)
			continue
		}
		if err != nil || code != tc.code || reason != "ok" {
			t.Errorf("ParseClose(code %d) = %d, %q, %v; want %d, \"ok\", nil", tc.code, code, reason, err, tc.code)
		}
	}
}

func TestParseClose(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []byte
		code    uint16
		reason  string
		errCode uint16 // 0: no error
	}{
		{name: "empty", in: nil, code: CloseNoStatus},
		{name: "empty non-nil", in: []byte{}, code: CloseNoStatus},
		{name: "one byte", in: []byte{0x03}, errCode: CloseProtocolError},
		{name: "code only", in: []byte{0x03, 0xe8}, code: CloseNormal},
		{name: "code and reason", in: []byte("\x03\xe9going away"), code: CloseGoingAway, reason: "going away"},
		{name: "UTF-8 reason", in: []byte("\x0f\xa0κόσμε"), code: 4000, reason: "κόσμε"},
		{name: "invalid UTF-8 reason", in: []byte("\x03\xe8\xff"), errCode: CloseInvalidPayload},
		{name: "surrogate in reason", in: []byte("\x03\xe8ok\xed\xa0\x80"), errCode: CloseInvalidPayload},
		{name: "truncated rune in reason", in: []byte("\x03\xe8\xe2\x82"), errCode: CloseInvalidPayload},
		{name: "invalid code beats invalid reason", in: []byte("\x03\xed\xff"), errCode: CloseProtocolError},
		{name: "1005 on the wire", in: []byte{0x03, 0xed}, errCode: CloseProtocolError},
		{name: "125 bytes", in: append([]byte{0x03, 0xe8}, strings.Repeat("r", 123)...), code: CloseNormal, reason: strings.Repeat("r", 123)},
		{name: "126 bytes", in: append([]byte{0x03, 0xe8}, strings.Repeat("r", 124)...), errCode: CloseProtocolError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, reason, err := ParseClose(tc.in)
			if tc.errCode != 0 {
				wantProtocolError(t, err, tc.errCode)
				return
			}
			if err != nil || code != tc.code || reason != tc.reason {
				t.Fatalf("ParseClose(%q) = %d, %q, %v; want %d, %q, nil", tc.in, code, reason, err, tc.code, tc.reason)
			}
		})
	}
}

func TestAppendClose(t *testing.T) {
	for _, tc := range []struct {
		code   uint16
		reason string
		want   []byte
	}{
		{CloseNormal, "", []byte{0x03, 0xe8}},
		{CloseNormal, "bye", []byte("\x03\xe8bye")},
		{CloseGoingAway, "κόσμε", []byte("\x03\xe9κόσμε")},
		{4999, "x", []byte("\x13\x87x")},
		{CloseNoStatus, "", nil},
		{CloseNoStatus, "reason dropped", nil},
	} {
		if got := AppendClose(nil, tc.code, tc.reason); !bytes.Equal(got, tc.want) {
			t.Errorf("AppendClose(nil, %d, %q) = % x, want % x", tc.code, tc.reason, got, tc.want)
		}
		// Appends, and leaves dst's contents alone.
		dst := []byte("head")
		if got := AppendClose(dst, tc.code, tc.reason); !bytes.Equal(got, append([]byte("head"), tc.want...)) {
			t.Errorf("AppendClose(\"head\", %d, %q) = %q", tc.code, tc.reason, got)
		}
	}
}

func TestAppendCloseRoundTrip(t *testing.T) {
	for _, tc := range closeCodes {
		if !tc.valid {
			continue
		}
		for _, reason := range []string{"", "normal", "κόσμε", "😀"} {
			p := AppendClose(nil, tc.code, reason)
			code, got, err := ParseClose(p)
			if err != nil || code != tc.code || got != reason {
				t.Errorf("ParseClose(AppendClose(%d, %q)) = %d, %q, %v", tc.code, reason, code, got, err)
			}
		}
	}
}

func TestTruncateReason(t *testing.T) {
	for _, tc := range []struct {
		name   string
		reason string
		want   int // bytes kept
	}{
		{"empty", "", 0},
		{"short", "bye", 3},
		{"123 ASCII", strings.Repeat("a", 123), 123},
		{"124 ASCII", strings.Repeat("a", 124), 123},
		{"200 ASCII", strings.Repeat("a", 200), 123},
		{"2-byte runes", strings.Repeat("é", 100), 122},
		{"3-byte runes", strings.Repeat("€", 60), 123},
		{"4-byte runes", strings.Repeat("😀", 40), 120},
		{"4-byte rune straddling 123", strings.Repeat("a", 121) + "😀", 121},
		{"3-byte rune ending at 123", strings.Repeat("a", 120) + "€" + "b", 123},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := TruncateReason(tc.reason)
			if len(got) != tc.want || !strings.HasPrefix(tc.reason, got) {
				t.Fatalf("TruncateReason kept %d bytes (%q), want the first %d", len(got), got, tc.want)
			}
		})
	}
}

// TestTruncateReasonBoundaries shifts runes of every length across the 123-byte
// limit and checks that the cut is on a code point boundary, as long as
// possible, and that AppendClose stays within a control frame.
func TestTruncateReasonBoundaries(t *testing.T) {
	for _, r := range []string{"a", "é", "€", "😀"} {
		for pad := 0; pad < 8; pad++ {
			for total := 110; total < 140; total++ {
				reason := strings.Repeat("x", pad)
				for len(reason) < total {
					reason += r
				}
				got := TruncateReason(reason)
				if !strings.HasPrefix(reason, got) {
					t.Fatalf("%q: result %q is not a prefix", reason, got)
				}
				if !utf8.ValidString(got) {
					t.Fatalf("%q: result %q splits a code point", reason, got)
				}
				if len(got) > MaxControlPayload-2 {
					t.Fatalf("%q: kept %d bytes, more than 123", reason, len(got))
				}
				if len(got) < len(reason) {
					_, size := utf8.DecodeRuneInString(reason[len(got):])
					if len(got)+size <= MaxControlPayload-2 {
						t.Fatalf("%q: kept %d bytes but the next rune would still fit", reason, len(got))
					}
				}
				p := AppendClose(nil, CloseGoingAway, reason)
				if len(p) > MaxControlPayload {
					t.Fatalf("AppendClose payload of %d bytes", len(p))
				}
				code, parsed, err := ParseClose(p)
				if err != nil || code != CloseGoingAway || parsed != got {
					t.Fatalf("ParseClose(AppendClose(%q)) = %d, %q, %v", reason, code, parsed, err)
				}
			}
		}
	}
}
