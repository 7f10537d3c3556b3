package interop

// permessage-deflate with headless Chromium's own WebSocket, which always
// offers "permessage-deflate; client_max_window_bits": a Tether server serves
// browser/echo.html, the page echoes JSON-like text and binary messages of
// 16 B to 128 KiB through /echo, and browser/run.mjs drives it with
// playwright-core, once per server configuration.

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetherws/tether"
	"github.com/tetherws/tether/internal/browsertest"
)

// browserVariants are the Tether server configurations the page runs
// against, by the name in its URL.
var browserVariants = []struct {
	name   string
	tether pmdTether
}{
	{"default", pmdTether{}},
	{"context_takeover", pmdTether{mode: tether.CompressionContextTakeover}},
	{"context_takeover_9", pmdTether{mode: tether.CompressionContextTakeover, bits: 9, threshold: -1}},
	{"no_context_takeover_12", pmdTether{mode: tether.CompressionNoContextTakeover, bits: 12, threshold: -1}},
	{"context_takeover_8", pmdTether{mode: tether.CompressionContextTakeover, bits: 8, threshold: -1}},
}

// chromiumOffer is what Chromium offers, whatever the page does.
var chromiumOffer = &pmdParams{clientBits: -1}

// browserPrereqs finds node, chromium and playwright-core (installed in
// dashboard/browser by make deps, or in $PLAYWRIGHT_BASE, which run.mjs
// reads too); see internal/browsertest.
func browserPrereqs(t *testing.T) (node string) {
	t.Helper()
	pw := os.Getenv("PLAYWRIGHT_BASE")
	if pw == "" {
		pw = filepath.Join("..", "dashboard", "browser")
	}
	return browsertest.Prereqs(t, pw)
}

// browserResult is the page's report (window.deflateResult).
type browserResult struct {
	Variant    string `json:"variant"`
	OK         bool   `json:"ok"`
	Extensions string `json:"extensions"`
	Messages   []struct {
		Type   string `json:"type"`
		Size   int    `json:"size"`
		SHA256 string `json:"sha256"`
		Echoed bool   `json:"echoed"`
	} `json:"messages"`
	Close *struct {
		Code     int    `json:"code"`
		Reason   string `json:"reason"`
		WasClean bool   `json:"wasClean"`
	} `json:"close"`
	Errors     []string `json:"errors"`
	PageErrors []string `json:"pageErrors"`
}

// TestBrowserCompress: for every variant, Chromium and the Tether server
// agree on what RFC 7692 and Tether's policy say (both ends report it), every
// message comes back intact (the page compares the bytes, the server hashes
// what it read), and the frames on the wire are compressed both ways, within
// the agreed windows and context takeover (pmdCheckWire).
func TestBrowserCompress(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	t.Parallel() // alongside TestCompressPeers
	node := browserPrereqs(t)
	page, err := filepath.Abs(filepath.Join("browser", "echo.html"))
	if err != nil {
		t.Fatal(err)
	}
	configs := map[string]pmdTether{}
	var names []string
	for _, v := range browserVariants {
		configs[v.name] = v.tether
		names = append(names, v.name)
	}
	ts := startPMDServer(t, func(r *http.Request) pmdTether { return configs[r.URL.Query().Get("variant")] },
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/":
				http.ServeFile(w, r, page)
			case "/favicon.ico":
				w.WriteHeader(http.StatusNoContent)
			default:
				http.NotFound(w, r)
			}
		}))

	// node and the chromium it starts share a process group, killed as a
	// whole if they outlive the deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var stdout, stderr syncBuffer
	cmd := exec.CommandContext(ctx, node, append([]string{"run.mjs", "http" + strings.TrimPrefix(ts.url, "ws")}, names...)...)
	cmd.Dir = "browser"
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	t.Cleanup(func() {
		switch {
		case t.Failed():
			t.Logf("run.mjs stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		case testing.Verbose():
			t.Logf("run.mjs stderr:\n%s", stderr.String())
		}
	})
	results := map[string]*browserResult{}
	done := false
	sc := bufio.NewScanner(strings.NewReader(stdout.String()))
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "RESULT "):
			r := &browserResult{}
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "RESULT ")), r); err != nil {
				t.Fatalf("bad RESULT line %q: %v", line, err)
			}
			results[r.Variant] = r
		case line == "DONE":
			done = true
		}
	}
	if runErr != nil || !done {
		t.Fatalf("run.mjs: %v (DONE printed: %t)", runErr, done)
	}

	msgs := pmdMsgs()
	for _, v := range browserVariants {
		t.Run(v.name, func(t *testing.T) {
			r := results[v.name]
			if r == nil {
				t.Fatal("no result from the page")
			}
			if !r.OK || len(r.Errors) > 0 || len(r.PageErrors) > 0 {
				t.Errorf("page: ok %t, errors %q, page errors %q", r.OK, r.Errors, r.PageErrors)
			}
			if r.Close == nil || r.Close.Code != 1000 || r.Close.Reason != "done" || !r.Close.WasClean {
				t.Errorf("page saw the close %+v, want a clean 1000 \"done\"", r.Close)
			}
			if len(r.Messages) != len(msgs) {
				t.Fatalf("page sent %d messages, want %d", len(r.Messages), len(msgs))
			}
			var want []string
			for i, m := range r.Messages {
				if m.Type != msgs[i].typ.String() || m.Size != len(msgs[i].p) || !m.Echoed {
					t.Errorf("page message %d: %+v, want %v of %d bytes, echoed", i, m, msgs[i].typ, len(msgs[i].p))
				}
				want = append(want, "recv "+m.Type+" "+strconv.Itoa(m.Size)+" "+m.SHA256)
			}

			res := ts.resultFor(t, v.name)
			if got := strings.Join(res.msgs, "\n"); got != strings.Join(want, "\n") {
				t.Errorf("server received:\n%s\nthe page sent:\n%s", got, strings.Join(want, "\n"))
			}
			if res.writeErr != nil {
				t.Errorf("server echo: %v", res.writeErr)
			}
			ce := checkCloseError(t, "server Read", res.readErr, 1000, "done", "peer")
			checkFrame(t, "CloseError.Rcvd", ce.Rcvd, 1000, "done")
			if got, err := parsePMD(res.offer); err != nil || got == nil || *got != *chromiumOffer {
				t.Errorf("chromium offered %q, want %q (%v)", res.offer, chromiumOffer, err)
			}
			agreed := tetherResponse(v.tether, chromiumOffer)
			pmdCheckAgreed(t, chromiumOffer, agreed, map[string]string{"tether server": res.ext, "chromium": r.Extensions})

			// The wire check needs each message's bytes: those the server
			// read, which the page's hashes vouch for.
			if len(res.data) != len(msgs) {
				t.Fatalf("server received %d messages, want %d", len(res.data), len(msgs))
			}
			got := make([]pmdMsg, len(msgs))
			for i, m := range msgs {
				got[i] = pmdMsg{m.typ, res.data[i], m.how}
			}
			pmdCheckWire(t, res.wire, got, agreed, v.tether, true)
		})
	}
}
