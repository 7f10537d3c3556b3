package conformance

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherws/tether"
)

// bigLimit is the ReadLimit of every Tether endpoint unless a case sets its
// own: room for the 16 MiB messages of family 9.
const bigLimit = 16<<20 + 64<<10

// handshakeTimeout bounds the opening handshake of a case.
const handshakeTimeout = 5 * time.Second

// Case is one conformance case. Run drives the peer; it must end with one of
// the closing expectations (CloseNormal, ExpectCloseEcho, ExpectFail...).
type Case struct {
	ID    string
	Desc  string
	Heavy bool    // family 9 sizes: runs alone, longer timeouts, no frame logs
	Limit int64   // Tether's ReadLimit; 0 means bigLimit
	Early []Frame // frames sent in the same write as the handshake
	// Isolated runs the case in a child test process, for a case that may
	// crash the process.
	Isolated bool
	// CloseTimeout replaces the endpoint's CloseTimeout (3 s).
	CloseTimeout time.Duration
	// Serve makes Tether's side echo with Conn.Serve instead of a Read
	// and Write loop.
	Serve bool
	Run   func(p *Peer)
}

// endpoint is the Tether side of a case: an echo loop over a *tether.Conn,
// in a net/http handler (server role) or in a goroutine that dialed (client
// role).
type endpoint struct {
	opts    tether.ConnOptions
	logs    *logBuffer
	serve   bool // echo with Serve
	once    sync.Once
	started chan struct{} // the Tether side has begun; done will be closed
	done    chan struct{} // the echo loop has returned; err is set

	mu   sync.Mutex
	conn *tether.Conn

	err error // how the echo loop ended: Read's error, or Accept's or Dial's

	closeCalled bool  // the peer asked Tether to close (X.4)
	closeErr    error // what Conn.Close returned
}

// closeCommand is a text message that makes the echo loop call
// Conn.Close(code, reason) instead of echoing: "tether:close 4000 reason".
const closeCommand = "tether:close "

func newEndpoint(c *Case) *endpoint {
	limit := c.Limit
	if limit == 0 {
		limit = bigLimit
	}
	closeTimeout := 3 * time.Second
	if c.CloseTimeout != 0 {
		closeTimeout = c.CloseTimeout
	}
	logs := &logBuffer{}
	level := slog.LevelDebug
	if c.Heavy {
		level = slog.LevelInfo
	}
	return &endpoint{
		opts: tether.ConnOptions{
			ReadLimit:    limit,
			PingInterval: -1, // keepalive pings would interfere with the cases
			CloseTimeout: closeTimeout,
			Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level})),
			LogFrames:    !c.Heavy,
			ID:           "case-" + c.ID,
		},
		logs:    logs,
		serve:   c.Serve,
		started: make(chan struct{}),
		done:    make(chan struct{}),
	}
}

func (ep *endpoint) begin() { ep.once.Do(func() { close(ep.started) }) }

// echo reads messages and writes each one back until Read fails. A failed
// Write (the close frame went out first) stops the echoing but not the
// reading: the loop ends with Read's error, which is how Tether reports the
// end of the connection.
func (ep *endpoint) echo(c *tether.Conn) {
	ep.mu.Lock()
	ep.conn = c
	ep.mu.Unlock()
	ctx := context.Background()
	if ep.serve {
		ep.serveEcho(ctx, c)
		return
	}
	writing := true
	for {
		typ, data, err := c.Read(ctx)
		if err != nil {
			ep.err = err
			return
		}
		if ep.closeCommand(c, typ, data) {
			writing = false
			continue
		}
		if writing {
			if err := c.Write(ctx, typ, data); err != nil {
				writing = false
			}
		}
	}
}

// closeCommand runs the close command if data is one, and reports whether
// it was.
func (ep *endpoint) closeCommand(c *tether.Conn, typ tether.MessageType, data []byte) bool {
	if typ != tether.Text || !strings.HasPrefix(string(data), closeCommand) {
		return false
	}
	var code int
	cmd := strings.TrimPrefix(string(data), closeCommand)
	fmt.Sscanf(cmd, "%d", &code)
	_, reason, _ := strings.Cut(cmd, " ")
	ep.closeCalled = true
	ep.closeErr = c.Close(tether.StatusCode(code), reason)
	return true
}

// serveEcho is echo with Serve: the handle writes each message back (a
// failed Write does not end the serving) or runs the close command.
func (ep *endpoint) serveEcho(ctx context.Context, c *tether.Conn) {
	ep.err = c.Serve(ctx, func(typ tether.MessageType, data []byte) error {
		if ep.closeCommand(c, typ, data) {
			return nil
		}
		c.Write(ctx, typ, data)
		return nil
	})
}

// wait waits up to d for the echo loop to end and returns its error.
func (ep *endpoint) wait(d time.Duration) (error, bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ep.done:
		return ep.err, true
	case <-t.C:
		return nil, false
	}
}

// shutdown closes Tether's connection, if any, and waits for the echo loop,
// so that no goroutine outlives the case. It reports false if the loop did
// not end.
func (ep *endpoint) shutdown(d time.Duration) bool {
	select {
	case <-ep.started:
	default:
		return true // the Tether side never began
	}
	ep.mu.Lock()
	c := ep.conn
	ep.mu.Unlock()
	if c != nil {
		c.CloseNow()
	}
	_, ok := ep.wait(d)
	if ok && c == nil {
		// The loop ended before it had a connection; one opened after the
		// check above is closed by now too.
		ep.mu.Lock()
		c = ep.conn
		ep.mu.Unlock()
		if c != nil {
			c.CloseNow()
		}
	}
	return ok
}

// logBuffer keeps the first 256 KiB of Tether's log records of a case.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() < 256<<10 {
		b.buf.Write(p)
	}
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// echoServer is the Tether echo server of the server role. Each case
// registers its endpoint under a token that its request path carries.
type echoServer struct {
	srv *httptest.Server
	mu  sync.Mutex
	eps map[string]*endpoint
}

func newEchoServer() *echoServer {
	s := &echoServer{eps: map[string]*endpoint{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	return s
}

func (s *echoServer) handle(w http.ResponseWriter, r *http.Request) {
	token := strings.TrimPrefix(r.URL.Path, "/case/")
	s.mu.Lock()
	ep := s.eps[token]
	s.mu.Unlock()
	if ep == nil {
		http.Error(w, "no such case", http.StatusNotFound)
		return
	}
	ep.begin()
	defer close(ep.done)
	c, err := tether.Accept(w, r, &tether.AcceptOptions{ConnOptions: ep.opts})
	if err != nil {
		ep.err = err
		return
	}
	ep.echo(c)
}

func (s *echoServer) register(token string, ep *endpoint) func() {
	s.mu.Lock()
	s.eps[token] = ep
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.eps, token)
		s.mu.Unlock()
	}
}

// roleEnv runs cases in one role.
type roleEnv struct {
	role role
	srv  *echoServer // server role only
}

func newRoleEnv(t *testing.T, r role) *roleEnv {
	env := &roleEnv{role: r}
	if r == roleServer {
		env.srv = newEchoServer()
		t.Cleanup(env.srv.srv.Close)
	}
	return env
}

// encodeFor encodes frames as a peer of role r would.
func encodeFor(r role, frames []Frame) []byte {
	p := &Peer{role: r}
	return p.Encode(frames...)
}

func newKey() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

func hasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// connect opens the case's connection and runs the opening handshake by
// hand. undo releases what connect set up, after the case.
func (env *roleEnv) connect(c *Case, ep *endpoint) (nc net.Conn, br *bufio.Reader, undo func(), err error) {
	if env.role == roleServer {
		return env.connectToServer(c, ep)
	}
	return env.acceptClient(c, ep)
}

// connectToServer is the test client's handshake with the Tether server.
func (env *roleEnv) connectToServer(c *Case, ep *endpoint) (net.Conn, *bufio.Reader, func(), error) {
	token := newKey()
	token = strings.NewReplacer("+", "-", "/", "_", "=", "").Replace(token)
	undo := env.srv.register(token, ep)
	addr := env.srv.srv.Listener.Addr().String()
	nc, err := net.DialTimeout("tcp", addr, handshakeTimeout)
	if err != nil {
		return nil, nil, undo, err
	}
	key := newKey()
	req := "GET /case/" + token + " HTTP/1.1\r\n" +
		"Host: " + addr + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n\r\n"
	nc.SetDeadline(time.Now().Add(handshakeTimeout))
	if _, err := nc.Write(append([]byte(req), encodeFor(env.role, c.Early)...)); err != nil {
		nc.Close()
		return nil, nil, undo, fmt.Errorf("write handshake: %w", err)
	}
	br := bufio.NewReaderSize(nc, 64<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		nc.Close()
		return nil, nil, undo, fmt.Errorf("read handshake response: %w", err)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode != http.StatusSwitchingProtocols:
		err = fmt.Errorf("handshake: status %s, want 101", resp.Status)
	case !hasToken(resp.Header, "Upgrade", "websocket"):
		err = fmt.Errorf("handshake: Upgrade header %q", resp.Header.Values("Upgrade"))
	case !hasToken(resp.Header, "Connection", "upgrade"):
		err = fmt.Errorf("handshake: Connection header %q", resp.Header.Values("Connection"))
	case resp.Header.Get("Sec-WebSocket-Accept") != acceptKey(key):
		err = fmt.Errorf("handshake: Sec-WebSocket-Accept %q, want %q", resp.Header.Get("Sec-WebSocket-Accept"), acceptKey(key))
	}
	if err != nil {
		nc.Close()
		return nil, nil, undo, err
	}
	nc.SetDeadline(time.Time{})
	return nc, br, undo, nil
}

// acceptClient starts a Tether echo client against a one-off listener and
// answers its handshake by hand.
func (env *roleEnv) acceptClient(c *Case, ep *endpoint) (net.Conn, *bufio.Reader, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, nil, err
	}
	defer ln.Close()
	u := "ws://" + ln.Addr().String() + "/case/" + c.ID
	go func() {
		ep.begin()
		defer close(ep.done)
		ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
		conn, _, err := tether.Dial(ctx, u, &tether.DialOptions{
			ConnOptions:      ep.opts,
			HandshakeTimeout: handshakeTimeout,
			Proxy:            func(*http.Request) (*url.URL, error) { return nil, nil },
		})
		cancel()
		if err != nil {
			ep.err = err
			return
		}
		ep.echo(conn)
	}()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(handshakeTimeout))
	nc, err := ln.Accept()
	if err != nil {
		if derr, ok := ep.wait(time.Second); ok {
			err = fmt.Errorf("%w (Dial: %v)", err, derr)
		}
		return nil, nil, nil, err
	}
	nc.SetDeadline(time.Now().Add(handshakeTimeout))
	br := bufio.NewReaderSize(nc, 64<<10)
	req, err := http.ReadRequest(br)
	if err != nil {
		nc.Close()
		return nil, nil, nil, fmt.Errorf("read handshake request: %w", err)
	}
	key := req.Header.Get("Sec-WebSocket-Key")
	kb, kerr := base64.StdEncoding.DecodeString(key)
	switch {
	case req.Method != http.MethodGet:
		err = fmt.Errorf("handshake: method %s, want GET", req.Method)
	case req.Host == "":
		err = fmt.Errorf("handshake: no Host")
	case !hasToken(req.Header, "Upgrade", "websocket"):
		err = fmt.Errorf("handshake: Upgrade header %q", req.Header.Values("Upgrade"))
	case !hasToken(req.Header, "Connection", "upgrade"):
		err = fmt.Errorf("handshake: Connection header %q", req.Header.Values("Connection"))
	case req.Header.Get("Sec-WebSocket-Version") != "13":
		err = fmt.Errorf("handshake: Sec-WebSocket-Version %q", req.Header.Get("Sec-WebSocket-Version"))
	case kerr != nil || len(kb) != 16:
		err = fmt.Errorf("handshake: Sec-WebSocket-Key %q is not 16 bytes in base64", key)
	}
	if err != nil {
		nc.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
		nc.Close()
		return nil, nil, nil, err
	}
	resp := "HTTP/1.1 101 Switching Protocols\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + acceptKey(key) + "\r\n\r\n"
	if _, err := nc.Write(append([]byte(resp), encodeFor(env.role, c.Early)...)); err != nil {
		nc.Close()
		return nil, nil, nil, fmt.Errorf("write handshake response: %w", err)
	}
	nc.SetDeadline(time.Time{})
	return nc, br, nil, nil
}

// execute runs one case to its end and cleans up. It returns the failure
// message, if any, and the details worth printing with it.
func (env *roleEnv) execute(c *Case) (failure, detail string) {
	ep := newEndpoint(c)
	var (
		p    *Peer
		undo func()
	)
	func() {
		defer func() {
			if r := recover(); r != nil {
				if cf, ok := r.(caseFailure); ok {
					failure = cf.msg
				} else {
					failure = fmt.Sprintf("panic in the suite: %v\n%s", r, debug.Stack())
				}
			}
		}()
		nc, br, u, err := env.connect(c, ep)
		undo = u
		if err != nil {
			failure = "opening handshake: " + err.Error()
			return
		}
		p = newPeer(env.role, c, nc, br, ep)
		c.Run(p)
		if !p.finished {
			failure = "the case did not end with a closing expectation (suite bug)"
		}
	}()
	if p != nil {
		p.cleanup()
	}
	if !ep.shutdown(endBudget) && failure == "" {
		failure = fmt.Sprintf("Tether's echo loop did not end within %v of the TCP connection closing", endBudget)
	}
	if undo != nil {
		undo()
	}
	if failure != "" {
		var b strings.Builder
		if p != nil {
			b.WriteString("peer trace:\n" + p.traceString() + "\n")
		}
		b.WriteString("Tether log:\n" + ep.logs.String())
		detail = b.String()
	}
	return failure, detail
}

// groupLock lets cases of one group run together but never with cases of
// the other group: the light cases, whose close frames are timed to the
// second, never share the CPU with a 16 MiB echo; heavy cases share it with
// each other.
type groupLock struct {
	mu    sync.Mutex
	cond  *sync.Cond
	heavy bool // the group that holds the lock
	n     int  // how many cases hold it
}

func (g *groupLock) lock(heavy bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.n > 0 && g.heavy != heavy {
		g.cond.Wait()
	}
	g.heavy = heavy
	g.n++
}

func (g *groupLock) unlock() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n--; g.n == 0 {
		g.cond.Broadcast()
	}
}

var groups = func() *groupLock {
	g := &groupLock{}
	g.cond = sync.NewCond(&g.mu)
	return g
}()

// runCase runs c as a parallel subtest and records its outcome.
func runCase(t *testing.T, env *roleEnv, c *Case) {
	t.Parallel()
	groups.lock(c.Heavy)
	defer groups.unlock()
	if testing.Short() && c.Heavy {
		record(env.role, c.ID, "SKIP", 0)
		t.Skip("family 9 size case skipped in -short mode")
	}
	start := time.Now()
	var failure, detail string
	if c.Isolated && os.Getenv(childEnv) == "" {
		failure, detail = runIsolated(env.role, c)
	} else {
		failure, detail = env.execute(c)
	}
	d := time.Since(start)
	bug := knownBug(env.role, c.ID)
	switch {
	case failure == "" && bug != "":
		record(env.role, c.ID, "OK", d)
		t.Logf("passes, though listed as %s in knownBugs: remove the entry once the fix is in", bug)
	case failure == "":
		record(env.role, c.ID, "OK", d)
	case bug != "" && !strictMode():
		record(env.role, c.ID, "BUG", d)
		t.Skipf("KNOWN LIBRARY BUG %s (%s): %s\n%s", bug, bugs[bug], failure, detail)
	default:
		record(env.role, c.ID, "FAIL", d)
		if bug != "" {
			failure = bug + ": " + failure
		}
		t.Fatalf("%s %s (%s): %s\n%s", env.role, c.ID, c.Desc, failure, detail)
	}
}

// childEnv marks a child test process that runs one isolated case.
const childEnv = "TETHER_CONFORMANCE_CHILD"

// runIsolated runs c in a child process of the test binary, so that a
// library panic on the connection's goroutine, which would end the whole
// run, fails only that case.
func runIsolated(r role, c *Case) (failure, detail string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pattern := fmt.Sprintf("^TestConformance$/^%s$/^%s$", r, regexp.QuoteMeta(c.ID))
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run="+pattern, "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"=1", "TETHER_CONFORMANCE_STRICT=1")
	out, err := cmd.CombinedOutput()
	if err == nil && bytes.Contains(out, []byte("--- PASS: TestConformance/"+string(r)+"/"+c.ID)) {
		return "", ""
	}
	lines := strings.Split(string(out), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
			end := min(i+12, len(lines))
			return "the test process crashed: " + l, strings.Join(lines[i:end], "\n")
		}
	}
	for _, l := range lines {
		if strings.Contains(l, "harness_test.go") {
			return "in a child process: " + strings.TrimSpace(l), string(out)
		}
	}
	return fmt.Sprintf("child process: %v", err), string(out)
}
