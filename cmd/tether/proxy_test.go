package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tetherws/tether"
)

// pyUpstream runs interop/peers/py_server.py (python-websockets) pinging
// every second; it returns its port, its event lines and a kill function.
func pyUpstream(t *testing.T) (port string, events *syncBuffer, kill func()) {
	t.Helper()
	python := pythonWebsockets(t)
	cmd := exec.Command(python, "../../interop/peers/py_server.py", "--ping-interval", "1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	kill = func() {
		if !killed {
			killed = true
			cmd.Process.Kill()
			cmd.Wait()
		}
	}
	t.Cleanup(kill)
	br := bufio.NewReader(stdout)
	line, _ := br.ReadString('\n')
	port, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if !ok {
		t.Fatalf("py_server.py: %q", line)
	}
	events = &syncBuffer{}
	go io.Copy(events, br)
	return port, events, kill
}

// startProxy runs `tether proxy` in-process in front of upstream.
func startProxy(t *testing.T, upstream string, logger *slog.Logger) string {
	t.Helper()
	p, err := newProxy(upstream, tether.ConnOptions{Logger: logger, PingInterval: -1, ReadLimit: 64 << 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := runProxy(ctx, p, "127.0.0.1:0", "", serveTLS{}, pw)
		pw.Close()
		errc <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("proxy: %v", err)
		}
	})
	line, _ := bufio.NewReader(pr).ReadString('\n')
	go io.Copy(io.Discard, pr)
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on http://")
	if !ok {
		t.Fatalf("proxy's first line %q", line)
	}
	return addr
}

// TestProxyReport puts `tether proxy` in front of a python-websockets
// server pinging every second, with three python clients pinging every
// 2 s, 0.5 s and 0.5 s: messages cross intact both ways, each side's pings
// reach the other end and their pongs come back, and the proxy's dashboard
// API shows both cadences of every proxied connection and the finding.
func TestProxyReport(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real peers for seconds")
	}
	port, upEvents, killUpstream := pyUpstream(t)
	proxyLog := &syncBuffer{}
	addr := startProxy(t, "ws://127.0.0.1:"+port, slog.New(slog.NewJSONHandler(proxyLog, &slog.HandlerOptions{Level: slog.LevelDebug})))

	// Messages, both ways: every byte value, text with newlines.
	var in strings.Builder
	blob := make([]byte, 70000)
	for i := range blob {
		blob[i] = byte(i * 7)
	}
	for _, m := range []jsonLine{{"text", "a\nb \"c\" ü"}, jsonMessage(tether.Binary, blob)} {
		b, _ := json.Marshal(m)
		in.Write(b)
		in.WriteByte('\n')
	}
	out, errOut, err := connectRun{url: "ws://" + addr + "/echo", in: in.String(), kf: connectFlags{jsonlInput: true, output: "jsonl"}}.do(t)
	if err != nil || out != in.String() {
		t.Fatalf("through the proxy: stdout %.200q stderr %q err %v", out, errOut, err)
	}

	_, stopClients := reportClients(t, "ws://"+addr+"/echo", "2", "0.5", "0.5")
	type conn struct {
		Role         string   `json:"role"`
		PeerInterval *float64 `json:"peer_ping_interval"`
	}
	eventually(t, "both cadences of the three proxied connections", func() bool {
		var conns []conn
		getJSON(t, "http://"+addr+"/api/connections", &conns)
		var fast, slow, upstream int
		for _, c := range conns {
			switch {
			case c.PeerInterval == nil:
			case c.Role == "client" && *c.PeerInterval > 0.9 && *c.PeerInterval < 1.2:
				upstream++
			case c.Role == "server" && *c.PeerInterval > 0.45 && *c.PeerInterval < 0.6:
				fast++
			case c.Role == "server" && *c.PeerInterval > 1.9 && *c.PeerInterval < 2.2:
				slow++
			}
		}
		return len(conns) == 6 && fast == 2 && slow == 1 && upstream == 3
	})
	var fs struct {
		Findings []tether.Finding `json:"findings"`
	}
	getJSON(t, "http://"+addr+"/api/findings", &fs)
	if len(fs.Findings) != 1 || fs.Findings[0].Kind != tether.FindingIntervalMismatch || fs.Findings[0].Remote != "127.0.0.1" || fs.Findings[0].Count != 3 {
		t.Fatalf("findings %+v, want one interval-mismatch from 127.0.0.1 with 3 connections", fs.Findings)
	}
	eventually(t, "pings and pongs relayed end to end", func() bool {
		ev, lg := upEvents.String(), proxyLog.String()
		return strings.Contains(ev, "\nping ") && strings.Contains(ev, "\npong ") &&
			strings.Contains(lg, `"pinger":"client"`) && strings.Contains(lg, `"pinger":"upstream"`)
	})
	stopClients()

	// The upstream goes away: the client gets 1014, and the log says so.
	done := make(chan string, 1)
	go func() {
		_, errOut, _ := connectRun{url: "ws://" + addr + "/echo", kf: connectFlags{listenOnly: true}}.do(t)
		done <- errOut
	}()
	eventually(t, "the listener proxied", func() bool { return strings.Count(proxyLog.String(), "proxied connection") == 5 })
	killUpstream()
	select {
	case errOut := <-done:
		if !strings.HasPrefix(errOut, "connection closed: 1014") {
			t.Fatalf("client saw %q, want 1014", errOut)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the client was not closed when the upstream went away")
	}
	if !strings.Contains(proxyLog.String(), "upstream ended: closing the client") {
		t.Fatal("the proxy did not log the upstream's end")
	}
}
