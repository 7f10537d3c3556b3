package dashboard

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetherws/tether"
)

// contractFields are the fields Contract 2 (docs/contracts.md) requires of every
// /api/connections object, with the JSON kinds they may take.
var contractFields = map[string][]string{
	"id": {"string"}, "role": {"string"}, "remote": {"string"}, "local": {"string"},
	"path": {"string"}, "state": {"string"}, "opened_at": {"time"},
	"ping_interval": {"number"}, "ping_timeout": {"number"},
	"last_ping_at": {"time", "null"}, "last_pong_at": {"time", "null"}, "rtt_ms": {"number", "null"},
	"messages_in": {"number"}, "messages_out": {"number"}, "bytes_in": {"number"}, "bytes_out": {"number"},
}

// peerFields are the fields every object has besides Contract 2's: the
// peer's keepalive, the read queue, and how the connection ended (null
// while it is live).
var peerFields = map[string][]string{
	"peer_pings": {"number"}, "peer_ping_interval": {"number", "null"},
	"peer_ping_interval_min": {"number", "null"}, "peer_ping_interval_max": {"number", "null"},
	"last_peer_ping_at": {"time", "null"}, "queued_messages": {"number"}, "queued_bytes": {"number"},
	"read_stalled_since": {"null"}, "read_stalls": {"number"}, "discarded_messages": {"number"},
	"closed_at": {"null"}, "close_code": {"null"},
}

func jsonKind(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case float64:
		return "number"
	case string:
		if _, err := time.Parse(time.RFC3339, v); err == nil {
			return "time"
		}
		return "string"
	}
	return "other"
}

func TestConnectionsMatchContract(t *testing.T) {
	r := newRig(t, Options{}, 40*time.Millisecond)
	c := r.dial(t, -1)
	ctx := t.Context()
	if err := c.Write(ctx, tether.Text, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	waitFor(t, "a pong on the server side", func() bool {
		list := r.list(t, "")
		if len(list) == 1 && list[0]["last_pong_at"] != nil {
			obj = list[0]
			return true
		}
		return false
	})
	for name, kinds := range contractFields {
		v, ok := obj[name]
		if !ok {
			t.Errorf("field %q missing", name)
			continue
		}
		if k := jsonKind(v); !slices.Contains(kinds, k) {
			t.Errorf("field %q = %v is %s, want %v", name, v, k, kinds)
		}
	}
	for name, kinds := range peerFields {
		v, ok := obj[name]
		if !ok {
			t.Errorf("field %q missing", name)
			continue
		}
		if k := jsonKind(v); !slices.Contains(kinds, k) {
			t.Errorf("field %q = %v is %s, want %v", name, v, k, kinds)
		}
	}
	if _, ok := obj["node"]; ok {
		t.Errorf("node present outside cluster mode")
	}
	checks := map[string]any{
		"role": "server", "path": "/echo", "state": "open", "remote": c.LocalAddr().String(),
		"ping_interval": 0.04, "ping_timeout": 20.0, "messages_in": 1.0, "messages_out": 1.0,
		"bytes_in": 5.0, "bytes_out": 5.0,
	}
	for k, want := range checks {
		if obj[k] != want {
			t.Errorf("%s = %v, want %v", k, obj[k], want)
		}
	}
	if rtt := obj["rtt_ms"].(float64); rtt <= 0 || rtt > 1000 {
		t.Errorf("rtt_ms = %v", rtt)
	}
}

func TestConnectionsFilter(t *testing.T) {
	r := newRig(t, Options{Node: "n1"}, 0)
	r.dial(t, -1)
	r.dial(t, -1)
	waitFor(t, "two connections", func() bool { return len(r.list(t, "")) == 2 })
	for q, want := range map[string]int{
		"?role=server": 2, "?role=client": 0, "?path=/echo": 2, "?path=/other": 0,
		"?state=open": 2, "?state=closing": 0, "?role=server&path=/echo&state=open": 2,
	} {
		if got := len(r.list(t, q)); got != want {
			t.Errorf("%s: %d connections, want %d", q, got, want)
		}
	}
	if n := r.list(t, "")[0]["node"]; n != "n1" {
		t.Errorf("node = %v, want n1", n)
	}
}

func TestConnectionHistory(t *testing.T) {
	r := newRig(t, Options{History: 5}, 20*time.Millisecond)
	r.dial(t, -1)
	var id string
	waitFor(t, "the connection", func() bool {
		list := r.list(t, "")
		if len(list) == 1 {
			id = list[0]["id"].(string)
		}
		return id != ""
	})
	var d struct {
		ID      string `json:"id"`
		History []struct {
			Kind  string    `json:"kind"`
			Time  time.Time `json:"time"`
			RTTms *float64  `json:"rtt_ms"`
		} `json:"history"`
	}
	waitFor(t, "a full history", func() bool {
		code, b := r.get(t, "/api/connections/"+id)
		if code != http.StatusOK {
			t.Fatalf("detail: %d %s", code, b)
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		return len(d.History) == 5
	})
	if d.ID != id {
		t.Errorf("id %q, want %q", d.ID, id)
	}
	for i, e := range d.History {
		if i > 0 && e.Time.Before(d.History[i-1].Time) {
			t.Errorf("history out of order at %d", i)
		}
		switch e.Kind {
		case "ping":
		case "pong":
			if e.RTTms == nil || *e.RTTms <= 0 {
				t.Errorf("pong without rtt: %+v", e)
			}
		default:
			t.Errorf("unexpected kind %q", e.Kind)
		}
	}
	if code, _ := r.get(t, "/api/connections/nope"); code != http.StatusNotFound {
		t.Errorf("unknown id: %d, want 404", code)
	}
}

// TestHistoryMovesOnClose: a closed connection leaves the live tracks and
// is kept, history and all, among the recently closed.
func TestHistoryMovesOnClose(t *testing.T) {
	r := newRig(t, Options{}, 20*time.Millisecond)
	c := r.dial(t, -1)
	waitFor(t, "keepalive events", func() bool {
		r.dash.state.mu.Lock()
		defer r.dash.state.mu.Unlock()
		n := 0
		r.dash.state.conns.each(func(_ trackKey, tr *track) {
			if tr.hist != nil {
				n = len(tr.hist.own.ev)
			}
		})
		return n > 2
	})
	c.CloseNow()
	waitFor(t, "the track to move", func() bool {
		r.dash.state.mu.Lock()
		defer r.dash.state.mu.Unlock()
		return r.dash.state.conns.len() == 0 && len(r.dash.state.ended) == 1
	})
	r.dash.state.mu.Lock()
	defer r.dash.state.mu.Unlock()
	if n := len(r.dash.state.ended[0].history(r.dash.state.ended[0].info.ID)); n <= 2 {
		t.Errorf("closed connection kept %d events, want its history", n)
	}
}

func TestTrackRing(t *testing.T) {
	var tr track
	for i := range 7 {
		tr.remember(tether.Event{Kind: tether.EventPing, Time: time.Unix(int64(i), 0)}, 3)
	}
	h := tr.history("x")
	if len(h) != 3 || h[0].Time.Unix() != 4 || h[2].Time.Unix() != 6 {
		t.Fatalf("history %v, want the last three in order", h)
	}
	// The peer's pings have a ring of their own and merge in time order:
	// a fast peer does not push the connection's own pings out.
	for i := range 10 {
		tr.remember(tether.Event{Kind: tether.EventPeerPing, Time: time.Unix(int64(i), 500)}, 3)
	}
	h = tr.history("x")
	var kinds []string
	for i, e := range h {
		kinds = append(kinds, e.Kind)
		if i > 0 && e.Time.Before(h[i-1].Time) {
			t.Errorf("history out of order at %d", i)
		}
	}
	if got := strings.Join(kinds, " "); got != "ping ping ping peer_ping peer_ping peer_ping" {
		t.Errorf("history kinds %q", got)
	}
}

func TestAuthorize(t *testing.T) {
	r := newRig(t, Options{Authorize: BearerToken("s3cret")}, 0)
	for _, p := range []string{"/", "/api/connections", "/api/state", "/metrics", "/api/connections/x"} {
		if code, _ := r.get(t, p); code != http.StatusUnauthorized {
			t.Errorf("%s without token: %d, want 401", p, code)
		}
		if code, _ := r.get(t, p+"?token=wrong"); code != http.StatusUnauthorized {
			t.Errorf("%s with a wrong token: %d, want 401", p, code)
		}
	}
	if code, _ := r.get(t, "/api/connections", "Authorization", "Bearer s3cret"); code != http.StatusOK {
		t.Errorf("header token: %d", code)
	}
	if code, _ := r.get(t, "/?token=s3cret"); code != http.StatusOK {
		t.Errorf("query token: %d", code)
	}
	if code, _ := r.get(t, "/assets/app.js"); code != http.StatusOK {
		t.Errorf("assets: %d, want 200 without a token", code)
	}
	ws := "ws" + strings.TrimPrefix(r.url, "http") + "/api/feed"
	_, resp, err := tether.Dial(t.Context(), ws, &tether.DialOptions{ConnOptions: tether.ConnOptions{Registry: tether.NoRegistry, Logger: quiet}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("feed without token: %v, want 401", err)
	}
	c, _, err := tether.Dial(t.Context(), ws+"?token=s3cret", &tether.DialOptions{ConnOptions: tether.ConnOptions{Registry: tether.NoRegistry, Logger: quiet}})
	if err != nil {
		t.Fatalf("feed with token: %v", err)
	}
	c.CloseNow()
	if BearerToken("")(httptest.NewRequest("GET", "/?token=", nil)) {
		t.Errorf("an empty token admits")
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:5000": true, "[::1]:5000": true, "127.8.0.1:1": true,
		"10.0.0.1:5000": false, "[2001:db8::1]:80": false, "garbage": false,
	} {
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = addr
		if got := Loopback(req); got != want {
			t.Errorf("Loopback(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestPage(t *testing.T) {
	r := newRig(t, Options{}, 0)
	code, b := r.get(t, "/")
	if code != http.StatusOK || len(b) < 500 {
		t.Fatalf("page: %d, %d bytes", code, len(b))
	}
	for _, p := range []string{"/assets/app.js", "/assets/style.css"} {
		if code, _ := r.get(t, p); code != http.StatusOK {
			t.Errorf("%s: %d", p, code)
		}
	}
	if code, _ := r.get(t, "/nope"); code != http.StatusNotFound {
		t.Errorf("unknown path: %d, want 404", code)
	}
}
