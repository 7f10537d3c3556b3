package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherws/tether"
	"github.com/tetherws/tether/internal/browsertest"
)

// pythonWebsockets returns Debian's python3 when it has websockets: a
// test without it is skipped, unless CI is set, where it fails.
func pythonWebsockets(t *testing.T) string {
	t.Helper()
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import websockets").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("needs python3-websockets (make deps installs it): %v", err)
		}
		t.Skipf("python3-websockets missing (make deps installs it): %v", err)
	}
	return python
}

// reportClients starts one python-websockets process holding a connection
// to url per interval, and returns once all are open; stop closes them.
func reportClients(t *testing.T, url string, intervals ...string) (log *syncBuffer, stop func()) {
	t.Helper()
	python := pythonWebsockets(t)
	cmd := exec.Command(python, append([]string{"testdata/report_clients.py", url}, intervals...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	log = &syncBuffer{}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := false
	stop = func() {
		if done {
			return
		}
		done = true
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("python clients: %v\n%s", err, log.String())
		}
	}
	t.Cleanup(stop)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "open" {
		t.Fatalf("python clients did not open: %q %v\n%s", line, err, log.String())
	}
	go io.Copy(io.Discard, stdout)
	return log, stop
}

// TestReportAgainstServe is the report behind Tether, seen from `tether
// serve`: one python-websockets process holds three connections to /echo,
// pinging every 2 s, 0.5 s and 0.5 s. The server measures each peer's
// cadence (/api/connections), warns that one client's connections ping at
// different intervals, lists it in /api/findings, and `tether diagnose`
// on the server's own debug log reports the mismatch for that address.
func TestReportAgainstServe(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real clients for seconds")
	}
	serverLog := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(serverLog, &slog.HandlerOptions{Level: slog.LevelDebug}))
	addr, stop := startServe(t, tether.ConnOptions{Logger: logger})
	_, stopClients := reportClients(t, "ws://"+addr+"/echo", "2", "0.5", "0.5")

	type conn struct {
		ID           string   `json:"id"`
		Role         string   `json:"role"`
		Path         string   `json:"path"`
		UserAgent    string   `json:"user_agent"`
		PeerPings    int      `json:"peer_pings"`
		PeerInterval *float64 `json:"peer_ping_interval"`
	}
	var conns []conn
	eventually(t, "the peers' cadences measured", func() bool {
		conns = nil
		getJSON(t, "http://"+addr+"/api/connections", &conns)
		var fast, slow int
		for _, c := range conns {
			switch {
			case c.PeerInterval == nil:
			case *c.PeerInterval > 0.45 && *c.PeerInterval < 0.6:
				fast++
			case *c.PeerInterval > 1.9 && *c.PeerInterval < 2.2:
				slow++
			}
		}
		return len(conns) == 3 && fast == 2 && slow == 1
	})
	for _, c := range conns {
		if c.Role != "server" || c.Path != "/echo" || !strings.Contains(c.UserAgent, "websockets") {
			t.Errorf("connection %+v", c)
		}
	}

	var fs struct {
		Findings []tether.Finding `json:"findings"`
	}
	getJSON(t, "http://"+addr+"/api/findings", &fs)
	findings := fs.Findings
	if len(findings) != 1 || findings[0].Kind != tether.FindingIntervalMismatch || findings[0].Remote != "127.0.0.1" || findings[0].Count != 3 {
		t.Fatalf("findings %+v, want one interval-mismatch from 127.0.0.1 with 3 connections", findings)
	}
	reportPage(t, "http://"+addr+"/")

	stopClients()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var warned bool
	for _, line := range strings.Split(serverLog.String(), "\n") {
		var rec struct {
			Msg    string   `json:"msg"`
			Remote string   `json:"remote"`
			Conns  []string `json:"conns"`
			IVs    []string `json:"peer_ping_intervals"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "connections from one client to one endpoint whose peers ping at different intervals" {
			warned = true
			var fast, slow int
			for _, iv := range rec.IVs {
				d, _ := time.ParseDuration(iv)
				switch {
				case d > 400*time.Millisecond && d < 600*time.Millisecond:
					fast++
				case d > 1800*time.Millisecond && d < 2200*time.Millisecond:
					slow++
				}
			}
			if rec.Remote != "127.0.0.1" || len(rec.Conns) != 3 || fast != 2 || slow != 1 {
				t.Errorf("warning %+v, want 3 connections from 127.0.0.1 whose peers ping every 0.5 s, 0.5 s and 2 s", rec)
			}
		}
	}
	if !warned {
		t.Fatalf("no cadence warning in the server's log:\n%s", serverLog.String())
	}

	// tether diagnose on the server's own log.
	out := runDiag(t, diagnoseRun{stdin: strings.NewReader(serverLog.String()), json: true})
	var rep struct {
		Findings []struct {
			Kind    string `json:"kind"`
			Message string `json:"message"`
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range rep.Findings {
		found = found || f.Kind == "interval-mismatch" && strings.Contains(f.Message, "127.0.0.1")
	}
	if !found {
		t.Fatalf("diagnose on the server's log reports no interval mismatch for 127.0.0.1:\n%s", out)
	}
}

// reportPage opens the dashboard in Chromium (dashboard/browser/report.mjs):
// each lane shows its peer's cadence and the header the finding. The
// screenshot goes to $TETHER_SCREENSHOTS/report.png, or a temporary
// directory.
func reportPage(t *testing.T, url string) {
	t.Helper()
	const dir = "../../dashboard/browser"
	node := browsertest.Prereqs(t, dir)
	shots := os.Getenv("TETHER_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(filepath.Join(shots, "report.png"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "report.mjs", url, abs)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("the page in Chromium: %v\n%s", err, out)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
