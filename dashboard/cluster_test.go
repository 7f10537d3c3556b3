package dashboard

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tetherws/tether"
	"github.com/tetherws/tether/hub"
)

// fakeCluster is the Presence of two other nodes, changeable by the test.
type fakeCluster struct {
	mu    sync.Mutex
	conns []hub.Presence
}

func (f *fakeCluster) set(ps ...hub.Presence) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conns = ps
}

func (f *fakeCluster) presence() []hub.Presence {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]hub.Presence(nil), f.conns...)
}

func remoteConn(id, node, role, path string, opened time.Time) hub.Presence {
	return hub.Presence{Node: node, Rooms: []string{}, ConnInfo: tether.ConnInfo{
		ID: id, Role: role, Path: path, State: "open", Remote: "10.0.0.9:5000", Local: "10.0.0.2:8080",
		OpenedAt: opened, PingInterval: tether.Seconds(20 * time.Second), PingTimeout: tether.Seconds(20 * time.Second),
	}}
}

// TestClusterConnections: with Presence, /api/connections lists this node's
// connections with its name, then the other nodes' with theirs (an entry
// of this node's in Presence is not listed twice); the filters apply to
// both, ?node= picks one node; /api/connections/{id} finds a remote one.
func TestClusterConnections(t *testing.T) {
	var fc fakeCluster
	r := newRig(t, Options{Node: "n1", Presence: fc.presence}, 0)
	r.dial(t, -1)
	waitFor(t, "the local connection", func() bool { return len(r.list(t, "?node=n1")) == 1 })
	local := r.list(t, "")[0]["id"].(string)
	t0 := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	fc.set(
		remoteConn("r3", "n3", "server", "/broadcast", t0),
		remoteConn("r2", "n2", "server", "/broadcast?since=4", t0.Add(time.Second)),
		remoteConn("r2b", "n2", "server", "/echo", t0),
		hub.Presence{Node: "n1", ConnInfo: tether.ConnInfo{ID: local, Role: "server", Path: "/echo", State: "open"}},
	)
	list := r.list(t, "")
	var got [][2]string
	for _, o := range list {
		got = append(got, [2]string{o["id"].(string), o["node"].(string)})
		for name, kinds := range contractFields {
			if _, ok := o[name]; !ok {
				t.Errorf("%s: field %q missing (%v)", o["id"], name, kinds)
			}
		}
	}
	want := [][2]string{{local, "n1"}, {"r2b", "n2"}, {"r2", "n2"}, {"r3", "n3"}}
	if len(got) != len(want) {
		t.Fatalf("listed %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("listed %v, want %v", got, want)
		}
	}
	for q, want := range map[string]int{
		"?path=/broadcast": 2, "?path=/echo": 2, "?node=n2": 2, "?node=n3&path=/broadcast": 1,
		"?node=n9": 0, "?role=client": 0, "?state=open": 4,
	} {
		if n := len(r.list(t, q)); n != want {
			t.Errorf("%s: %d connections, want %d", q, n, want)
		}
	}

	code, b := r.get(t, "/api/connections/r3")
	if code != http.StatusOK {
		t.Fatalf("remote detail: %d %s", code, b)
	}
	var d struct {
		ID      string            `json:"id"`
		Node    string            `json:"node"`
		Path    string            `json:"path"`
		History []json.RawMessage `json:"history"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.ID != "r3" || d.Node != "n3" || d.Path != "/broadcast" || d.History == nil || len(d.History) != 0 {
		t.Errorf("remote detail %s", b)
	}

	// The page's state and feed carry them too, after this node's.
	code, b = r.get(t, "/api/state?node=n2")
	if code != http.StatusOK {
		t.Fatalf("state: %d", code)
	}
	var st stateMsg
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if st.Node != "n1" || st.Total != 2 || len(st.Connections) != 2 || st.Connections[0].Node != "n2" {
		t.Errorf("state %+v", st)
	}
	feed := r.openFeed(t, "")
	hello := readMsg(t, feed)
	if hello.Total != 4 || hello.Connections[0].ID != local || hello.Connections[3].ID != "r3" {
		t.Fatalf("hello %+v", hello)
	}
	// A node that goes leaves the next update.
	fc.set(remoteConn("r3", "n3", "server", "/broadcast", t0))
	waitFor(t, "an update without n2", func() bool {
		u := readMsg(t, feed)
		return u.Type == "update" && u.Total == 2 && u.Connections[1].ID == "r3"
	})
	if code, _ := r.get(t, "/api/connections/r2"); code != http.StatusNotFound {
		t.Errorf("gone remote connection: %d, want 404", code)
	}
}

// TestCollectors: collectors in Options are served at /metrics beside the
// dashboard's own.
func TestCollectors(t *testing.T) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "tether_cluster_connected", Help: "test"})
	g.Set(1)
	r := newRig(t, Options{Collectors: []prometheus.Collector{g}}, 0)
	fams := r.scrape(t)
	if v := value(fams, "tether_cluster_connected"); v != 1 {
		t.Errorf("tether_cluster_connected = %v, want 1", v)
	}
	if value(fams, "tether_handshake_failures_total") == -1 && fams["go_goroutines"] == nil {
		t.Errorf("the dashboard's own metrics are missing")
	}
}
