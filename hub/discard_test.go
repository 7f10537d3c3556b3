package hub

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherws/tether"
)

// TestJoinAndDiscard is the handler docs/keepalive.md sketches: it joins
// the connection to a room, calls DiscardMessages and returns. The client
// sends far more than the connection's read-ahead and reads every
// broadcast; the server's connection drops (and counts) what it receives,
// answers the client's pings and takes its own pongs throughout, and no
// keepalive timeout or stall happens.
func TestJoinAndDiscard(t *testing.T) {
	h := New(&Options{Logger: discard})
	reg := tether.NewRegistry()
	reg.Logger = discard
	var wg sync.WaitGroup
	joined := make(chan *tether.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := tether.Accept(w, r, &tether.AcceptOptions{ConnOptions: tether.ConnOptions{
			Registry: reg, Logger: discard, ReadAhead: 16 << 10}})
		if err != nil {
			return
		}
		if err := h.Join("news", c); err != nil {
			c.CloseNow()
			return
		}
		if err := c.DiscardMessages(); err != nil {
			t.Error(err)
		}
		wg.Add(1)
		go func() { <-c.Done(); wg.Done() }()
		joined <- c
	}))
	defer func() {
		srv.Close()
		h.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		reg.Shutdown(ctx, tether.StatusGoingAway, "")
		wg.Wait()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := tether.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/", &tether.DialOptions{ConnOptions: tether.ConnOptions{
		Registry: tether.NoRegistry, Logger: discard, PingInterval: -1}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	sc := <-joined

	const n = 1000 // 1 MiB sent, 64 times the server's read-ahead
	msg := make([]byte, 1024)
	for i := range n {
		if err := c.Write(ctx, tether.Binary, msg); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			if _, err := sc.Ping(ctx); err != nil {
				t.Fatalf("server's ping after %d messages: %v", i, err)
			}
			if _, err := c.Ping(ctx); err != nil {
				t.Fatalf("client's ping after %d messages: %v", i, err)
			}
			if got, err := h.Broadcast("news", tether.Text, []byte("tick")); err != nil || got != 1 {
				t.Fatalf("broadcast reached %d: %v", got, err)
			}
			if _, p, err := c.Read(ctx); err != nil || string(p) != "tick" {
				t.Fatalf("client read %q, %v", p, err)
			}
		}
	}
	eventually(t, "every message discarded", func() bool { return sc.Stats().DiscardedMessages == n })
	st := sc.Stats()
	if st.QueuedMessages != 0 || st.ReadStalls != 0 || st.PingTimeouts != 0 || sc.Err() != nil {
		t.Fatalf("server connection: %+v, err %v", st, sc.Err())
	}
	if err := c.Close(tether.StatusNormal, ""); err != nil {
		t.Fatalf("close handshake with the discarding server: %v", err)
	}
}
