package dashboard

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tetherws/tether"
)

var quiet = slog.New(slog.DiscardHandler)

// rig is a server with an echo endpoint whose connections register in reg,
// and the dashboard of reg mounted at /. Tests add endpoints to mux.
type rig struct {
	reg  *tether.Registry
	dash *Handler
	srv  *httptest.Server
	mux  *http.ServeMux
	url  string // http://127.0.0.1:PORT
}

// newRig starts a rig; server connections ping every interval (0: default).
func newRig(t *testing.T, opts Options, interval time.Duration) *rig {
	t.Helper()
	return newRigConn(t, opts, tether.ConnOptions{PingInterval: interval})
}

// newRigConn starts a rig whose echo connections have the options co, in
// the rig's registry.
func newRigConn(t *testing.T, opts Options, co tether.ConnOptions) *rig {
	t.Helper()
	reg := tether.NewRegistry()
	reg.Logger = quiet
	opts.Registry = reg
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	dash := New(opts)
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		co := co
		co.Registry, co.Logger = reg, quiet
		c, err := tether.Accept(w, r, &tether.AcceptOptions{ConnOptions: co})
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, p, err := c.Read(context.Background())
			if err != nil {
				return
			}
			if c.Write(context.Background(), typ, p) != nil {
				return
			}
		}
	})
	mux.Handle("/", dash)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		dash.Close()
	})
	return &rig{reg: reg, dash: dash, srv: srv, mux: mux, url: srv.URL}
}

// dial opens a client to the rig's echo endpoint; the client stays out of
// the rig's registry, so the dashboard lists only the server side.
func (r *rig) dial(t *testing.T, interval time.Duration) *tether.Conn {
	t.Helper()
	return r.dialPath(t, "/echo", tether.ConnOptions{Registry: tether.NoRegistry, PingInterval: interval})
}

// dialPath opens a client to path on the rig with the options co.
func (r *rig) dialPath(t *testing.T, path string, co tether.ConnOptions) *tether.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	co.Logger = quiet
	c, _, err := tether.Dial(ctx, "ws"+strings.TrimPrefix(r.url, "http")+path, &tether.DialOptions{ConnOptions: co})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// waitFor polls cond every 10 ms for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// get fetches path from the rig and returns the status and body.
func (r *rig) get(t *testing.T, path string, header ...string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", r.url+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// list fetches /api/connections with query q as generic JSON.
func (r *rig) list(t *testing.T, q string) []map[string]any {
	t.Helper()
	code, b := r.get(t, "/api/connections"+q)
	if code != http.StatusOK {
		t.Fatalf("GET /api/connections%s: %d %s", q, code, b)
	}
	var out []map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return out
}

// serverID waits for the server side of client c in the rig's registry
// and returns its ID.
func (r *rig) serverID(t *testing.T, c *tether.Conn) string {
	t.Helper()
	return serverSide(t, r.reg, c)
}

// detail fetches /api/connections/{id}; ok is false on a 404.
func (r *rig) detail(t *testing.T, id string) (d connDetailJSON, ok bool) {
	t.Helper()
	code, b := r.get(t, "/api/connections/"+id)
	switch code {
	case http.StatusNotFound:
		return d, false
	case http.StatusOK:
	default:
		t.Fatalf("GET /api/connections/%s: %d %s", id, code, b)
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return d, true
}

// connDetailJSON is /api/connections/{id} as a client reads it.
type connDetailJSON struct {
	tether.ConnInfo
	History []struct {
		Kind     string    `json:"kind"`
		Time     time.Time `json:"time"`
		RTTms    *float64  `json:"rtt_ms"`
		Interval *float64  `json:"interval"`
	} `json:"history"`
}

// kinds counts the history's events by kind.
func (d *connDetailJSON) kinds() map[string]int {
	n := map[string]int{}
	for _, e := range d.History {
		n[e.Kind]++
	}
	return n
}
