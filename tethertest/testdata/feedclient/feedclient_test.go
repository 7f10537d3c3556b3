package feedclient

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tetherws/tether"
	"github.com/tetherws/tether/tethertest"
)

// TestFollowResumesWithBackoff: the feed server drops the connection after
// two events, three times. On a fake clock, each redial waits exactly the
// backoff the client promises (2 s, then 4 s, after a first random one
// under 1 s), happens only once the clock has been advanced that far, and
// subscribes from the last event received. No wall-clock time is waited.
func TestFollowResumesWithBackoff(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	subs := make(chan int, 10)
	srv := tethertest.NewServer(t, nil, func(c *tether.Conn, r *http.Request) {
		defer c.CloseNow()
		var s Subscribe
		if err := tether.ReadJSON(ctx, c, &s); err != nil {
			return
		}
		subs <- s.Since
		for i := 1; i <= 2; i++ {
			tether.WriteJSON(ctx, c, Event{Seq: s.Since + i, Text: "event"})
		}
		c.Close(tether.StatusServiceRestart, "restarting") // 1012: the client comes back
	})

	clk := tethertest.NewClock()
	type retry struct {
		attempt int
		delay   time.Duration
	}
	retries := make(chan retry, 10)
	events := make(chan Event, 100)
	followCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Follow(followCtx, srv.URL+"/feed", Options{Clock: clk, OnRetry: func(a int, d time.Duration) { retries <- retry{a, d} }},
			func(e Event) { events <- e })
	}()

	if since := <-subs; since != 0 {
		t.Fatalf("first subscription since %d, want 0", since)
	}
	wantDelay := []time.Duration{0, 2 * time.Second, 4 * time.Second} // 0: random, under 1 s
	for i, want := range wantDelay {
		r := <-retries
		if r.attempt != i+2 {
			t.Fatalf("retry %d: attempt %d, want %d", i, r.attempt, i+2)
		}
		if (i == 0 && (r.delay < 0 || r.delay >= time.Second)) || (i > 0 && r.delay != want) {
			t.Fatalf("retry %d: delay %v, want %v", i, r.delay, want)
		}
		if r.delay > 0 { // a zero first delay (one chance in 2^53) arms no timer
			if err := clk.WaitTimers(ctx, 1); err != nil { // the loop is now asleep on the fake clock
				t.Fatal(err)
			}
			clk.Advance(r.delay - time.Nanosecond)
			select {
			case s := <-subs:
				t.Fatalf("retry %d: redialed (since %d) a nanosecond before its %v delay", i, s, r.delay)
			default:
			}
			clk.Advance(time.Nanosecond)
		}
		if since, want := <-subs, 2*(i+1); since != want {
			t.Fatalf("subscription %d since %d, want %d (the last event seen)", i+2, since, want)
		}
	}
	stop()
	if err := <-done; err == nil {
		t.Fatal("Follow ended without an error when its context ended")
	}
	close(events)
	n := 0
	for e := range events {
		n++
		if e.Seq != n {
			t.Fatalf("event %d has seq %d: events lost or repeated", n, e.Seq)
		}
	}
	if n < 6 {
		t.Fatalf("%d events, want at least 6", n)
	}
}

// TestGreetOverNetConn: Greet's line protocol over a net.Conn carried by a
// WebSocket, both ends in memory.
func TestGreetOverNetConn(t *testing.T) {
	ctx := context.Background()
	client, server := tethertest.Pair(t, nil, nil)
	go func() {
		nc := tether.NetConn(ctx, server, tether.Binary)
		line, err := bufio.NewReader(nc).ReadString('\n')
		if err == nil {
			nc.Write([]byte("WELCOME " + strings.TrimPrefix(line, "HELLO ")))
		}
	}()
	got, err := Greet(tether.NetConn(ctx, client, tether.Binary), "ada")
	if err != nil || got != "WELCOME ada" {
		t.Fatalf("Greet: %q, %v", got, err)
	}
}
