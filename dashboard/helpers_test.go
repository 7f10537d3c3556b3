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
// and the dashboard of reg mounted at /.
type rig struct {
	reg  *tether.Registry
	dash *Handler
	srv  *httptest.Server
	url  string // http://127.0.0.1:PORT
}

// newRig starts a rig; server connections ping every interval (0: default).
func newRig(t *testing.T, opts Options, interval time.Duration) *rig {
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
		c, err := tether.Accept(w, r, &tether.AcceptOptions{ConnOptions: tether.ConnOptions{
			Registry: reg, Logger: quiet, PingInterval: interval,
		}})
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
	return &rig{reg: reg, dash: dash, srv: srv, url: srv.URL}
}

// dial opens a client to the rig's echo endpoint; the client stays out of
// the rig's registry, so the dashboard lists only the server side.
func (r *rig) dial(t *testing.T, interval time.Duration) *tether.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := tether.Dial(ctx, "ws"+strings.TrimPrefix(r.url, "http")+"/echo", &tether.DialOptions{
		ConnOptions: tether.ConnOptions{Registry: tether.NoRegistry, Logger: quiet, PingInterval: interval},
	})
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
