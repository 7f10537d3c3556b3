package dashboard

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/tetherws/tether"
)

// TestClosedKept: a closed connection stays in /api/connections/{id} with
// its final snapshot and history, and in ?state=closed, newest first, up to
// KeepClosed; the default list has live connections only.
func TestClosedKept(t *testing.T) {
	r := newRig(t, Options{KeepClosed: 2}, 20*time.Millisecond)
	var ids []string
	for i := range 3 {
		c := r.dial(t, -1)
		id := r.serverID(t, c)
		ids = append(ids, id)
		waitFor(t, "a pong", func() bool {
			d, _ := r.detail(t, id)
			return d.kinds()["pong"] > 0
		})
		if err := c.Close(tether.StatusCode(4000+i), fmt.Sprintf("bye %d", i)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the close", func() bool {
			d, ok := r.detail(t, id)
			return ok && d.State == "closed"
		})
	}
	if l := r.list(t, ""); len(l) != 0 {
		t.Errorf("/api/connections lists %d closed connections", len(l))
	}
	closed := r.list(t, "?state=closed")
	if len(closed) != 2 || closed[0]["id"] != ids[2] || closed[1]["id"] != ids[1] {
		t.Fatalf("?state=closed lists %v, want %s then %s", closed, ids[2], ids[1])
	}
	d, ok := r.detail(t, ids[2])
	if !ok {
		t.Fatal("closed connection: 404")
	}
	if d.CloseCode == nil || *d.CloseCode != 4002 || d.CloseReason != "bye 2" || d.CloseInitiator != "peer" || d.ClosedAt == nil {
		t.Errorf("close_code %v, close_reason %q, close_initiator %q, closed_at %v", d.CloseCode, d.CloseReason, d.CloseInitiator, d.ClosedAt)
	}
	if k := d.kinds(); k["ping"] == 0 || k["pong"] == 0 {
		t.Errorf("history of the closed connection: %v", k)
	}
	if _, ok := r.detail(t, ids[0]); ok {
		t.Errorf("%s kept beyond KeepClosed", ids[0])
	}

	// Past KeepClosedFor they go.
	s := r.dash.state
	s.mu.Lock()
	s.expire(time.Now().Add(DefaultKeepClosedFor + time.Second))
	s.mu.Unlock()
	if _, ok := r.detail(t, ids[2]); ok {
		t.Errorf("%s kept beyond KeepClosedFor", ids[2])
	}
}

// TestClosedNone: a negative KeepClosed keeps nothing.
func TestClosedNone(t *testing.T) {
	r := newRig(t, Options{KeepClosed: -1}, 0)
	c := r.dial(t, -1)
	id := r.serverID(t, c)
	c.CloseNow()
	waitFor(t, "the close", func() bool {
		code, _ := r.get(t, "/api/connections/"+id)
		return code == http.StatusNotFound
	})
	if l := r.list(t, "?state=closed"); len(l) != 0 {
		t.Errorf("?state=closed lists %d", len(l))
	}
}

// TestTimeoutSeenAfter is the on-call case: a connection fails a keepalive
// ping, and only then a page opens. Its hello must carry the failed
// connection, with its code and the history that shows the timeout.
func TestTimeoutSeenAfter(t *testing.T) {
	r := newRig(t, Options{}, 0)
	r.mux.HandleFunc("/silent", silentPeer)
	c := r.dialPath(t, "/silent", tether.ConnOptions{Registry: r.reg, PingInterval: 20 * time.Millisecond, PingTimeout: 50 * time.Millisecond})
	id := c.ID()
	<-c.Done()
	waitFor(t, "the closed connection", func() bool { return len(r.list(t, "?state=closed")) == 1 })

	hello := readMsg(t, r.openFeed(t, ""))
	if len(hello.Closed) != 1 || hello.Closed[0].ID != id {
		t.Fatalf("hello's closed: %+v, want %s", hello.Closed, id)
	}
	ci := hello.Closed[0]
	if ci.State != "closed" || ci.CloseCode == nil || *ci.CloseCode != int(tether.StatusInternalError) ||
		ci.CloseReason != tether.KeepaliveTimeoutReason || ci.PingTimeouts != 1 || ci.CloseInitiator != "local" {
		t.Errorf("closed connection: state %s, code %v, reason %q, timeouts %d, initiator %q",
			ci.State, ci.CloseCode, ci.CloseReason, ci.PingTimeouts, ci.CloseInitiator)
	}
	timeouts := 0
	for _, e := range hello.History[id] {
		if e.Kind == "timeout" {
			timeouts++
		}
	}
	if timeouts != 1 {
		t.Errorf("hello's history of %s has %d timeouts, want 1: %+v", id, timeouts, hello.History[id])
	}
}

// TestFeedSendsClosedWhenChanged: an update carries the closed list only
// when it changed, so a busy page is not sent a hundred connections twice
// a second.
func TestFeedSendsClosedWhenChanged(t *testing.T) {
	r := newRig(t, Options{}, 0)
	c := r.dial(t, -1)
	id := r.serverID(t, c)
	feed := r.openFeed(t, "")
	if hello := readMsg(t, feed); hello.Closed == nil || len(hello.Closed) != 0 {
		t.Fatalf("hello's closed = %v, want an empty list", hello.Closed)
	}
	c.CloseNow()
	for {
		m := readMsg(t, feed)
		if m.Closed == nil {
			continue
		}
		if len(m.Closed) != 1 || m.Closed[0].ID != id {
			t.Fatalf("update's closed = %+v, want %s", m.Closed, id)
		}
		break
	}
	if m := readMsg(t, feed); m.Closed != nil {
		t.Errorf("the next update resends the closed list")
	}
}
