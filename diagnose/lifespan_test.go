package diagnose

import (
	"strings"
	"testing"
)

// TestLivedShorter: connections that closed before their declared 20 s
// interval sent no ping, and the report says they lived shorter than it,
// never that their keepalive is off; a connection whose open says
// ping_interval=0s is the one that has it off.
func TestLivedShorter(t *testing.T) {
	rep := analyzeFile(t, "tether-serve-peers.log")
	shorter := 0
	for _, s := range rep.Streams {
		switch {
		case s.Pings == 0 && (s.LivedShorter == nil || *s.LivedShorter < 9 || *s.LivedShorter > 10):
			t.Errorf("%s: no ping in %v s, lived_shorter_s %v", s.Short, s.Declared, s.LivedShorter)
		case s.Pings > 0 && s.LivedShorter != nil:
			t.Errorf("%s: %d pings, yet lived shorter", s.Short, s.Pings)
		case s.LivedShorter != nil:
			shorter++
		}
	}
	if shorter != 3 {
		t.Errorf("%d streams lived shorter than 20 s, want 3", shorter)
	}
	var text strings.Builder
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(text.String(), "under its 20 s ping interval"); n != 3 {
		t.Errorf("%d streams said to have lived under their interval, want 3:\n%s", n, text.String())
	}

	var l tetherLog
	for _, c := range []struct{ conn, interval string }{{"short", "20s"}, {"off", "0s"}} {
		l.rec(0, "connection open", c.conn, "client", "10.0.0.1:443", " url=ws://x/a ping_interval="+c.interval)
		for at := 1.0; at < 3; at++ {
			l.rec(at, "received ping", c.conn, "client", "10.0.0.1:443", " payload=01020304")
		}
		l.rec(3, "connection closed", c.conn, "client", "10.0.0.1:443", " code=1000")
	}
	rep, err := Analyze(strings.NewReader(l.String()))
	if err != nil {
		t.Fatal(err)
	}
	var off []string
	for _, f := range rep.Findings {
		if f.Kind == KindPeerPingsOnly {
			off = append(off, f.Conns...)
		}
	}
	if len(off) != 1 || off[0] != "off" {
		t.Errorf("peer-pings-only on %v, want only on the connection with ping_interval=0s", off)
	}
	if s := streamByConn(rep, "short"); s == nil || s.LivedShorter == nil || *s.LivedShorter != 3 {
		t.Errorf("short: %+v", s)
	}
}
