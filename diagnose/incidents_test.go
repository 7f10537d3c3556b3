package diagnose

import (
	"fmt"
	"strings"
	"testing"
)

// TestStallIsOneIncident reads three Tether clients of one program whose
// server stalled for 3 s (a real run, stall-tether.log): one ping-timeout
// finding names all three by short ID and says the server or the network
// stalled, not three identical blocks.
func TestStallIsOneIncident(t *testing.T) {
	rep := analyzeFile(t, "stall-tether.log")
	var timeouts []Finding
	for _, f := range rep.Findings {
		if f.Kind == KindPingTimeout {
			timeouts = append(timeouts, f)
		}
	}
	if len(timeouts) != 1 {
		t.Fatalf("%d ping-timeout findings, want one incident: %+v", len(timeouts), timeouts)
	}
	f := timeouts[0]
	if len(f.Conns) != 3 || !strings.HasPrefix(f.Message, "3 connections to 127.0.0.1:") ||
		!strings.Contains(f.Message, "not of the clients") {
		t.Errorf("incident: %+v", f)
	}
	for _, c := range f.Conns {
		if !strings.Contains(f.Message, ShortID(c)) {
			t.Errorf("incident does not name %s: %s", ShortID(c), f.Message)
		}
	}
}

// TestIncidentsApart: timeouts of one endpoint minutes apart are two
// stories, timeouts of two endpoints at once are two, and a connection to
// the same endpoint that kept being answered is said to have been spared.
func TestIncidentsApart(t *testing.T) {
	var l tetherLog
	client := func(conn, url string, start, end float64, timeoutAt float64) {
		l.rec(start, "connection open", conn, "client", "10.0.0.1:443", " url="+url+" ping_interval=1s")
		for at := start + 1; at < end; at++ {
			if timeoutAt > 0 && at > timeoutAt-1 {
				l.rec(at, "sent keepalive ping", conn, "client", "10.0.0.1:443", " interval=1s")
				l.rec(timeoutAt, "timed out waiting for keepalive pong", conn, "client", "10.0.0.1:443", " timeout=1s")
				return
			}
			l.rec(at, "sent keepalive ping", conn, "client", "10.0.0.1:443", " interval=1s")
			l.rec(at+0.001, "received keepalive pong", conn, "client", "10.0.0.1:443", " rtt=1ms")
		}
	}
	client("a1", "ws://x/a", 0, 100, 30.2)
	client("a2", "ws://x/a", 0.3, 100, 30.5)
	client("a3", "ws://x/a", 0.1, 100, 0) // spared
	client("a4", "ws://x/a", 0.2, 200, 150.2)
	client("b1", "ws://y/b", 0.4, 100, 30.4)
	rep, err := Analyze(strings.NewReader(l.String()))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range rep.Findings {
		if f.Kind == KindPingTimeout {
			got = append(got, fmt.Sprint(f.Conns))
			if len(f.Conns) == 2 && !strings.Contains(f.Message, "while 1 other there kept being answered") {
				t.Errorf("incident on x/a: %s", f.Message)
			}
		}
	}
	if want := "[[a1 a2] [a4] [b1]]"; fmt.Sprint(got) != want {
		t.Errorf("ping-timeout findings %v, want %s", got, want)
	}
}
