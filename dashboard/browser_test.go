package dashboard

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherws/tether"
	"github.com/tetherws/tether/internal/browsertest"
	"github.com/tetherws/tether/internal/wire"
)

// browserPrereqs finds node, chromium and the playwright-core installed in
// browser/ (see internal/browsertest).
func browserPrereqs(t *testing.T) (node string) {
	t.Helper()
	return browsertest.Prereqs(t, "browser")
}

// TestBrowser opens the dashboard in headless chromium. Before the page
// opens, a client connection fails a keepalive ping (its peer never
// answers): the on-call case, where the page is opened after the alert, and
// it must show that connection, its 1011 and its red mark. Then three
// clients in one process (one address, one User-Agent) hold connections to
// /echo, whose server side pings every second, and ping it every 600 ms,
// 250 ms and 250 ms: the report behind the peer columns. Screenshots go to
// $TETHER_SCREENSHOTS, or a temporary directory.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	node := browserPrereqs(t)
	shots := os.Getenv("TETHER_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

	reg := tether.NewRegistry()
	reg.Logger = quiet // it warns, rightly, about the different intervals
	dash := New(Options{Registry: reg, Logger: quiet})
	defer dash.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		serveBrowserConn(w, r, reg, tether.ConnOptions{PingInterval: time.Second}, nil)
	})
	release := make(chan struct{})
	defer close(release)
	mux.HandleFunc("/stall", func(w http.ResponseWriter, r *http.Request) {
		serveBrowserConn(w, r, reg, tether.ConnOptions{PingInterval: 300 * time.Millisecond, PingTimeout: 700 * time.Millisecond, ReadAhead: 1024}, release)
	})
	mux.HandleFunc("/silent", silentPeer)
	mux.Handle("/", dash)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ws := "ws" + strings.TrimPrefix(srv.URL, "http")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dial := func(path string, co tether.ConnOptions) *tether.Conn {
		co.Logger = quiet
		c, _, err := tether.Dial(ctx, ws+path, &tether.DialOptions{ConnOptions: co})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		return c
	}
	silentOpts := tether.ConnOptions{Registry: reg, PingInterval: 300 * time.Millisecond, PingTimeout: 700 * time.Millisecond}

	// The keepalive timeout happens, and the dashboard has taken it in,
	// before the page opens.
	failed := dial("/silent", silentOpts)
	<-failed.Done()
	waitFor(t, "the timed-out connection among the closed", func() bool {
		_, live := reg.Get(failed.ID())
		_, _, known := dash.state.connection(failed.ID())
		return known && !live
	})

	args := []string{"test.mjs", srv.URL + "/", shots, failed.ID()}
	var clients []*tether.Conn
	for _, iv := range []time.Duration{600 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond} {
		c := dial("/echo", tether.ConnOptions{Registry: tether.NoRegistry, PingInterval: iv})
		clients = append(clients, c)
		args = append(args, fmt.Sprintf("%s=%d", serverSide(t, reg, c), iv.Milliseconds()))
	}

	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = "browser"
	cmd.Stderr = testWriter{t}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	passed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		switch line := sc.Text(); line {
		case "READY":
			killed := clients[2]
			id := serverSide(t, reg, killed)
			killed.CloseNow()
			io.WriteString(stdin, id+"\n")
		case "SILENT":
			io.WriteString(stdin, dial("/silent", silentOpts).ID()+"\n")
		case "STALL":
			// The server's application stops reading while its client
			// sends more than ReadAhead: keepalive's pong waits behind.
			c := dial("/stall", tether.ConnOptions{Registry: tether.NoRegistry, PingInterval: -1})
			for range 8 {
				if err := c.Write(ctx, tether.Binary, make([]byte, 1024)); err != nil {
					t.Error(err)
				}
			}
			io.WriteString(stdin, serverSide(t, reg, c)+"\n")
		case "PASS":
			passed = true
		default:
			t.Log(line)
		}
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil || !passed {
		t.Fatalf("browser test failed: %v", err)
	}
	t.Logf("screenshots in %s", shots)
	for _, name := range []string{"dashboard.png", "after-kill.png", "timeout.png", "polling.png"} {
		if fi, err := os.Stat(filepath.Join(shots, name)); err != nil || fi.Size() < 10000 {
			t.Errorf("screenshot %s missing or empty: %v", name, err)
		}
	}
}

// serveBrowserConn serves one server connection in reg with the options
// co: an echo, or, with release set, an application that reads nothing
// until release is closed.
func serveBrowserConn(w http.ResponseWriter, r *http.Request, reg *tether.Registry, co tether.ConnOptions, release chan struct{}) {
	co.Registry, co.Logger = reg, quiet
	c, err := tether.Accept(w, r, &tether.AcceptOptions{ConnOptions: co})
	if err != nil {
		return
	}
	defer c.CloseNow()
	if release != nil {
		select {
		case <-release:
		case <-c.Done():
			return
		}
	}
	for {
		typ, p, err := c.Read(context.Background())
		if err != nil {
			return
		}
		if release == nil && c.Write(context.Background(), typ, p) != nil {
			return
		}
	}
}

// serverSide waits for the server connection of client c in reg and
// returns its ID.
func serverSide(t *testing.T, reg *tether.Registry, c *tether.Conn) string {
	t.Helper()
	var id string
	waitFor(t, "the server side of "+c.ID(), func() bool {
		reg.Range(func(ci tether.ConnInfo) bool {
			if ci.Role == "server" && ci.Remote == c.LocalAddr().String() {
				id = ci.ID
			}
			return id == ""
		})
		return id != ""
	})
	return id
}

// TestBrowserCluster opens the dashboard of node n1 of a cluster: one
// connection of its own and, through a fake Presence, three of nodes n2 and
// n3. The page must list all four with their node and draw a lane for the
// local one only.
func TestBrowserCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	node := browserPrereqs(t)
	shots := os.Getenv("TETHER_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	var fc fakeCluster
	t0 := time.Now().Add(-time.Minute)
	fc.set(remoteConn("0198a7c2-0000-7000-8000-00000000000a", "n2", "server", "/broadcast", t0),
		remoteConn("0198a7c2-0000-7000-8000-00000000000b", "n2", "server", "/echo", t0.Add(time.Second)),
		remoteConn("0198a7c2-0000-7000-8000-00000000000c", "n3", "server", "/broadcast", t0))
	r := newRig(t, Options{Node: "n1", Presence: fc.presence}, 300*time.Millisecond)
	r.dial(t, -1)
	var local string
	waitFor(t, "the local connection", func() bool {
		if l := r.list(t, "?node=n1"); len(l) == 1 {
			local = l[0]["id"].(string)
		}
		return local != ""
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := []string{"cluster.mjs", r.url + "/", shots, local,
		"0198a7c2-0000-7000-8000-00000000000a", "0198a7c2-0000-7000-8000-00000000000b", "0198a7c2-0000-7000-8000-00000000000c"}
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = "browser"
	cmd.Stderr = testWriter{t}
	out, err := cmd.Output()
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("browser test failed: %v\n%s", err, out)
	}
}

// silentPeer completes the opening handshake and then reads and ignores
// everything: a peer that never answers a ping.
func silentPeer(w http.ResponseWriter, r *http.Request) {
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer nc.Close()
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + wire.AcceptKey(r.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n")
	brw.Flush()
	io.Copy(io.Discard, brw)
}

// testWriter sends a child's standard error to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
