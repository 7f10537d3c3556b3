package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherws/tether"
)

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestConnectJSONDebugLogs runs connect as `--log-format json --log-level
// debug --ping-interval 100ms` would: every record about the connection
// carries conn, role and remote, and the keepalive records carry their
// attributes.
func TestConnectJSONDebugLogs(t *testing.T) {
	addr, _ := startServe(t, tether.ConnOptions{})
	cf := connFlags{pingInterval: 100 * time.Millisecond, pingTimeout: time.Second, mode: "fixed",
		maxSize: 1 << 20, logLevel: "debug", logFormat: "json"}
	var logs syncBuffer
	logger, err := cf.logger(&logs)
	if err != nil {
		t.Fatal(err)
	}
	copts, err := cf.options(logger)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte("hello\n"))
		time.Sleep(450 * time.Millisecond) // a few keepalive periods
		pw.Close()
	}()
	var out, errOut bytes.Buffer
	if err := runConnect(context.Background(), "ws://"+addr+"/echo", &tether.DialOptions{ConnOptions: copts}, pr, &out, &errOut); err != nil {
		t.Fatalf("connect: %v %s", err, errOut.String())
	}

	var conn string
	msgs := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		msg, _ := rec["msg"].(string)
		msgs[msg]++
		id, _ := rec["conn"].(string)
		if id == "" || rec["role"] != "client" || rec["remote"] == nil {
			t.Fatalf("record without conn/role/remote: %s", line)
		}
		if conn == "" {
			conn = id
		} else if id != conn {
			t.Fatalf("two connection IDs in one connection's log: %s, %s", conn, id)
		}
		switch msg {
		case "sent keepalive ping":
			if rec["interval"] != float64(100*time.Millisecond) {
				t.Fatalf("interval attribute %v, want 100ms in ns", rec["interval"])
			}
		case "received keepalive pong":
			if rtt, ok := rec["rtt"].(float64); !ok || rtt <= 0 {
				t.Fatalf("pong record without a positive rtt: %s", line)
			}
		}
	}
	for _, want := range []string{"connection open", "sent keepalive ping", "received keepalive pong", "connection closed"} {
		if msgs[want] == 0 {
			t.Fatalf("no %q record in:\n%s", want, logs.String())
		}
	}
	if msgs["sent keepalive ping"] < 2 {
		t.Fatalf("%d keepalive pings in 450 ms at 100 ms", msgs["sent keepalive ping"])
	}
}
