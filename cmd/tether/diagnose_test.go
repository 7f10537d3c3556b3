package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherws/tether"
)

const fixtures = "../../diagnose/testdata/"

func runDiag(t *testing.T, r diagnoseRun) string {
	t.Helper()
	var out bytes.Buffer
	r.out, r.errOut = &out, io.Discard
	if r.stdin == nil {
		r.stdin = strings.NewReader("")
	}
	if err := runDiagnose(r); err != nil {
		t.Fatalf("diagnose: %v", err)
	}
	return out.String()
}

func TestDiagnoseText(t *testing.T) {
	out := runDiag(t, diagnoseRun{files: []string{fixtures + "report-asctime.log"}})
	for _, want := range []string{"3 streams:", "unlabeled #1", "unlabeled #2", "python-websockets",
		"WARNING interval-mismatch", "WARNING unlabeled-stream", "What to do:", "lines/s"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// contractReport is Contract 4 (docs/contracts.md), field by field.
type contractReport struct {
	Streams []struct {
		Conn     *string `json:"conn"`
		Labeled  *bool   `json:"labeled"`
		Source   *string `json:"source"`
		Role     *string `json:"role"`
		Pings    *int    `json:"pings"`
		Pongs    *int    `json:"pongs"`
		Timeouts *int    `json:"timeouts"`
		Interval *struct {
			Median, Min, Max *float64
		} `json:"interval_s"`
		RTT *struct {
			Median, Max *float64
		} `json:"rtt_ms"`
		First *string `json:"first"`
		Last  *string `json:"last"`
	} `json:"streams"`
	Findings []struct {
		Kind     string   `json:"kind"`
		Severity string   `json:"severity"`
		Message  string   `json:"message"`
		Conns    []string `json:"conns"`
	} `json:"findings"`
}

func TestDiagnoseJSON(t *testing.T) {
	out := runDiag(t, diagnoseRun{files: []string{fixtures + "mixed.log"}, json: true})
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out)
	}
	var rep contractReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Streams) != 5 {
		t.Fatalf("%d streams, want 5", len(rep.Streams))
	}
	sources := map[string]int{}
	timedOut := ""
	for i, s := range rep.Streams {
		if s.Conn == nil || s.Labeled == nil || s.Source == nil || s.Role == nil || s.Pings == nil || s.Pongs == nil ||
			s.Timeouts == nil || s.First == nil || s.Last == nil {
			t.Fatalf("stream %d misses a field of Contract 4: %s", i, out)
		}
		if s.Interval == nil || s.Interval.Median == nil || s.Interval.Min == nil || s.Interval.Max == nil ||
			s.RTT == nil || s.RTT.Median == nil || s.RTT.Max == nil {
			t.Fatalf("stream %d: interval_s or rtt_ms incomplete", i)
		}
		if _, err := time.Parse(time.RFC3339, *s.First); err != nil {
			t.Errorf("first %q: %v", *s.First, err)
		}
		if *s.Labeled != (*s.Conn != "") {
			t.Errorf("stream %d: labeled %v with conn %q", i, *s.Labeled, *s.Conn)
		}
		sources[*s.Source]++
		if *s.Timeouts > 0 {
			timedOut = *s.Conn
		}
	}
	if sources["tether"] != 2 || sources["python-websockets"] != 3 {
		t.Errorf("sources %v", sources)
	}
	var kinds []string
	for _, f := range rep.Findings {
		kinds = append(kinds, f.Kind)
		if f.Message == "" || f.Conns == nil || (f.Severity != "error" && f.Severity != "warning" && f.Severity != "info") {
			t.Errorf("finding %+v", f)
		}
		if f.Kind == "ping-timeout" && !slices.Equal(f.Conns, []string{timedOut}) {
			t.Errorf("ping-timeout on %v, the stream with the timeout is %q", f.Conns, timedOut)
		}
	}
	for _, want := range []string{"ping-timeout", "interval-mismatch", "unlabeled-stream"} {
		if !slices.Contains(kinds, want) {
			t.Errorf("findings %v lack %s", kinds, want)
		}
	}
}

func TestDiagnoseStdinWithoutTimestamps(t *testing.T) {
	f, err := os.Open(fixtures + "report-notime.log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := runDiag(t, diagnoseRun{stdin: f, json: true})
	var rep struct {
		Streams []struct {
			Interval json.RawMessage `json:"interval_s"`
			RTT      json.RawMessage `json:"rtt_ms"`
			First    json.RawMessage `json:"first"`
		} `json:"streams"`
		Findings []struct{ Kind string } `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Streams) != 3 {
		t.Fatalf("%d streams, want 3", len(rep.Streams))
	}
	for _, s := range rep.Streams {
		if string(s.Interval) != "null" || string(s.RTT) != "null" || string(s.First) != "null" {
			t.Errorf("without timestamps: interval_s %s rtt_ms %s first %s, want null", s.Interval, s.RTT, s.First)
		}
	}
	if !slices.ContainsFunc(rep.Findings, func(f struct{ Kind string }) bool { return f.Kind == "no-timestamps" }) {
		t.Errorf("no no-timestamps finding: %s", out)
	}
}

func TestDiagnoseSVG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "timeline.svg")
	out := runDiag(t, diagnoseRun{files: []string{fixtures + "timeout-asctime.log"}, svg: path})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("<svg ")) || !strings.Contains(out, "Timeline written to") {
		t.Fatalf("svg %q..., output %s", b[:min(len(b), 40)], out)
	}
}

func TestDiagnoseMissingFile(t *testing.T) {
	err := runDiagnose(diagnoseRun{files: []string{"no/such.log"}, out: io.Discard, errOut: io.Discard})
	if err == nil {
		t.Fatal("no error for a missing file")
	}
}

// TestDiagnoseOwnLogs runs two clients of one program at two intervals,
// logging JSON to one logger, and diagnoses what they wrote: two labeled
// streams, each at its interval, and the mismatch found.
func TestDiagnoseOwnLogs(t *testing.T) {
	addr, _ := startServe(t, tether.ConnOptions{})
	var logs syncBuffer
	var wg sync.WaitGroup
	for _, iv := range []time.Duration{100 * time.Millisecond, 160 * time.Millisecond} {
		cf := connFlags{pingInterval: iv, pingTimeout: time.Second, mode: "fixed", maxSize: 1 << 20, logLevel: "debug", logFormat: "json"}
		logger, err := cf.logger(&logs)
		if err != nil {
			t.Fatal(err)
		}
		copts, err := cf.options(logger)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr, pw := io.Pipe()
			go func() {
				time.Sleep(900 * time.Millisecond)
				pw.Close()
			}()
			var out, errOut bytes.Buffer
			if err := runConnect(context.Background(), "ws://"+addr+"/echo", &tether.DialOptions{ConnOptions: copts}, pr, &out, &errOut); err != nil {
				t.Errorf("connect: %v %s", err, errOut.String())
			}
		}()
	}
	wg.Wait()
	out := runDiag(t, diagnoseRun{stdin: strings.NewReader(logs.String()), json: true})
	var rep contractReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Streams) != 2 {
		t.Fatalf("%d streams, want 2:\n%s", len(rep.Streams), out)
	}
	var got []float64
	for _, s := range rep.Streams {
		if !*s.Labeled || *s.Source != "tether" || *s.Pings < 3 || s.Interval == nil {
			t.Fatalf("stream %s: %s", *s.Conn, out)
		}
		got = append(got, *s.Interval.Median)
	}
	slices.Sort(got)
	for i, want := range []float64{0.1, 0.16} {
		if math.Abs(got[i]-want) > 0.15*want {
			t.Errorf("intervals %v, want 0.1 and 0.16", got)
		}
	}
	if !strings.Contains(out, `"interval-mismatch"`) {
		t.Errorf("no interval-mismatch: %s", out)
	}
}

// TestDiagnoseServerLog runs diagnose on `tether serve`'s log of three
// clients of one process on 127.0.0.1 pinging every 2 s, 0.5 s and 0.5 s,
// and two other hosts at 20 s: the peers' cadence in the table, one
// interval-mismatch for 127.0.0.1 and nothing for the others.
func TestDiagnoseServerLog(t *testing.T) {
	out := runDiag(t, diagnoseRun{files: []string{fixtures + "tether-serve-peers-since.log"}})
	for _, want := range []string{"PEER PINGS", "PEER INTERVAL", "from 127.0.0.1:", "1 finding:", "WARNING interval-mismatch",
		"3 connections from 127.0.0.1 to /echo, open at the same time, ping at 2.0 s"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	at := strings.Index(out, "finding:")
	if at < 0 {
		t.Fatalf("no findings:\n%s", out)
	}
	findings := out[at:]
	for _, unwanted := range []string{"peer-pings-only", "127.0.0.2", "127.0.0.3"} {
		if strings.Contains(findings, unwanted) {
			t.Errorf("findings mention %s:\n%s", unwanted, findings)
		}
	}
}

// TestDiagnoseBothEnds gives diagnose the server's log and the clients'
// log: every client stream and its server connection name each other.
func TestDiagnoseBothEnds(t *testing.T) {
	files := []string{fixtures + "tether-serve-peers.log", fixtures + "peers-clients.log"}
	var rep struct {
		Streams []struct {
			Name         string          `json:"name"`
			Role         string          `json:"role"`
			PeerInterval json.RawMessage `json:"peer_interval_s"`
			Peer         *struct {
				Name    string `json:"name"`
				By      string `json:"by"`
				Matches int    `json:"matches"`
			} `json:"peer"`
		} `json:"streams"`
	}
	if err := json.Unmarshal([]byte(runDiag(t, diagnoseRun{files: files, json: true})), &rep); err != nil {
		t.Fatal(err)
	}
	peers := map[string]string{}
	for _, s := range rep.Streams {
		if s.PeerInterval == nil {
			t.Errorf("%s: no peer_interval_s field", s.Name)
		}
		if s.Peer != nil {
			peers[s.Name] = s.Peer.Name
			if s.Peer.By != "payloads" || s.Peer.Matches < 2 {
				t.Errorf("%s paired with %s by %s (%d)", s.Name, s.Peer.Name, s.Peer.By, s.Peer.Matches)
			}
		} else if s.Role == "client" {
			t.Errorf("client stream %s has no peer", s.Name)
		}
	}
	if len(peers) != 6 {
		t.Errorf("%d paired streams, want 3 pairs: %v", len(peers), peers)
	}
	for a, b := range peers {
		if peers[b] != a {
			t.Errorf("%s -> %s -> %s", a, b, peers[b])
		}
	}
	text := runDiag(t, diagnoseRun{files: files})
	if !strings.Contains(text, "Both ends in these logs:") || strings.Count(text, "<->") != 3 {
		t.Errorf("text lacks the 3 pairs:\n%s", text)
	}
}

// TestDiagnoseNoKeepalive reads a log of a connection with keepalive off at
// both ends: one sentence (and what to do), no "no findings" that reads as
// all well, and exit status 3, in text and in JSON.
func TestDiagnoseNoKeepalive(t *testing.T) {
	for _, asJSON := range []bool{false, true} {
		var out bytes.Buffer
		err := runDiagnose(diagnoseRun{files: []string{fixtures + "quiet.log"}, out: &out, errOut: io.Discard,
			stdin: strings.NewReader(""), json: asJSON})
		if e, ok := err.(exitError); !ok || e.code != exitNoKeepalive || exitNoKeepalive == 0 || exitNoKeepalive == 1 {
			t.Errorf("json %v: error %v, want exit status %d", asJSON, err, exitNoKeepalive)
		}
		text := out.String()
		if asJSON {
			if !strings.Contains(text, `"kind": "no-keepalive"`) {
				t.Errorf("JSON lacks the no-keepalive finding:\n%s", text)
			}
			continue
		}
		if !strings.HasPrefix(text, "No keepalive traffic in these 21 lines") || strings.Contains(text, "No findings") ||
			strings.Contains(text, "stream") || strings.Count(text, "\n") > 6 {
			t.Errorf("text report:\n%s", text)
		}
	}
}

// TestDiagnoseLines lists each keepalive line with its stream: on two
// unlabeled clients, one of whose servers never answers, the unanswered
// ping, its timeout and its 1011 failure are the second stream's, and every
// other keepalive line the first's. With --json the same list is the
// report's attribution, and each stream has its first and last line.
func TestDiagnoseLines(t *testing.T) {
	out := runDiag(t, diagnoseRun{files: []string{fixtures + "unanswered-asctime.log"}, lines: true})
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Fields(l)
		got[f[0]] = strings.Join(f[1:], " ")
	}
	for line, want := range map[string]string{
		"35": "unlabeled #1 ping", "36": "unlabeled #1 ping frame", "37": "unlabeled #1 pong",
		"39": "unlabeled #2 ping", "40": "unlabeled #2 ping frame", "47": "unlabeled #2 timeout",
		"48": "unlabeled #2 1011 failure", "62": "unlabeled #1 ping", "64": "unlabeled #1 pong", "65": "unlabeled #1 pong confirmed",
	} {
		if got[line] != want {
			t.Errorf("line %s: %q, want %q\n%s", line, got[line], want, out)
		}
	}

	out = runDiag(t, diagnoseRun{files: []string{fixtures + "unanswered-asctime.log"}, lines: true, json: true})
	var rep struct {
		Streams []struct {
			Name      string `json:"name"`
			FirstLine int    `json:"first_line"`
			LastLine  int    `json:"last_line"`
			Pings     int    `json:"pings"`
			Timeouts  int    `json:"timeouts"`
		} `json:"streams"`
		Attribution []struct {
			Line   int    `json:"line"`
			Stream string `json:"stream"`
			What   string `json:"what"`
		} `json:"attribution"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Streams) != 2 || rep.Streams[1].Pings != 1 || rep.Streams[1].Timeouts != 1 ||
		rep.Streams[1].FirstLine != 39 || rep.Streams[1].LastLine != 48 || rep.Streams[0].FirstLine != 35 {
		t.Errorf("streams %+v", rep.Streams)
	}
	if len(rep.Attribution) != len(got) {
		t.Errorf("%d attributed lines in JSON, %d in text", len(rep.Attribution), len(got))
	}
}
