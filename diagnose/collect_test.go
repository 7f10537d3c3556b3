package diagnose

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// pythonPings writes an unlabeled python-websockets client pinging every
// interval from start, with its pongs.
func pythonPings(start time.Time, interval time.Duration, n int) string {
	var b strings.Builder
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		ts := at.Format("2006-01-02 15:04:05") + fmt.Sprintf(",%03d", at.Nanosecond()/1e6)
		fmt.Fprintf(&b, "%s %% sending keepalive ping\n%s > PING 00 00 %02x %02x [binary, 4 bytes]\n", ts, ts, i/256, i%256)
		fmt.Fprintf(&b, "%s < PONG 00 00 %02x %02x [binary, 4 bytes]\n%s %% received keepalive pong\n", ts, i/256, i%256, ts)
	}
	return b.String()
}

func TestLongLines(t *testing.T) {
	log := strings.Repeat("x", 600<<10) + "\n" + pythonPings(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Second, 5)
	rep, err := Analyze(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Lines.Lines != 21 || rep.Lines.Skipped != 1 || len(rep.Streams) != 1 || rep.Streams[0].Pings != 5 {
		t.Fatalf("lines %+v, streams %+v", rep.Lines, rep.Streams)
	}
}

// TestFeedKeepsFilesApart: unlabeled lines of two files are never one
// connection, even when their pings would make one rhythm.
func TestFeedKeepsFilesApart(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	a := NewAnalyzer()
	for _, log := range []string{pythonPings(start, time.Second, 10), pythonPings(start.Add(500*time.Millisecond), time.Second, 10)} {
		if err := a.Feed(strings.NewReader(log)); err != nil {
			t.Fatal(err)
		}
	}
	rep := a.Report()
	if len(rep.Streams) != 2 {
		t.Fatalf("%d streams, want one per file", len(rep.Streams))
	}
	for _, s := range rep.Streams {
		if s.Pings != 10 || s.Interval == nil || s.Interval.Median != 1 {
			t.Errorf("stream %s: %d pings, interval %+v", s.Name, s.Pings, s.Interval)
		}
	}
}

func TestEmptyLog(t *testing.T) {
	rep, err := Analyze(strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if len(rep.Streams) != 0 || len(rep.Findings) != 1 || rep.Findings[0].Kind != KindNoKeepalive ||
		!strings.HasPrefix(b.String(), "No keepalive traffic") || strings.Contains(b.String(), "No findings") {
		t.Fatalf("%+v\n%s", rep, b.String())
	}
}

func ExampleAnalyze() {
	f, err := os.Open("testdata/report-asctime.log")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	rep, err := Analyze(f)
	if err != nil {
		panic(err)
	}
	for _, s := range rep.Streams {
		fmt.Printf("%s: %d pings every %.2f s\n", s.Short, s.Pings, s.Interval.Median)
	}
	for _, f := range rep.Findings {
		fmt.Println(f.Kind)
	}
	// Output:
	// unlabeled #1: 34 pings every 0.25 s
	// unlabeled #2: 34 pings every 0.25 s
	// e48bb17c: 8 pings every 1.00 s
	// interval-mismatch
	// unlabeled-stream
	// duplicate-connection
	// pings-bunched
}
