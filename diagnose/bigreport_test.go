package diagnose

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// proxyLog writes a Tether server's log behind a busy front: 2,400
// connections from 60 client hosts (40 each, their clients pinging every
// 0.5 s or 2 s, so every host is an interval mismatch), each pinging its
// client every 20 s; at 300 s the network stalls and every 10th connection's
// ping times out within 70 ms. About a million lines.
func proxyLog() string {
	var l tetherLog
	l.Grow(170 << 20)
	for i := range 2400 {
		conn := fmt.Sprintf("01a25323-%04x-7a1a-85de-d5d978d8%04x", i, i)
		remote := fmt.Sprintf("10.0.%d.%d:%d", i/40/250, (i/40)%250, 40000+i)
		start, end := float64(i%50)*0.1, 420.0
		peerIv := []float64{0.5, 2}[i%2]
		l.rec(start, "connection open", conn, "server", remote, " path=/feed ping_interval=20s")
		for at := start + peerIv; at < end; at += peerIv {
			l.rec(at, "received ping", conn, "server", remote, fmt.Sprintf(" payload=%08x", i*100000+int(at*10)))
		}
		stalled := i%10 == 0
		for at := start + 20; at < end; at += 20 {
			l.rec(at, "sent keepalive ping", conn, "server", remote, " interval=20s")
			if stalled && at >= 290 {
				l.rec(300+float64(i%7)*0.01, "timed out waiting for keepalive pong", conn, "server", remote, " timeout=10s")
				break
			}
			l.rec(at+0.001, "received keepalive pong", conn, "server", remote, " rtt=1ms")
		}
		l.rec(end, "connection closed", conn, "server", remote, " code=1000")
	}
	return l.String()
}

// TestMillionLineReportFits: the text report of a million-line log of
// thousands of connections fits in 60 lines, says how many streams it left
// out, and tells the stall as one incident; the JSON keeps every stream.
func TestMillionLineReportFits(t *testing.T) {
	if testing.Short() {
		t.Skip("a million lines")
	}
	log := proxyLog()
	start := time.Now()
	rep, err := Analyze(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d lines in %v", rep.Lines.Lines, time.Since(start).Round(time.Millisecond))
	if rep.Lines.Lines < 1_000_000 || len(rep.Streams) != 2400 {
		t.Fatalf("%d lines, %d streams; want a million lines of 2400 connections", rep.Lines.Lines, len(rep.Streams))
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	out := text.String()
	if n := strings.Count(out, "\n"); n > 60 {
		t.Errorf("text report of %d lines, want at most 60:\n%s", n, out)
	}
	for _, want := range []string{"...and 2390 more streams", "240 connections of this server on /feed timed out within 60 ms",
		"and 58 more interval-mismatch findings", "and 235 more"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	incidents := 0
	for _, f := range rep.Findings {
		if f.Kind == KindPingTimeout {
			incidents++
			if len(f.Conns) != 240 {
				t.Errorf("the incident names %d connections, want 240", len(f.Conns))
			}
		}
	}
	if incidents != 1 {
		t.Errorf("%d ping-timeout findings, want 1", incidents)
	}
}
