package diagnose

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"testing"
	"time"
)

// synthLine is one line of a synthetic log, with the time it sorts by.
type synthLine struct {
	at   time.Time
	text string
}

// synthLog writes a log of at least n lines, all sources mixed in one file
// as one program's logger would: a Tether client in JSON with frame records
// (20 s), a Tether client in text (5 s) whose peer also pings, a labeled
// python-websockets client (20 s), two unlabeled python-websockets clients
// opened together (5 s, 2 ms apart), and one application line in five that
// diagnose skips. It returns the number of lines written.
func synthLog(w *bytes.Buffer, n int) int {
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2025, 6, 7, 5, 31, 37, 0, time.UTC)
	const (
		tj = "01936f0e-8f2a-7c3b-9d41-5a6b7c8d9e0f"
		tt = "01936f0f-0a11-7d22-8e33-1f2e3d4c5b6a"
		pl = "7bea25df-5f4e-4c56-8a8e-1d2b3c4d5e6f"
	)
	asc := func(at time.Time) string {
		return at.Format("2006-01-02 15:04:05") + fmt.Sprintf(",%03d", at.Nanosecond()/1e6)
	}
	payload := func() string {
		return fmt.Sprintf("%02x %02x %02x %02x", rng.IntN(256), rng.IntN(256), rng.IntN(256), rng.IntN(256))
	}
	jitter := func() time.Duration { return time.Duration(rng.IntN(1500)) * time.Microsecond }
	rtt := func() time.Duration { return time.Duration(800+rng.IntN(1500)) * time.Microsecond }
	var block []synthLine
	add := func(at time.Time, text string) { block = append(block, synthLine{at, text}) }
	python := func(at time.Time, prefix string) {
		p, r := payload(), rtt()
		add(at, asc(at)+" "+prefix+"% sending keepalive ping")
		add(at, asc(at)+" "+prefix+"> PING "+p+" [binary, 4 bytes]")
		add(at.Add(r), asc(at.Add(r))+" "+prefix+"< PONG "+p+" [binary, 4 bytes]")
		add(at.Add(r), asc(at.Add(r))+" "+prefix+"% received keepalive pong")
	}
	lines := 0
	for b := 0; lines < n; b++ {
		block = block[:0]
		base := start.Add(time.Duration(b) * 20 * time.Second)
		at := base.Add(3*time.Second + jitter())
		p, r := payload(), rtt()
		js := func(at time.Time, msg, extra string) string {
			return fmt.Sprintf(`{"time":"%s","level":"DEBUG","msg":"%s","conn":"%s","role":"client","remote":"10.0.0.5:8123"%s}`,
				at.Format(time.RFC3339Nano), msg, tj, extra)
		}
		add(at, js(at, "sent keepalive ping", `,"interval":20000000000`))
		add(at, js(at, "> PING "+p+" [binary, 4 bytes]", ""))
		add(at.Add(r), js(at.Add(r), "< PONG "+p+" [binary, 4 bytes]", ""))
		add(at.Add(r), js(at.Add(r), "received keepalive pong", fmt.Sprintf(`,"rtt":%d`, r)))
		python(base.Add(7*time.Second+jitter()), pl+" ")
		for k := range 4 {
			slot := base.Add(time.Duration(k)*5*time.Second + time.Second)
			python(slot.Add(jitter()), "")
			python(slot.Add(2*time.Millisecond+jitter()), "")
			at := slot.Add(1700*time.Millisecond + jitter())
			r := rtt()
			tx := func(at time.Time, msg, extra string) string {
				return fmt.Sprintf(`time=%s level=DEBUG msg=%q conn=%s role=client remote=10.0.0.6:443%s`,
					at.Format("2006-01-02T15:04:05.000Z07:00"), msg, tt, extra)
			}
			add(at, tx(at, "sent keepalive ping", " interval=5s"))
			add(at.Add(r), tx(at.Add(r), "received keepalive pong", " rtt="+r.String()))
			if k%2 == 0 {
				pp := at.Add(2 * time.Second)
				add(pp, tx(pp, "received ping", ` payload="01 02 03 04"`))
			}
		}
		for k := range 13 {
			at := base.Add(time.Duration(k) * 1500 * time.Millisecond)
			add(at, asc(at)+" INFO app.http: GET /api/items 200 in 3ms")
		}
		sort.SliceStable(block, func(i, j int) bool { return block[i].at.Before(block[j].at) })
		for _, l := range block {
			w.WriteString(l.text)
			w.WriteByte('\n')
		}
		lines += len(block)
	}
	return lines
}

// TestMillionLines reads a synthetic log of a million lines mixing every
// source and checks the streams; the figure for this machine is reported
// (BenchmarkAnalyze measures it), not asserted.
func TestMillionLines(t *testing.T) {
	if testing.Short() {
		t.Skip("a million lines")
	}
	var buf bytes.Buffer
	n := synthLog(&buf, 1_000_000)
	size := buf.Len()
	if out := os.Getenv("DIAGNOSE_SYNTH_OUT"); out != "" { // to time the CLI on it
		if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	rep, err := Analyze(&buf)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("%d lines (%d MB) in %v: %.2f M lines/s", n, size>>20, took.Round(time.Millisecond), float64(n)/took.Seconds()/1e6)
	if rep.Lines.Lines != n {
		t.Fatalf("read %d lines, wrote %d", rep.Lines.Lines, n)
	}
	want := map[string]float64{"01936f0e": 20, "01936f0f": 5, "7bea25df": 20, "unlabeled #1": 5, "unlabeled #2": 5}
	if len(rep.Streams) != len(want) {
		var names []string
		for _, s := range rep.Streams {
			names = append(names, fmt.Sprintf("%s (%d pings)", s.Name, s.Pings))
		}
		t.Fatalf("%d streams, want %d: %s", len(rep.Streams), len(want), strings.Join(names, ", "))
	}
	for _, s := range rep.Streams {
		key := s.Name
		if s.Labeled {
			key = s.Conn[:8]
		}
		iv, ok := want[key]
		if !ok || s.Interval == nil || s.Interval.Median < iv*0.99 || s.Interval.Median > iv*1.01 || s.Pongs != s.Pings {
			t.Errorf("stream %s: %+v %+v", s.Name, s, s.Interval)
		}
	}
	if rep.Unattributed > 0 {
		t.Errorf("%d unattributed pings", rep.Unattributed)
	}
	kinds := findingKinds(rep)
	for _, k := range []string{KindIntervalMismatch, KindUnlabeled, KindBunched} {
		if !contains(kinds, k) {
			t.Errorf("findings %v lack %s", kinds, k)
		}
	}
}

func contains(v []string, s string) bool {
	for _, x := range v {
		if x == s {
			return true
		}
	}
	return false
}

// BenchmarkAnalyze measures reading a million-line mixed log.
func BenchmarkAnalyze(b *testing.B) {
	var buf bytes.Buffer
	n := synthLog(&buf, 1_000_000)
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := Analyze(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// TestRTTGrowing: a stream whose round trip climbs from 1 ms to 400 ms.
func TestRTTGrowing(t *testing.T) {
	var b strings.Builder
	start := time.Date(2025, 6, 7, 5, 0, 0, 0, time.UTC)
	for i := range 40 {
		at := start.Add(time.Duration(i) * 5 * time.Second)
		rtt := time.Millisecond * time.Duration(1+i*i/4)
		fmt.Fprintf(&b, "time=%s level=DEBUG msg=\"sent keepalive ping\" conn=c1 role=client remote=r interval=5s\n", at.Format(time.RFC3339Nano))
		fmt.Fprintf(&b, "time=%s level=DEBUG msg=\"received keepalive pong\" conn=c1 role=client remote=r rtt=%s\n", at.Add(rtt).Format(time.RFC3339Nano), rtt)
	}
	rep, err := Analyze(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if kinds := findingKinds(rep); len(kinds) != 1 || kinds[0] != KindRTTGrowing {
		t.Fatalf("findings %v, want rtt-growing", rep.Findings)
	}
	if s := rep.Streams[0]; s.RTT == nil || s.RTT.Max < 380 {
		t.Fatalf("rtt %+v", s.RTT)
	}
}

// TestFollowsReconnect: an unlabeled connection times out and a new one
// opens: two streams, the timeout on the first.
func TestFollowsReconnect(t *testing.T) {
	var b strings.Builder
	at := time.Date(2025, 6, 7, 5, 0, 0, 0, time.UTC)
	line := func(d time.Duration, msg string) {
		at = at.Add(d)
		fmt.Fprintf(&b, "%s,%03d %s\n", at.Format("2006-01-02 15:04:05"), at.Nanosecond()/1e6, msg)
	}
	line(0, "= connection is OPEN")
	for i := range 6 {
		line(time.Second, "% sending keepalive ping")
		line(0, fmt.Sprintf("> PING 00 00 00 %02x [binary, 4 bytes]", i))
		if i < 5 {
			line(2*time.Millisecond, fmt.Sprintf("< PONG 00 00 00 %02x [binary, 4 bytes]", i))
			line(0, "% received keepalive pong")
		}
	}
	line(time.Second, "! timed out waiting for keepalive pong")
	line(0, "= connection is CLOSED")
	line(500*time.Millisecond, "= connection is OPEN")
	for i := range 6 {
		line(time.Second, "% sending keepalive ping")
		line(0, fmt.Sprintf("> PING 00 00 01 %02x [binary, 4 bytes]", i))
		line(2*time.Millisecond, fmt.Sprintf("< PONG 00 00 01 %02x [binary, 4 bytes]", i))
		line(0, "% received keepalive pong")
	}
	rep, err := Analyze(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Streams) != 2 || rep.Streams[0].Timeouts != 1 || rep.Streams[0].Pings != 6 || rep.Streams[1].Timeouts != 0 || rep.Streams[1].Pings != 6 {
		t.Fatalf("streams %+v", rep.Streams)
	}
}
