package dashboard

import (
	"bufio"
	"context"
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

// TestBrowser opens the dashboard in headless chromium while three client
// connections ping the server, two every second and one every 300 ms: the
// situation of the python-websockets report, several clients of one
// endpoint with different keepalive settings. Screenshots go to
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
		c, err := tether.Accept(w, r, &tether.AcceptOptions{ConnOptions: tether.ConnOptions{
			Registry: tether.NoRegistry, Logger: quiet, PingInterval: -1,
		}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/silent", silentPeer)
	mux.Handle("/", dash)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var conns []*tether.Conn
	for _, iv := range []time.Duration{time.Second, time.Second, 300 * time.Millisecond} {
		c, _, err := tether.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/echo", &tether.DialOptions{
			ConnOptions: tether.ConnOptions{Registry: reg, Logger: quiet, PingInterval: iv},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		conns = append(conns, c)
	}

	cmd := exec.CommandContext(ctx, node, "test.mjs", srv.URL+"/", shots)
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
			killed := conns[2]
			killed.CloseNow()
			io.WriteString(stdin, killed.ID()+"\n")
		case "SILENT":
			c, _, err := tether.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/silent", &tether.DialOptions{
				ConnOptions: tether.ConnOptions{Registry: reg, Logger: quiet, PingInterval: 300 * time.Millisecond, PingTimeout: 700 * time.Millisecond},
			})
			if err != nil {
				t.Error(err)
				cmd.Process.Kill()
				break
			}
			defer c.CloseNow()
			io.WriteString(stdin, c.ID()+"\n")
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
