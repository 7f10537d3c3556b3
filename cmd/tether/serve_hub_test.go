package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tetherws/tether"
)

// dialBroadcast opens a client on /broadcast; a stalled one gets a small
// receive buffer and never reads.
func dialBroadcast(t *testing.T, addr string, stalled bool) *tether.Conn {
	t.Helper()
	opts := &tether.DialOptions{FanOut: true, ConnOptions: tether.ConnOptions{
		Logger: slog.New(slog.DiscardHandler), Registry: tether.NoRegistry, PingInterval: -1,
		CompressionMode: tether.CompressionDisabled}} // the bytes, not deflate, are under test
	if stalled {
		opts.NetDialContext = func(ctx context.Context, network, a string) (net.Conn, error) {
			var d net.Dialer
			nc, err := d.DialContext(ctx, network, a)
			if err == nil {
				nc.(*net.TCPConn).SetReadBuffer(4096)
			}
			return nc, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := tether.Dial(ctx, "ws://"+addr+"/broadcast", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// TestServeBroadcastSlowConsumer: /broadcast goes through the hub. One
// subscriber never reads; the others get every message in order while the
// server closes the stalled one (queue full: 1013, dropped after the close
// timeout as its socket is full) instead of waiting on it.
func TestServeBroadcastSlowConsumer(t *testing.T) {
	addr, _ := startServe(t, tether.ConnOptions{CloseTimeout: 500 * time.Millisecond, PingInterval: -1})
	const readers, total, window = 10, 600, 32
	conns := make([]*tether.Conn, readers)
	for i := range conns {
		conns[i] = dialBroadcast(t, addr, false)
	}
	dialBroadcast(t, addr, true)
	waitConns(t, addr, readers+1)
	// Every reader in the room before the numbered messages; the probes
	// still in flight after are one byte long, and skipped.
	broadcastUntilAll(t, context.Background(), conns[0], conns, []byte{'j'})

	acks := make([]sync.WaitGroup, total)
	errs := make(chan error, readers)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			for want := range total {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, p, err := c.Read(ctx)
				for err == nil && len(p) == 1 { // a late probe
					_, p, err = c.Read(ctx)
				}
				cancel()
				if err != nil {
					errs <- fmt.Errorf("reader %d, message %d: %w", i, want, err)
					return
				}
				if got := int(binary.BigEndian.Uint32(p)); got != want {
					errs <- fmt.Errorf("reader %d: message %d, want %d", i, got, want)
					return
				}
				acks[want].Done()
			}
		})
	}
	msg := make([]byte, 16<<10)
	for i := range total {
		if i >= window {
			waitAcks(t, &acks[i-window], errs)
		}
		acks[i].Add(readers)
		rand.Read(msg) // incompressible: the stalled socket fills
		binary.BigEndian.PutUint32(msg, uint32(i))
		if err := conns[0].Write(context.Background(), tether.Binary, msg); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// The stalled subscriber is gone from the server; the readers stay.
	waitConnsExactly(t, addr, readers)
}

// waitAcks waits for every reader to get a message, failing on a reader's
// error or after 10 s.
func waitAcks(t *testing.T, wg *sync.WaitGroup, errs chan error) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case err := <-errs:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("readers stalled")
	}
}

// listed returns how many connections /api/connections lists, -1 on error.
func listed(addr string) int {
	resp, err := http.Get("http://" + addr + "/api/connections")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var list []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return -1
	}
	return len(list)
}

// waitConnsExactly polls /api/connections until it lists exactly n.
func waitConnsExactly(t *testing.T, addr string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if listed(addr) == n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("server lists %d connections, want %d", listed(addr), n)
}

// TestServeShutdownParallel: a shutdown closes every connection, on both
// endpoints, with 1001 and returns without error.
func TestServeShutdownParallel(t *testing.T) {
	addr, stop := startServe(t, tether.ConnOptions{PingInterval: -1})
	n := 100
	conns := make([]*tether.Conn, 0, n)
	for i := range n {
		path := "/echo"
		if i%2 == 1 {
			path = "/broadcast"
		}
		c, _, err := tether.Dial(context.Background(), "ws://"+addr+path, &tether.DialOptions{FanOut: true,
			ConnOptions: tether.ConnOptions{Logger: slog.New(slog.DiscardHandler), Registry: tether.NoRegistry, PingInterval: -1}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		conns = append(conns, c)
	}
	waitConns(t, addr, n)
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("serve returned %v", err)
	}
	t.Logf("shutdown of %d connections: %v", n, time.Since(start).Round(time.Millisecond))
	for i, c := range conns {
		_, _, err := c.Read(context.Background())
		if code := tether.CloseStatus(err); code != tether.StatusGoingAway {
			t.Fatalf("conn %d: %v, want 1001", i, err)
		}
	}
}
