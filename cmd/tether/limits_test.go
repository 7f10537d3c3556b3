package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tetherws/tether"
)

// TestServeHeaderLimit: a request whose header block is past
// DefaultMaxHeaderBytes is refused with 431 before any handler runs, so a
// client still sending headers holds tens of KiB at most, not net/http's
// 1 MiB. A usual upgrade with a few KiB of cookies is still accepted.
func TestServeHeaderLimit(t *testing.T) {
	addr, _ := startServe(t, tether.ConnOptions{})
	for _, tc := range []struct {
		cookie int
		want   int
	}{
		{4 << 10, http.StatusSwitchingProtocols},
		{64 << 10, http.StatusRequestHeaderFieldsTooLarge},
	} {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(nc, "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nCookie: c=%s\r\n\r\n",
			strings.Repeat("a", tc.cookie))
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil {
			t.Fatalf("%d bytes of cookie: %v", tc.cookie, err)
		}
		if resp.StatusCode != tc.want {
			t.Errorf("%d bytes of cookie: status %d, want %d", tc.cookie, resp.StatusCode, tc.want)
		}
		nc.Close()
	}
}

// startServeLogs is startServe with a logger of the given format writing
// into a buffer.
func startServeLogs(t *testing.T, format string) (string, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	cf := connFlags{logLevel: "info", logFormat: format}
	logger, err := cf.logger(logs)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := startServe(t, tether.ConnOptions{Logger: logger})
	return addr, logs
}

// dialEcho opens a WebSocket on addr's /echo and checks one round trip.
func dialEcho(ctx context.Context, addr string) error {
	c, _, err := tether.Dial(ctx, "ws://"+addr+"/echo", nil)
	if err != nil {
		return err
	}
	defer c.CloseNow()
	if err := c.Write(ctx, tether.Text, []byte("hi")); err != nil {
		return err
	}
	if _, p, err := c.Read(ctx); err != nil || string(p) != "hi" {
		return fmt.Errorf("echo: %q %v", p, err)
	}
	return c.Close(tether.StatusNormal, "")
}

// startServeLimits is startServe with lim.
func startServeLimits(t *testing.T, lim serveLimits) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		opts := tether.ConnOptions{Logger: slog.New(slog.DiscardHandler)}
		err := runServeWith(ctx, "127.0.0.1:0", "", opts, clusterFlags{}, serveTLS{}, lim, pw)
		pw.Close()
		errc <- err
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no first line: %v", err)
	}
	go io.Copy(io.Discard, pr)
	t.Cleanup(func() {
		cancel()
		<-errc
	})
	return strings.TrimSpace(strings.TrimPrefix(line, "listening on http://"))
}

// TestServeMaxConns: past --max-conns an upgrade is answered 503 with
// Retry-After and a reason a person can read; a closed connection frees
// its place.
func TestServeMaxConns(t *testing.T) {
	lim := defaultLimits()
	lim.maxConns = 2
	addr := startServeLimits(t, lim)
	ctx := t.Context()
	var conns []*tether.Conn
	for range 2 {
		c, _, err := tether.Dial(ctx, "ws://"+addr+"/echo", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		conns = append(conns, c)
	}
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fmt.Fprintf(nc, "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(string(body), "too many connections") {
		t.Fatalf("third connection: %d %q %q", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	conns[0].Close(tether.StatusNormal, "")
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, _, err := tether.Dial(ctx, "ws://"+addr+"/echo", nil)
		if err == nil {
			c.CloseNow()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no place freed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
