package interop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherws/tether"
)

const (
	// lineTimeout bounds the wait for every expected line of peer output,
	// every handler result and every Tether call, so that no test can hang.
	lineTimeout = 10 * time.Second
	// peerTimeout is PEER_TIMEOUT for the peer clients: they give up on
	// their own even if the test never kills them.
	peerTimeout = "20"
	// pythonBin is Debian's interpreter, the one with websockets 10.4; the
	// python3 on PATH may lack the module.
	pythonBin = "/usr/bin/python3"
	mib       = 1 << 20
)

// peer is one foreign WebSocket implementation with a server and a client
// program speaking the line protocol described in peers/selftest.sh.
type peer struct {
	name      string
	available func() error // nil error when the peer can run
	server    func() []string
	client    func(url, mode string, args ...string) []string
}

var peers = []*peer{
	{
		name:      "python",
		available: pythonAvailable,
		server:    func() []string { return []string{pythonBin, "py_server.py"} },
		client: func(url, mode string, args ...string) []string {
			return append([]string{pythonBin, "py_client.py", url, mode}, args...)
		},
	},
	{
		name:      "node",
		available: nodeAvailable,
		server:    func() []string { return []string{nodeBin, filepath.Join("node", "server.js")} },
		client: func(url, mode string, args ...string) []string {
			return append([]string{nodeBin, filepath.Join("node", "client.js"), url, mode}, args...)
		},
	},
}

// forEachPeer runs fn as a parallel subtest for every peer that is available.
func forEachPeer(t *testing.T, fn func(t *testing.T, p *peer)) {
	t.Helper()
	for _, p := range peers {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			requirePeer(t, p)
			fn(t, p)
		})
	}
}

// requirePeer skips the test when p cannot run here, or fails it when the CI
// environment variable is set: in CI a missing peer is a broken setup, not a
// reason to pass silently.
func requirePeer(t *testing.T, p *peer) {
	t.Helper()
	err := p.available()
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("peer %s is not available and CI is set: %v", p.name, err)
	}
	t.Skipf("peer %s is not available: %v", p.name, err)
}

// peersDir is the absolute path of interop/peers (go test runs in the
// package directory).
var peersDir = func() string {
	d, err := filepath.Abs("peers")
	if err != nil {
		panic(err)
	}
	return d
}()

var (
	pythonOnce sync.Once
	pythonErr  error

	nodeOnce sync.Once
	nodeErr  error
	nodeBin  = "node" // replaced by the absolute path once found
)

func pythonAvailable() error {
	pythonOnce.Do(func() {
		if _, err := os.Stat(pythonBin); err != nil {
			pythonErr = err
			return
		}
		out, err := run(30*time.Second, peersDir, pythonBin, "-c", "import websockets; print(websockets.__version__)")
		if err != nil {
			pythonErr = fmt.Errorf("%s cannot import websockets: %v: %s", pythonBin, err, out)
		}
	})
	return pythonErr
}

// nodeAvailable finds node and the ws module, running `npm ci` once in
// peers/node if ws cannot be loaded (node_modules missing or broken).
func nodeAvailable() error {
	nodeOnce.Do(func() {
		bin, err := exec.LookPath("node")
		if err != nil {
			nodeErr = err
			return
		}
		nodeBin = bin
		dir := filepath.Join(peersDir, "node")
		loadWS := func() error {
			out, err := run(30*time.Second, dir, bin, "-e", "require('ws')")
			if err != nil {
				return fmt.Errorf("node cannot load ws: %v: %s", err, out)
			}
			return nil
		}
		if loadWS() == nil {
			return
		}
		npm, err := exec.LookPath("npm")
		if err != nil {
			nodeErr = fmt.Errorf("ws is not installed in %s and npm is missing: %w", dir, err)
			return
		}
		if out, err := run(3*time.Minute, dir, npm, "ci", "--no-audit", "--no-fund"); err != nil {
			nodeErr = fmt.Errorf("npm ci in %s: %v: %s", dir, err, out)
			return
		}
		nodeErr = loadWS()
	})
	return nodeErr
}

// run runs a short command to completion and returns its combined output.
func run(timeout time.Duration, dir, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.WaitDelay = time.Second
	return cmd.CombinedOutput()
}

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is a running peer program whose stdout is collected line by line.
type proc struct {
	name   string
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stderr syncBuffer

	mu      sync.Mutex
	lines   []string
	next    int // index of the next line a test consumes
	eof     bool
	changed chan struct{} // closed (and replaced) when lines or eof change

	readDone chan struct{}
	waitOnce sync.Once
	waitErr  error
}

// startProc starts argv in peers/ with stdin (nil: /dev/null). The process is
// killed and waited for when the test ends, whatever happens.
func startProc(t *testing.T, name string, stdin io.Reader, argv ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &proc{name: name, cancel: cancel, changed: make(chan struct{}), readDone: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, argv[0], argv[1:]...)
	p.cmd.Dir = peersDir
	p.cmd.Env = append(os.Environ(), "PEER_TIMEOUT="+peerTimeout)
	p.cmd.Stdin = stdin
	p.cmd.Stderr = &p.stderr
	p.cmd.WaitDelay = 5 * time.Second
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", name, err)
	}
	go p.readLines(stdout)
	t.Cleanup(func() {
		p.cancel() // kills the process if it is still running
		p.wait()
		if t.Failed() {
			t.Logf("%s: %q\nstdout:\n%s\nstderr:\n%s", name, argv, p.allLines(), p.stderr.String())
		}
	})
	return p
}

func (p *proc) readLines(r io.Reader) {
	defer close(p.readDone)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		p.mu.Lock()
		p.lines = append(p.lines, sc.Text())
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
	p.mu.Lock()
	p.eof = true
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// wait reaps the process: it waits for stdout to end (killing the process if
// it takes longer than lineTimeout), then for the process itself.
func (p *proc) wait() error {
	p.waitOnce.Do(func() {
		select {
		case <-p.readDone:
		case <-time.After(lineTimeout):
			p.cancel()
		}
		p.waitErr = p.cmd.Wait() // closes the pipe if a stray holder kept it open
		<-p.readDone
	})
	return p.waitErr
}

func (p *proc) allLines() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// line returns the next line of output; it fails the test if none comes
// within lineTimeout or the output ends.
func (p *proc) line(t *testing.T) string {
	t.Helper()
	deadline := time.NewTimer(lineTimeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		if p.next < len(p.lines) {
			l := p.lines[p.next]
			p.next++
			p.mu.Unlock()
			return l
		}
		eof, changed := p.eof, p.changed
		p.mu.Unlock()
		if eof {
			t.Fatalf("%s: output ended while a line was expected", p.name)
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("%s: no line of output within %v", p.name, lineTimeout)
		}
	}
}

// expect reads the next line and fails the test unless it is want.
func (p *proc) expect(t *testing.T, want string) {
	t.Helper()
	if got := p.line(t); got != want {
		t.Fatalf("%s printed %q, want %q", p.name, got, want)
	}
}

// expectMatch reads the next line and fails the test unless it matches re.
func (p *proc) expectMatch(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	got := p.line(t)
	if !re.MatchString(got) {
		t.Fatalf("%s printed %q, want a line matching %s", p.name, got, re)
	}
	return got
}

// expectExit waits for the process to end on its own, with exit status 0 and
// no output left unread.
func (p *proc) expectExit(t *testing.T) {
	t.Helper()
	select {
	case <-p.readDone:
	case <-time.After(lineTimeout):
		t.Fatalf("%s did not exit within %v", p.name, lineTimeout)
	}
	p.mu.Lock()
	extra := p.lines[p.next:]
	p.mu.Unlock()
	if len(extra) > 0 {
		t.Errorf("%s printed unexpected lines: %q", p.name, extra)
	}
	if err := p.wait(); err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
}

// peerServer is a running peer server.
type peerServer struct {
	*proc
	port string
}

func (s *peerServer) url(path string) string { return "ws://127.0.0.1:" + s.port + path }

var listeningRE = regexp.MustCompile(`^listening ([0-9]+)$`)

// startPeerServer starts p's server and waits for its "listening PORT" line.
func startPeerServer(t *testing.T, p *peer) *peerServer {
	t.Helper()
	pr := startProc(t, p.name+" server", nil, p.server()...)
	m := listeningRE.FindStringSubmatch(pr.expectMatch(t, listeningRE))
	return &peerServer{proc: pr, port: m[1]}
}

// startPeerClient runs p's client against url in mode; stdin feeds echo mode.
func startPeerClient(t *testing.T, p *peer, stdin string, url, mode string, args ...string) *proc {
	t.Helper()
	var in io.Reader
	if stdin != "" {
		in = strings.NewReader(stdin)
	}
	return startProc(t, p.name+" client", in, p.client(url, mode, args...)...)
}

// newLogger returns a debug-level JSON logger writing into buf.
func newLogger(buf *syncBuffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// logRecords decodes the JSON log records in buf.
func logRecords(t *testing.T, buf *syncBuffer) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("bad log record %q: %v", line, err)
		}
		recs = append(recs, m)
	}
	return recs
}

// dumpLogsOnFailure prints buf's records when the test fails.
func dumpLogsOnFailure(t *testing.T, name string, buf *syncBuffer) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log:\n%s", name, buf.String())
		}
	})
}

// testContext returns a context that ends with the test, or after 30 s.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dialOptions are the client options of every test: keepalive off so that no
// unexpected ping shows up in the peer's output, logs captured in buf.
func dialOptions(buf *syncBuffer) *tether.DialOptions {
	return &tether.DialOptions{ConnOptions: tether.ConnOptions{
		PingInterval: -1,
		CloseTimeout: 5 * time.Second,
		Logger:       newLogger(buf),
	}}
}

// dial opens a Tether client connection, closed at the end of the test.
func dial(t *testing.T, url string, opts *tether.DialOptions) *tether.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), lineTimeout)
	defer cancel()
	c, resp, err := tether.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("dial %s: status %d, want 101", url, resp.StatusCode)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// checkCloseError fails the test unless err is a *tether.CloseError with the
// given code, reason and initiator; it returns it.
func checkCloseError(t *testing.T, what string, err error, code tether.StatusCode, reason, initiator string) *tether.CloseError {
	t.Helper()
	var ce *tether.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("%s: got error %v (%T), want a *tether.CloseError", what, err, err)
	}
	if ce.Code != code || ce.Reason != reason || ce.Initiator != initiator {
		t.Fatalf("%s: got CloseError{Code: %d, Reason: %q, Initiator: %q}, want {%d, %q, %q} (%v)",
			what, ce.Code, ce.Reason, ce.Initiator, code, reason, initiator, ce)
	}
	return ce
}

// checkFrame fails the test unless f is the close frame {code, reason}.
func checkFrame(t *testing.T, what string, f *tether.CloseFrame, code tether.StatusCode, reason string) {
	t.Helper()
	if f == nil {
		t.Fatalf("%s: no close frame, want {%d %q}", what, code, reason)
	}
	if f.Code != code || f.Reason != reason {
		t.Fatalf("%s: close frame {%d %q}, want {%d %q}", what, f.Code, f.Reason, code, reason)
	}
}

// shaHex is the SHA-256 of p in hex, as the peer clients print it.
func shaHex(p []byte) string {
	s := sha256.Sum256(p)
	return hex.EncodeToString(s[:])
}

// recvLine is what a peer client prints for a message: "recv TYPE LEN SHA".
func recvLine(typ tether.MessageType, p []byte) string {
	return "recv " + typ.String() + " " + strconv.Itoa(len(p)) + " " + shaHex(p)
}

// tetherServer is an httptest server on 127.0.0.1:0 whose handler runs a
// Tether server connection per request and reports how it went.
//
//	/echo  (and any other path) echo every message with its type
//	/close close with 1001 "going away" right after the handshake
//	/ping  send one ping, then close with 1000
type tetherServer struct {
	url     string // ws://127.0.0.1:PORT
	logs    *syncBuffer
	results chan *serverResult
	wg      sync.WaitGroup // handlers, which httptest stops tracking once they hijack
}

// serverResult is how one server connection went.
type serverResult struct {
	path     string
	id       string   // Conn.ID, the "conn" log attribute
	remote   string   // Conn.RemoteAddr
	msgs     []string // per message received: recvLine
	readErr  error    // what the last Read returned
	writeErr error    // a failed echo Write
	closeErr error    // what Close returned (/close, /ping)
	rtt      time.Duration
	pingErr  error
}

func startTetherServer(t *testing.T) *tetherServer {
	t.Helper()
	ts := &tetherServer{logs: &syncBuffer{}, results: make(chan *serverResult, 16)}
	dumpLogsOnFailure(t, "tether server", ts.logs)
	ctx, cancel := context.WithCancel(context.Background())
	opts := &tether.AcceptOptions{ConnOptions: tether.ConnOptions{
		ReadLimit:    16 << 20,
		PingInterval: -1,
		CloseTimeout: 5 * time.Second,
		Logger:       newLogger(ts.logs),
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.wg.Add(1)
		defer ts.wg.Done()
		c, err := tether.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		res := &serverResult{path: r.URL.Path, id: c.ID(), remote: c.RemoteAddr().String()}
		switch r.URL.Path {
		case "/close":
			res.closeErr = c.Close(tether.StatusGoingAway, "going away")
			_, _, res.readErr = c.Read(ctx)
		case "/ping":
			pctx, pcancel := context.WithTimeout(ctx, lineTimeout)
			res.rtt, res.pingErr = c.Ping(pctx)
			pcancel()
			res.closeErr = c.Close(tether.StatusNormal, "")
			_, _, res.readErr = c.Read(ctx)
		default:
			for {
				typ, p, err := c.Read(ctx)
				if err != nil {
					res.readErr = err
					break
				}
				res.msgs = append(res.msgs, recvLine(typ, p))
				if err := c.Write(ctx, typ, p); err != nil {
					res.writeErr = err
					break
				}
			}
		}
		select {
		case ts.results <- res:
		case <-ctx.Done():
		}
	}))
	ts.url = "ws" + strings.TrimPrefix(srv.URL, "http")
	t.Cleanup(func() {
		cancel() // ends handlers still reading
		srv.Close()
		done := make(chan struct{})
		go func() { ts.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(lineTimeout):
			t.Errorf("tether server handlers still running %v after the test", lineTimeout)
		}
	})
	return ts
}

// result waits for the next server connection to end and returns its result.
func (ts *tetherServer) result(t *testing.T) *serverResult {
	t.Helper()
	select {
	case r := <-ts.results:
		return r
	case <-time.After(lineTimeout):
		t.Fatalf("tether server: no connection ended within %v", lineTimeout)
		return nil
	}
}
