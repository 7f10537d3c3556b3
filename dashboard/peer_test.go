package dashboard

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/tetherws/tether"
	"github.com/tetherws/tether/internal/clock"
)

// pingAt makes client c's peer, a server connection whose clock is fc, see
// a ping at each of the given gaps: the first ping now, each next one gap
// later on fc. Ping returns with the pong, which the server queues only
// after recording the ping.
func pingAt(t *testing.T, c *tether.Conn, fc *clock.Fake, gaps ...time.Duration) {
	t.Helper()
	for i := -1; i < len(gaps); i++ {
		if i >= 0 {
			fc.Advance(gaps[i])
		}
		if _, err := c.Ping(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

// threeClients is the report behind the peer columns: one client (one
// address, one User-Agent) holds three connections to /echo whose keepalives
// ping every 2 s, 500 ms and 500 ms. The server's connections read their
// peers' ping times from a fake clock, so the cadences are exact; they do
// not ping themselves. It returns the server connections' IDs and the
// clients.
func threeClients(t *testing.T, r *rig, fc *clock.Fake) ([]string, []*tether.Conn) {
	t.Helper()
	var ids []string
	var clients []*tether.Conn
	for _, gap := range []time.Duration{2 * time.Second, 500 * time.Millisecond, 500 * time.Millisecond} {
		c := r.dial(t, -1)
		ids = append(ids, r.serverID(t, c))
		clients = append(clients, c)
		pingAt(t, c, fc, gap, gap)
	}
	return ids, clients
}

func newPeerRig(t *testing.T) (*rig, *clock.Fake) {
	fc := clock.NewFake()
	return newRigConn(t, Options{}, tether.ConnOptions{PingInterval: -1, Clock: fc}), fc
}

// TestPeerPingsInAPI: each connection shows its peer's pings and their
// cadence, and keeps them in its history with the interval since the
// previous one.
func TestPeerPingsInAPI(t *testing.T) {
	r, fc := newPeerRig(t)
	ids, _ := threeClients(t, r, fc)
	want := map[string]float64{ids[0]: 2, ids[1]: 0.5, ids[2]: 0.5}
	list := r.list(t, "")
	if len(list) != 3 {
		t.Fatalf("%d connections, want 3", len(list))
	}
	for _, o := range list {
		id := o["id"].(string)
		if o["peer_pings"] != 3.0 || o["peer_ping_interval"] != want[id] || o["last_peer_ping_at"] == nil {
			t.Errorf("%s: peer_pings %v, peer_ping_interval %v (want %v), last_peer_ping_at %v",
				id, o["peer_pings"], o["peer_ping_interval"], want[id], o["last_peer_ping_at"])
		}
		if o["user_agent"] != "tether" {
			t.Errorf("%s: user_agent %v", id, o["user_agent"])
		}
	}
	d, ok := r.detail(t, ids[0])
	if !ok {
		t.Fatal("no detail")
	}
	var got []float64
	for _, e := range d.History {
		if e.Kind != "peer_ping" {
			t.Errorf("unexpected %s event", e.Kind)
			continue
		}
		iv := 0.0
		if e.Interval != nil {
			iv = *e.Interval
		}
		got = append(got, iv)
	}
	if !slices.Equal(got, []float64{0, 2, 2}) {
		t.Errorf("peer_ping intervals %v, want [0 2 2] (none on the first)", got)
	}
}

// TestFindingsIntervalMismatch: the three connections make one
// interval-mismatch warning, in /api/findings, /api/state and the feed's
// hello.
func TestFindingsIntervalMismatch(t *testing.T) {
	r, fc := newPeerRig(t)
	ids, _ := threeClients(t, r, fc)
	check := func(where string, fs []tether.Finding) {
		t.Helper()
		if len(fs) != 1 {
			t.Fatalf("%s: %d findings, want 1: %+v", where, len(fs), fs)
		}
		f := fs[0]
		if f.Kind != tether.FindingIntervalMismatch || f.Severity != "warning" || f.Role != "server" ||
			f.Endpoint != "/echo" || f.Count != 3 || f.Message == "" {
			t.Errorf("%s: finding %+v", where, f)
		}
		ivs := map[string]float64{}
		for i, id := range f.Conns {
			if i < len(f.Intervals) && f.Intervals[i] != nil {
				ivs[id] = time.Duration(*f.Intervals[i]).Seconds()
			}
		}
		if ivs[ids[0]] != 2 || ivs[ids[1]] != 0.5 || ivs[ids[2]] != 0.5 {
			t.Errorf("%s: intervals by connection %v, want 2, 0.5, 0.5 for %v", where, ivs, ids)
		}
	}
	code, b := r.get(t, "/api/findings")
	var api findingsJSON
	if err := json.Unmarshal(b, &api); code != http.StatusOK || err != nil {
		t.Fatalf("/api/findings: %d %s: %v", code, b, err)
	}
	check("/api/findings", api.Findings)
	var st stateMsg
	_, b = r.get(t, "/api/state")
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	check("/api/state", st.Findings)
	feed := r.openFeed(t, "")
	check("hello", readMsg(t, feed).Findings)
	check("update", readMsg(t, feed).Findings)
}

// TestFindingsEmpty: no finding is an empty list, not null, for a page
// that iterates over it.
func TestFindingsEmpty(t *testing.T) {
	r := newRig(t, Options{}, 0)
	r.dial(t, -1)
	_, b := r.get(t, "/api/findings")
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || string(m["findings"]) != "[]" {
		t.Errorf("/api/findings = %s (%v), want findings: []", b, err)
	}
}

// TestFindingsOnlyWhenWatched: Registry.Findings scans every connection, so
// the ticks work it out only while a feed is open.
func TestFindingsOnlyWhenWatched(t *testing.T) {
	r := newRig(t, Options{}, 0)
	s := r.dash.state
	at := func() time.Time {
		s.findings.mu.Lock()
		defer s.findings.mu.Unlock()
		return s.findings.at
	}
	ticks := func(n int) {
		for range n {
			<-s.ticked()
		}
	}
	ticks(2)
	if !at().IsZero() {
		t.Fatal("findings worked out with nobody watching")
	}
	feed := r.openFeed(t, "")
	readMsg(t, feed)
	first := at()
	ticks(2)
	if !at().After(first) {
		t.Errorf("findings not worked out at the ticks while a feed is open")
	}
	feed.CloseNow()
	waitFor(t, "the feed to end", func() bool { return s.watchers.Load() == 0 })
	ticks(1) // one may have begun before the feed ended
	last := at()
	ticks(2)
	if !at().Equal(last) {
		t.Errorf("findings worked out after the feed ended")
	}
}
