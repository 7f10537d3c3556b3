package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherws/tether"
	"github.com/tetherws/tether/loadgen"
)

// benchServer serves /echo, /broadcast and /policy (which reads one
// message and closes with 1008) with Tether, keepalive at ping.
func benchServer(t *testing.T, ping time.Duration) string {
	t.Helper()
	opts := &tether.AcceptOptions{ConnOptions: tether.ConnOptions{
		PingInterval: ping, Logger: slog.New(slog.DiscardHandler), Registry: tether.NoRegistry}}
	var (
		mu   sync.Mutex
		subs = map[*tether.Conn]bool{}
	)
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		c, err := tether.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(context.Background())
			if err != nil {
				return
			}
			if c.Write(context.Background(), typ, msg) != nil {
				return
			}
		}
	})
	mux.HandleFunc("/policy", func(w http.ResponseWriter, r *http.Request) {
		c, err := tether.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		if _, _, err := c.Read(context.Background()); err == nil {
			c.Close(tether.StatusPolicyViolation, "no thanks")
		}
	})
	mux.HandleFunc("/broadcast", func(w http.ResponseWriter, r *http.Request) {
		c, err := tether.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		mu.Lock()
		subs[c] = true
		mu.Unlock()
		defer func() {
			mu.Lock()
			delete(subs, c)
			mu.Unlock()
		}()
		for {
			typ, msg, err := c.Read(context.Background())
			if err != nil {
				return
			}
			pm, _ := tether.NewPreparedMessage(typ, msg)
			mu.Lock()
			for s := range subs {
				s.WritePrepared(context.Background(), pm)
			}
			mu.Unlock()
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// runBenchJSON runs `tether bench` in-process with --json and returns the
// events it printed and its result.
func runBenchJSON(t *testing.T, cfg loadgen.Config) ([]string, *loadgen.Result) {
	t.Helper()
	var out, errOut bytes.Buffer
	b := &benchRun{cfg: cfg, json: true, out: &out, errOut: &errOut}
	if err := b.run(context.Background()); err != nil {
		t.Fatalf("bench: %v (stderr %q)", err, errOut.String())
	}
	var events []string
	var res *loadgen.Result
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var ev struct{ Event string }
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Event != "" {
			events = append(events, ev.Event)
			continue
		}
		res = &loadgen.Result{}
		if err := json.Unmarshal([]byte(line), res); err != nil {
			t.Fatalf("result line %q: %v", line, err)
		}
	}
	if res == nil {
		t.Fatalf("no result in %q", out.String())
	}
	return events, res
}

func checkPercentiles(t *testing.T, p loadgen.Percentiles) {
	t.Helper()
	seq := []float64{p.P50, p.P90, p.P99, p.P999, p.Max}
	if p.P50 <= 0 {
		t.Errorf("p50 %v us, want > 0", p.P50)
	}
	for i := 1; i < len(seq); i++ {
		if seq[i] < seq[i-1] {
			t.Errorf("percentiles not ordered: %+v", p)
		}
	}
	if p.Max > 5e6 {
		t.Errorf("max latency %v us on loopback", p.Max)
	}
}

func TestBenchEchoCounts(t *testing.T) {
	url := benchServer(t, -1)
	events, res := runBenchJSON(t, loadgen.Config{URLs: []string{url + "/echo"}, Conns: 4, Messages: 400, Size: 100})
	if want := []string{"connected", "measure", "done"}; strings.Join(events, ",") != strings.Join(want, ",") {
		t.Errorf("events %v, want %v", events, want)
	}
	if res.Connected != 4 || res.Messages != 400 {
		t.Errorf("connected %d, messages %d; want 4 and 400", res.Connected, res.Messages)
	}
	if res.Latency.Count() != res.Messages || res.LatencyUS.Count != res.Messages {
		t.Errorf("histogram holds %d values for %d messages", res.Latency.Count(), res.Messages)
	}
	if res.Bytes != res.Messages*100 {
		t.Errorf("bytes %d for %d messages of 100", res.Bytes, res.Messages)
	}
	if len(res.Errors) != 0 {
		t.Errorf("errors %v", res.Errors)
	}
	checkPercentiles(t, res.LatencyUS)
}

func TestBenchTextAndCompression(t *testing.T) {
	url := benchServer(t, -1)
	_, res := runBenchJSON(t, loadgen.Config{URLs: []string{url + "/echo"}, Conns: 2, Messages: 100, Size: 2000, Text: true, Compression: true})
	if !strings.Contains(res.Extensions, "permessage-deflate") {
		t.Errorf("extensions %q, want permessage-deflate", res.Extensions)
	}
	if res.Messages < 100 || len(res.Errors) != 0 {
		t.Errorf("messages %d, errors %v", res.Messages, res.Errors)
	}
}

func TestBenchCountsCloseCodes(t *testing.T) {
	url := benchServer(t, -1)
	_, res := runBenchJSON(t, loadgen.Config{URLs: []string{url + "/policy"}, Conns: 3, Duration: 300 * time.Millisecond})
	if res.Errors["close 1008"] != 3 || len(res.Errors) != 1 {
		t.Errorf("errors %v, want close 1008: 3", res.Errors)
	}
	if res.Messages != 0 {
		t.Errorf("messages %d from a server that echoes nothing", res.Messages)
	}
}

func TestBenchCountsRefusedDials(t *testing.T) {
	url := benchServer(t, -1)
	var out, errOut bytes.Buffer
	b := &benchRun{cfg: loadgen.Config{URLs: []string{url + "/nowhere"}, Conns: 2, Duration: 100 * time.Millisecond},
		out: &out, errOut: &errOut}
	err := b.run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "handshake: HTTP 404: 2") {
		t.Errorf("error %v, want the 404s counted", err)
	}
}

func TestBenchOpenFileLimit(t *testing.T) {
	var out, errOut bytes.Buffer
	b := &benchRun{cfg: loadgen.Config{URLs: []string{"ws://127.0.0.1:1/echo"}, Conns: 25000},
		procs: 1, limit: 20000, out: &out, errOut: &errOut}
	err := b.run(context.Background())
	var le *loadgen.LimitError
	if !errors.As(err, &le) {
		t.Fatalf("error %v, want a *loadgen.LimitError", err)
	}
	for _, want := range []string{"25000 connections", "limit of 20000", "--procs", "2 or more processes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	if got := loadgen.ProcsFor(20000, 20000); got != 2 {
		t.Errorf("ProcsFor(20000, 20000) = %d, want 2", got)
	}
	if got := loadgen.ProcsFor(100, 20000); got != 1 {
		t.Errorf("ProcsFor(100, 20000) = %d, want 1", got)
	}
	if loadgen.OpenFileLimit() <= 0 {
		t.Errorf("open-file limit unreadable")
	}
}

func TestBenchSummary(t *testing.T) {
	url := benchServer(t, -1)
	var out, errOut bytes.Buffer
	b := &benchRun{cfg: loadgen.Config{URLs: []string{url + "/echo"}, Conns: 2, Messages: 50, Size: 64}, out: &out, errOut: &errOut}
	if err := b.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2 of 2 opened", "msg/s", "MB/s", "p50", "p90", "p99 ", "p99.9", "errors       none"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

func TestBenchRate(t *testing.T) {
	url := benchServer(t, -1)
	_, res := runBenchJSON(t, loadgen.Config{URLs: []string{url + "/echo"}, Conns: 2, Rate: 400, Duration: 500 * time.Millisecond})
	if res.Messages < 100 || res.Messages > 300 {
		t.Errorf("%d messages at 400/s for 0.5 s", res.Messages)
	}
}

func TestBenchIdleAnswersPings(t *testing.T) {
	url := benchServer(t, 50*time.Millisecond)
	_, res := runBenchJSON(t, loadgen.Config{URLs: []string{url + "/echo"}, Mode: loadgen.Idle, Conns: 3, Duration: 300 * time.Millisecond})
	if res.Pings < 6 || len(res.Errors) != 0 {
		t.Errorf("pings %d, errors %v; want keepalive answered", res.Pings, res.Errors)
	}
}

func TestBenchHandshakes(t *testing.T) {
	url := benchServer(t, -1)
	_, res := runBenchJSON(t, loadgen.Config{URLs: []string{url + "/echo"}, Mode: loadgen.Handshake, Conns: 2, Messages: 30})
	if res.Messages != 30 || len(res.Errors) != 0 {
		t.Errorf("handshakes %d, errors %v", res.Messages, res.Errors)
	}
	checkPercentiles(t, res.LatencyUS)
}

func TestBenchBroadcast(t *testing.T) {
	url := benchServer(t, -1)
	_, res := runBenchJSON(t, loadgen.Config{URLs: []string{url + "/broadcast"}, Mode: loadgen.Broadcast, Conns: 20, Messages: 5, Size: 256})
	if res.Messages != 5 || len(res.ToLastS) != 5 || len(res.Errors) != 0 {
		t.Fatalf("broadcasts %d, to-last %v, errors %v", res.Messages, res.ToLastS, res.Errors)
	}
	if res.Latency.Count() != 100 {
		t.Errorf("%d deliveries timed, want 5 x 20", res.Latency.Count())
	}
	for _, s := range res.ToLastS {
		if s <= 0 || s > 5 {
			t.Errorf("time to the last subscriber %v s", s)
		}
	}
}

func TestBenchMergeAndWorkerArgs(t *testing.T) {
	url := benchServer(t, -1)
	_, a := runBenchJSON(t, loadgen.Config{URLs: []string{url + "/echo"}, Conns: 1, Messages: 20})
	_, b := runBenchJSON(t, loadgen.Config{URLs: []string{url + "/echo"}, Conns: 2, Messages: 30})
	m := loadgen.Merge(a, b)
	if m.Procs != 2 || m.Conns != 3 || m.Messages != a.Messages+b.Messages || m.Latency.Count() != m.Messages {
		t.Errorf("merged %+v", m)
	}

	cfg := loadgen.Config{URLs: []string{"ws://a/echo", "ws://b/echo"}, Mode: loadgen.Idle, Conns: 7, ConnOffset: 3,
		Duration: 2 * time.Second, Warmup: time.Second, Size: 10, Rate: 5, Text: true, Compression: true,
		Timeout: time.Second, DialConcurrency: 9, Header: http.Header{"X-A": {"b"}}}
	cmd := benchCmd()
	args := workerArgs(cfg)
	if err := cmd.ParseFlags(args[1:]); err != nil {
		t.Fatal(err)
	}
	if got := cmd.Flags().Args(); strings.Join(got, " ") != "ws://a/echo ws://b/echo" {
		t.Errorf("worker URLs %v", got)
	}
	for flag, want := range map[string]string{"conns": "7", "conn-offset": "3", "mode": "idle", "duration": "2s",
		"text": "true", "compression": "true", "rate": "5", "worker": "true", "header": "[X-A: b]"} {
		if got := cmd.Flags().Lookup(flag).Value.String(); got != want {
			t.Errorf("--%s = %q, want %q", flag, got, want)
		}
	}
}

// TestBenchSplitsOverProcesses builds the binary and runs it under a low
// open-file limit: it must say that it splits the load, and merge what its
// client processes measured.
func TestBenchSplitsOverProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	url := benchServer(t, -1)
	bin := filepath.Join(t.TempDir(), "tether")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	// 100 connections need 132 files; under a limit of 80 that is 3 processes
	// of 34 or 33 (each 66 or 65 files).
	cmd := exec.Command("/bin/sh", "-c", `ulimit -n 80 && exec "$0" "$@"`, bin, "bench", "--json",
		"-c", "100", "-n", "300", "-s", "32", "--warmup", "0s", url+"/echo")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr.String())
	}
	if want := "100 connections need about 132 open files, over this process's limit of 80: splitting them over 3 client processes"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q lacks %q", stderr.String(), want)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var res loadgen.Result
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	if res.Procs != 3 || res.Connected != 100 || res.Messages != 300 || res.Latency.Count() != res.Messages || len(res.Errors) != 0 {
		t.Errorf("merged result: procs %d, connected %d, messages %d, histogram %d, errors %v",
			res.Procs, res.Connected, res.Messages, res.Latency.Count(), res.Errors)
	}
	for _, ev := range []string{`"event":"measure"`, `"event":"done"`} {
		if !strings.Contains(string(out), ev) {
			t.Errorf("output lacks %s:\n%s", ev, out)
		}
	}
}

// lockedBuffer is a bytes.Buffer safe to read while a run writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestBenchWorkerWaitsForTheOthers: a process of a split run, once
// connected, starts its warm-up and window only when the parent closes its
// standard input (every process is connected then), so that the windows of
// a split run coincide.
func TestBenchWorkerWaitsForTheOthers(t *testing.T) {
	url := benchServer(t, -1)
	in, release := io.Pipe()
	var out lockedBuffer
	b := &benchRun{cfg: loadgen.Config{URLs: []string{url + "/echo"}, Mode: loadgen.Idle, Conns: 2, Duration: 100 * time.Millisecond},
		worker: true, in: in, out: &out, errOut: io.Discard}
	done := make(chan error, 1)
	go func() { done <- b.run(context.Background()) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), `"event":"connected"`) {
		if time.Now().After(deadline) {
			t.Fatalf("not connected after 10 s: %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if strings.Contains(out.String(), `"event":"measure"`) {
		t.Fatalf("measured before the others were connected: %q", out.String())
	}
	release.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"event":"done"`) {
		t.Errorf("no window after the release: %q", out.String())
	}
}
