package diagnose

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestShortID(t *testing.T) {
	for id, want := range map[string]string{
		"01a25328-3d03-7272-95de-991e56a8f179": "56a8f179", // UUIDv7: the random tail, not the timestamp
		"194d55e7-f14a-41b2-bd53-b99689ad65d5": "89ad65d5",
		"req-123":                              "req-123", // 12 characters or fewer: as is
		"abcdefghijkl":                         "abcdefghijkl",
		"abcdefghijklm":                        "fghijklm",
	} {
		if got := ShortID(id); got != want {
			t.Errorf("ShortID(%q) = %q, want %q", id, got, want)
		}
	}
}

// TestShortIDMatchesDashboard holds diagnose's short form to the
// dashboard's: a short ID copied from one must be found in the other.
func TestShortIDMatchesDashboard(t *testing.T) {
	js, err := os.ReadFile("../dashboard/assets/fmt.js")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(js, []byte("id.length > 12 ? id.slice(-8) : id")) {
		t.Error("dashboard/assets/fmt.js no longer shortens IDs to their last 8 characters (over 12): change ShortID with it")
	}
}

// TestShortIDsInReport reads a server's log of five Tether connections
// opened within one second, whose UUIDv7 IDs share their first 8
// characters: the report and its findings name each by its distinct
// random tail, never by the shared timestamp prefix.
func TestShortIDsInReport(t *testing.T) {
	rep := analyzeFile(t, "tether-serve-peers.log")
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	out := text.String()
	seen := map[string]bool{}
	for _, s := range rep.Streams {
		if s.Short != ShortID(s.Conn) || seen[s.Short] {
			t.Errorf("stream %s: short %q, repeated %v", s.Conn, s.Short, seen[s.Short])
		}
		seen[s.Short] = true
		if !strings.Contains(out, s.Short) {
			t.Errorf("report does not name %s by %s:\n%s", s.Conn, s.Short, out)
		}
		if prefix := s.Conn[:8]; strings.Contains(out, prefix) {
			t.Errorf("report shows the timestamp prefix %s of %s:\n%s", prefix, s.Conn, out)
		}
	}
	mismatch := false
	for _, f := range rep.Findings {
		if f.Kind != KindIntervalMismatch {
			continue
		}
		mismatch = true
		for _, c := range f.Conns {
			if !strings.Contains(f.Message, ShortID(c)) {
				t.Errorf("finding does not name %s by %s: %s", c, ShortID(c), f.Message)
			}
		}
	}
	if !mismatch {
		t.Errorf("no interval-mismatch finding: %+v", rep.Findings)
	}
}
