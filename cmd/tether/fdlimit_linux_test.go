package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeOpenFileLimit drives `tether serve` into the open-file limit:
// the test lowers its own process's limit and fills it, then connects. The
// server's accept fails with EMFILE; net/http backs off and retries, and
// says so through the server's logger (with --log-format json, as JSON,
// not plain text in the middle of the stream). Once descriptors are free
// again, the waiting client is served.
func TestServeOpenFileLimit(t *testing.T) {
	addr, logs := startServeLogs(t, "json")
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = uint64(openFiles(t) + 64)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	var filler []*os.File
	release := func() {
		for _, f := range filler {
			f.Close()
		}
		filler = nil
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)
	}
	defer release()
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			break
		}
		filler = append(filler, f)
	}
	if len(filler) == 0 {
		t.Fatal("no descriptor could be opened under the lowered limit")
	}
	// One descriptor for the client's socket; the server's accept finds
	// none left.
	filler[len(filler)-1].Close()
	filler = filler[:len(filler)-1]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- dialEcho(ctx, addr) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "Accept error") {
		if time.Now().After(deadline) {
			release()
			t.Fatalf("no accept error logged; log:\n%s", logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	release()
	if err := <-served; err != nil {
		t.Errorf("the client waiting through the accept errors: %v", err)
	}
	checkJSONLines(t, logs.String(), "http: Accept error")
}

// openFiles counts this process's open descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// checkJSONLines fails unless every line of logs is a JSON record, and one
// of them has a message starting with prefix at level WARN.
func checkJSONLines(t *testing.T, logs, prefix string) {
	t.Helper()
	found := false
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		if msg, _ := rec["msg"].(string); strings.HasPrefix(msg, prefix) && rec["level"] == "WARN" {
			found = true
		}
	}
	if !found {
		t.Errorf("no WARN record starting %q in:\n%s", prefix, logs)
	}
}
