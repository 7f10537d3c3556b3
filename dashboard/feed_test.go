package dashboard

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tetherws/tether"
)

// openFeed dials the rig's feed as the page does.
func (r *rig) openFeed(t *testing.T, q string) *tether.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := tether.Dial(ctx, "ws"+strings.TrimPrefix(r.url, "http")+"/api/feed"+q, &tether.DialOptions{
		ConnOptions: tether.ConnOptions{Registry: tether.NoRegistry, Logger: quiet},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func readMsg(t *testing.T, c *tether.Conn) stateMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var m stateMsg
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return m
}

func TestFeed(t *testing.T) {
	r := newRig(t, Options{}, 50*time.Millisecond)
	a := r.dial(t, -1)
	waitFor(t, "the first connection", func() bool { return len(r.list(t, "")) == 1 })
	feed := r.openFeed(t, "")
	hello := readMsg(t, feed)
	if hello.Type != "hello" || hello.Total != 1 || len(hello.Connections) != 1 {
		t.Fatalf("hello %+v", hello)
	}
	first := hello.Connections[0].ID
	if len(r.list(t, "")) != 1 {
		t.Fatalf("the feed lists itself")
	}

	// A second connection appears, keepalive events flow, and a closed
	// connection goes with a close event.
	r.dial(t, -1)
	pongs := 0
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		m := readMsg(t, feed)
		if m.Type != "update" {
			t.Fatalf("got %q, want update", m.Type)
		}
		for _, e := range m.Events {
			if e.Kind == "pong" {
				pongs++
			}
		}
		if m.Total == 2 && pongs >= 2 {
			break
		}
	}
	if pongs < 2 {
		t.Fatalf("saw %d pongs", pongs)
	}
	a.CloseNow()
	for {
		m := readMsg(t, feed)
		closed := false
		for _, e := range m.Events {
			closed = closed || e.Kind == "close" && e.Conn == first
		}
		if closed {
			if m.Total != 1 || m.Connections[0].ID == first {
				t.Fatalf("closed connection still listed: %+v", m.Connections)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no close event")
		}
	}

	// Closing the dashboard ends the feed with 1001.
	r.dash.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		if _, _, err := feed.Read(ctx); err != nil {
			if code := tether.CloseStatus(err); code != tether.StatusGoingAway {
				t.Fatalf("feed ended with %v, want 1001", err)
			}
			break
		}
	}
}

func TestFeedFilterAndState(t *testing.T) {
	r := newRig(t, Options{}, 0)
	r.dial(t, -1)
	waitFor(t, "the connection", func() bool { return len(r.list(t, "")) == 1 })
	if m := readMsg(t, r.openFeed(t, "?role=client")); m.Total != 0 {
		t.Errorf("role=client feed lists %d", m.Total)
	}
	code, b := r.get(t, "/api/state")
	var m stateMsg
	if err := json.Unmarshal(b, &m); code != 200 || err != nil || m.Total != 1 || m.History == nil {
		t.Errorf("/api/state: %d %v %s", code, err, b)
	}
}
