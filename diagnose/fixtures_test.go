package diagnose

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// truth is what testdata/gen/gen.py knows of a log it wrote.
type truth struct {
	Scenario    string      `json:"scenario"`
	Format      string      `json:"format"`
	Connections []truthConn `json:"connections"`
	Findings    []string    `json:"findings"`
	LineConns   []int       `json:"line_conns"`
}

type truthConn struct {
	Name     string   `json:"name"`
	ID       string   `json:"id"`
	Source   string   `json:"source"`
	Labeled  bool     `json:"labeled"`
	Logger   string   `json:"logger"`
	Interval *float64 `json:"interval_s"`
	DeadPeer bool     `json:"dead_peer"`
}

// fixtureDir is testdata, or DIAGNOSE_FIXTURES to check fresh logs of
// testdata/gen (DIAGNOSE_FIXTURES=/tmp/x go generate ./diagnose/).
func fixtureDir() string {
	if d := os.Getenv("DIAGNOSE_FIXTURES"); d != "" {
		return d
	}
	return "testdata"
}

func analyzeFile(t testing.TB, name string) *Report {
	t.Helper()
	f, err := os.Open(filepath.Join(fixtureDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := Analyze(f)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestGeneratedLogs checks the streams and findings of every log that
// testdata/gen wrote against its ground truth: one stream per connection,
// the labeled ones under their ID, the unlabeled ones each the majority of
// one stream, intervals within 15 % of the configured ones, timeouts on the
// connection whose peer stopped answering and nowhere else.
func TestGeneratedLogs(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(fixtureDir(), "*.truth.json"))
	if len(files) == 0 {
		t.Fatal("no fixtures: run go generate ./diagnose/")
	}
	for _, tf := range files {
		base := strings.TrimSuffix(filepath.Base(tf), ".truth.json")
		t.Run(base, func(t *testing.T) {
			t.Parallel()
			var tr truth
			b, err := os.ReadFile(tf)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &tr); err != nil {
				t.Fatal(err)
			}
			rep := analyzeFile(t, base+".log")
			claimed := checkAgainstTruth(t, rep, &tr)
			checkAttribution(t, rep, &tr, claimed)
		})
	}
}

// checkAgainstTruth returns which connection each stream is (stream index
// -> index in tr.Connections).
func checkAgainstTruth(t *testing.T, rep *Report, tr *truth) map[int]int {
	claimed := map[int]int{}
	if tr.Scenario == "quiet" { // keepalive off at both ends
		if !rep.NoKeepalive() || len(rep.Findings) != 1 || rep.Findings[0].Kind != KindNoKeepalive {
			t.Errorf("no keepalive in the log: NoKeepalive %v, findings %+v", rep.NoKeepalive(), rep.Findings)
		}
		return claimed
	}
	if len(rep.Streams) != len(tr.Connections) {
		t.Errorf("%d streams, want %d (one per connection)", len(rep.Streams), len(tr.Connections))
	}
	timed := tr.Format != "notime"
	for ci, c := range tr.Connections {
		si := findStream(t, rep, tr, ci)
		if si < 0 {
			t.Errorf("connection %s (%s): no stream", c.Name, c.ID)
			continue
		}
		if other, ok := claimed[si]; ok {
			t.Errorf("connections %s and %s share %s", tr.Connections[other].Name, c.Name, rep.Streams[si].Name)
		}
		claimed[si] = ci
		s := &rep.Streams[si]
		if s.Labeled != c.Labeled {
			t.Errorf("%s: labeled %v, want %v", c.Name, s.Labeled, c.Labeled)
		}
		if c.Labeled && s.Conn != c.ID {
			t.Errorf("%s: conn %q, want %q", c.Name, s.Conn, c.ID)
		}
		if !c.Labeled && s.Conn != "" {
			t.Errorf("%s: unlabeled stream with conn %q", c.Name, s.Conn)
		}
		switch {
		case c.Labeled && s.Confidence != SureLabeled:
			t.Errorf("%s: labeled, confidence %q", c.Name, s.Confidence)
		case !c.Labeled && (s.ConfidenceWhy == "" || (s.Confidence != SureHigh && s.Confidence != SureMedium && s.Confidence != SureLow)):
			t.Errorf("%s: inferred, confidence %q (%s)", c.Name, s.Confidence, s.ConfidenceWhy)
		case !c.Labeled && !timed && s.Confidence == SureHigh && s.Timeouts == 0:
			t.Errorf("%s: split by order alone, yet confidence high: %s", c.Name, s.ConfidenceWhy)
		}
		if s.Source != c.Source {
			t.Errorf("%s: source %q, want %q", c.Name, s.Source, c.Source)
		}
		switch {
		case c.Interval == nil:
			if s.Pings != 0 || s.PeerPings == 0 {
				t.Errorf("%s: keepalive off, want only peer pings; got %d pings, %d peer pings", c.Name, s.Pings, s.PeerPings)
			}
		case !timed:
			if s.Interval != nil || s.RTT != nil {
				t.Errorf("%s: interval %v rtt %v without timestamps, want null", c.Name, s.Interval, s.RTT)
			}
		case s.Pings < 2:
			if s.Interval != nil { // one ping has no interval; it is the connection whose peer never answered
				t.Errorf("%s: interval %v from %d ping", c.Name, s.Interval, s.Pings)
			}
		case s.Interval == nil:
			t.Errorf("%s: no interval", c.Name)
		default:
			if d := math.Abs(s.Interval.Median-*c.Interval) / *c.Interval; d > 0.15 {
				t.Errorf("%s: interval %.3fs, configured %.3fs (%.0f%% off)", c.Name, s.Interval.Median, *c.Interval, d*100)
			}
		}
		if c.DeadPeer && s.Timeouts == 0 {
			t.Errorf("%s: its peer stopped answering, but %s has no timeout", c.Name, s.Name)
		}
		if !c.DeadPeer && (s.Timeouts > 0 || s.Unanswered > 0) {
			t.Errorf("%s: %d timeouts, %d unanswered, want none", c.Name, s.Timeouts, s.Unanswered)
		}
		if c.Interval != nil && !timed && s.Interval != nil {
			t.Errorf("%s: interval without timestamps", c.Name)
		}
	}
	var kinds []string
	for _, f := range rep.Findings {
		kinds = append(kinds, f.Kind)
	}
	for _, want := range tr.Findings {
		if !slices.Contains(kinds, want) {
			t.Errorf("findings %v lack %s", kinds, want)
		}
	}
	dead := slices.ContainsFunc(tr.Connections, func(c truthConn) bool { return c.DeadPeer })
	if !dead && slices.Contains(kinds, KindPingTimeout) {
		t.Errorf("ping-timeout without a dead peer: %v", rep.Findings)
	}
	for _, f := range rep.Findings {
		if f.Kind != KindPingTimeout {
			continue
		}
		for _, name := range f.Streams {
			if ci, ok := claimed[streamIndex(rep, name)]; !ok || !tr.Connections[ci].DeadPeer {
				t.Errorf("ping-timeout on %s, which is not the connection whose peer stopped", name)
			}
		}
	}
	return claimed
}

// checkAttribution holds --lines to the truth: every keepalive line (ping,
// its frame, pong, timeout, peer ping) goes to a stream, the stream of the
// connection that wrote it; connection lines (open, close, failure) go to
// that stream or to none, never to another's. Each stream's first and last
// lines are its own.
func checkAttribution(t *testing.T, rep *Report, tr *truth, claimed map[int]int) {
	if wrong := attribution(t, rep, tr, claimed, t.Errorf); wrong > 0 {
		t.Errorf("%d keepalive lines attributed wrongly", wrong)
	}
}

// attribution checks each attributed line against the truth, telling each
// wrong one to report, and returns how many were wrong.
func attribution(t *testing.T, rep *Report, tr *truth, claimed map[int]int, report func(string, ...any)) int {
	if tr.Scenario == "quiet" {
		return 0 // no keepalive line, no stream
	}
	rep.Attribute()
	byShort := map[string]int{}
	for i := range rep.Streams {
		byShort[rep.Streams[i].Short] = i
	}
	wrong, keepalive := 0, 0
	for _, la := range rep.Attribution {
		writer := tr.LineConns[la.Line-1]
		isKeepalive := la.What != "open" && la.What != "close" && la.What != "1011 failure"
		if isKeepalive {
			keepalive++
		}
		if la.Stream == "" {
			if isKeepalive {
				wrong++
				report("line %d (%s, written by connection %d): no stream", la.Line, la.What, writer)
			}
			continue
		}
		if ci, ok := claimed[byShort[la.Stream]]; !ok || ci != writer {
			wrong++
			report("line %d (%s, written by connection %d) given to %s", la.Line, la.What, writer, la.Stream)
		}
	}
	if keepalive == 0 {
		t.Error("no keepalive line attributed")
	}
	for si, ci := range claimed {
		s := rep.Streams[si]
		if s.FirstLine < 1 || s.LastLine < s.FirstLine || tr.LineConns[s.FirstLine-1] != ci || tr.LineConns[s.LastLine-1] != ci {
			t.Errorf("%s: first line %d, last line %d, not connection %d's", s.Name, s.FirstLine, s.LastLine, ci)
		}
	}
	t.Logf("%d keepalive lines, %d attributed wrongly", keepalive, wrong)
	return wrong
}

// findStream finds connection ci's stream: by ID when labeled, else the
// stream most of whose ping lines the connection wrote, which must hold at
// least 90 % of its pings and be 90 % its own.
func findStream(t *testing.T, rep *Report, tr *truth, ci int) int {
	c := tr.Connections[ci]
	if c.Labeled {
		for i := range rep.Streams {
			if rep.Streams[i].Conn == c.ID {
				return i
			}
		}
		return -1
	}
	if c.Interval == nil { // keepalive off: the stream of its logger
		for i := range rep.Streams {
			if rep.Streams[i].Pings == 0 && rep.Streams[i].Logger == c.Logger {
				return i
			}
		}
		return -1
	}
	total := 0
	for _, s := range rep.Streams {
		for _, l := range s.pingLines {
			if tr.LineConns[l-1] == ci {
				total++
			}
		}
	}
	best, bestN, bestLen := -1, 0, 0
	for i, s := range rep.Streams {
		n := 0
		for _, l := range s.pingLines {
			if tr.LineConns[l-1] == ci {
				n++
			}
		}
		if n > bestN {
			best, bestN, bestLen = i, n, len(s.pingLines)
		}
	}
	if best < 0 {
		return -1
	}
	t.Logf("%s -> %s: %d of its %d pings, among %d", c.Name, rep.Streams[best].Name, bestN, total, bestLen)
	if float64(bestN) < 0.9*float64(total) || float64(bestN) < 0.9*float64(bestLen) {
		t.Errorf("%s: its stream %s holds %d of its %d pings among %d", c.Name, rep.Streams[best].Name, bestN, total, bestLen)
	}
	return best
}

// TestTetherLogs reads the logs of the tether CLI itself (gen.sh): two
// clients of one program at 300 ms and 500 ms in JSON, and the server's text
// log pinging both at 700 ms.
func TestTetherLogs(t *testing.T) {
	clients := analyzeFile(t, "tether-clients.log")
	if len(clients.Streams) != 2 {
		t.Fatalf("%d streams, want 2", len(clients.Streams))
	}
	var ivs []float64
	for _, s := range clients.Streams {
		if !s.Labeled || s.Source != "tether" || s.Role != "client" || s.Pongs != s.Pings || s.Declared == nil {
			t.Errorf("stream %+v", s)
		}
		ivs = append(ivs, *s.Declared)
		if math.Abs(s.Interval.Median-*s.Declared) > 0.15**s.Declared {
			t.Errorf("%s: interval %v, declared %v", s.Name, s.Interval.Median, *s.Declared)
		}
	}
	slices.Sort(ivs)
	if !slices.Equal(ivs, []float64{0.3, 0.5}) {
		t.Errorf("declared intervals %v", ivs)
	}
	if kinds := findingKinds(clients); !slices.Contains(kinds, KindIntervalMismatch) || !slices.Contains(kinds, KindDuplicate) {
		t.Errorf("findings %v", kinds)
	}

	server := analyzeFile(t, "tether-serve.log")
	if len(server.Streams) != 2 {
		t.Fatalf("%d server streams, want 2", len(server.Streams))
	}
	for _, s := range server.Streams {
		if s.Role != "server" || s.PeerPings == 0 || math.Abs(s.Interval.Median-0.7) > 0.1 {
			t.Errorf("server stream %+v", s)
		}
	}
	// The two clients are two processes on one host, pinging at 300 ms and
	// 500 ms: the server sees one host at two intervals. Two connections may
	// also happen to ping within a few ms of each other (Tether spreads the
	// first ping over 80-100 % of the interval); nothing else is wrong.
	mismatches := 0
	for _, f := range server.Findings {
		switch {
		case f.Kind == KindIntervalMismatch && strings.Contains(f.Message, "2 connections from 127.0.0.1 to /echo, open at the same time, ping at 50") &&
			len(f.Conns) == 2:
			mismatches++
		case f.Kind != KindBunched:
			t.Errorf("server finding %s: %s", f.Kind, f.Message)
		}
	}
	if mismatches != 1 {
		t.Errorf("%d interval-mismatch findings for 127.0.0.1, want 1: %+v", mismatches, server.Findings)
	}
}

func findingKinds(r *Report) []string {
	var k []string
	for _, f := range r.Findings {
		k = append(k, f.Kind)
	}
	return k
}
