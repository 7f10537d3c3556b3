package tether

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tetherws/tether/internal/clock"
	"go.uber.org/goleak"
)

// restartServer is a WebSocket server that can be stopped and started again
// on the same port. Its handler answers each request with status when it is
// not zero, otherwise upgrades, then echoes until the connection ends (or,
// without echo, leaves reading to the test).
type restartServer struct {
	t        *testing.T
	addr     string
	reg      *Registry
	echo     bool
	status   atomic.Int32 // HTTP status to refuse with; 0 upgrades
	requests atomic.Int64
	accepted chan *Conn
	down     atomic.Bool // set before stop scans the registry

	mu  sync.Mutex
	hs  *http.Server
	hsc chan error
	wg  sync.WaitGroup
}

func newRestartServer(t *testing.T, echo bool) *restartServer {
	s := &restartServer{t: t, addr: "127.0.0.1:0", reg: NewRegistry(), echo: echo, accepted: make(chan *Conn, 16)}
	s.reg.Logger = discard
	s.start()
	t.Cleanup(func() { s.stop(false) })
	return s
}

func (s *restartServer) url() string { return "ws://" + s.addr + "/feed" }

func (s *restartServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.wg.Add(1) // before the hijack, so stop waits for this handler
	defer s.wg.Done()
	s.requests.Add(1)
	if code := int(s.status.Load()); code != 0 {
		http.Error(w, "refused", code)
		return
	}
	c, err := Accept(w, r, &AcceptOptions{ConnOptions: ConnOptions{Registry: s.reg, PingInterval: -1, Logger: discard}})
	if err != nil {
		return
	}
	defer c.CloseNow()
	if s.down.Load() {
		return // accepted as stop began: its scan may have missed it
	}
	select {
	case s.accepted <- c:
	default:
	}
	if !s.echo {
		<-c.Done()
		return
	}
	for {
		typ, p, err := c.Read(context.Background())
		if err != nil {
			return
		}
		c.Write(context.Background(), typ, p)
	}
}

func (s *restartServer) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatalf("listen %s: %v", s.addr, err)
	}
	s.addr = ln.Addr().String()
	s.down.Store(false)
	s.hs = &http.Server{Handler: s}
	s.hsc = make(chan error, 1)
	go func(hs *http.Server, errc chan error) { errc <- hs.Serve(ln) }(s.hs, s.hsc)
}

// stop closes the listener, then ends every WebSocket connection: with a
// closing handshake (1001) when graceful, by dropping TCP (1006) otherwise.
func (s *restartServer) stop(graceful bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hs == nil {
		return
	}
	s.hs.Close()
	<-s.hsc
	s.hs = nil
	s.down.Store(true)
	if graceful {
		s.reg.Shutdown(context.Background(), StatusGoingAway, "restarting")
	} else {
		for _, c := range s.reg.serverConns(nil) {
			c.closeNow()
		}
	}
	s.wg.Wait()
}

// recorder keeps log records for assertions.
type recorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// messages returns the attributes of every record with message msg.
func (r *recorder) messages(msg string) []map[string]slog.Value {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]slog.Value
	for _, rec := range r.recs {
		if rec.Message != msg {
			continue
		}
		m := map[string]slog.Value{}
		rec.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value; return true })
		out = append(out, m)
	}
	return out
}

// retry is one OnRetry call.
type retry struct {
	attempt int
	delay   time.Duration
	err     error
}

// reconnectHarness runs a Reconnect loop on its own goroutine; the body
// reads each connection until it ends.
type reconnectHarness struct {
	t          *testing.T
	fake       *clock.Fake
	conns      chan *Conn
	retries    chan retry
	final      chan error // the loop's last yielded error, or nil when it just ended
	connects   atomic.Int64
	disconnect atomic.Int64
	cancel     context.CancelFunc
	log        *recorder
}

func (h *reconnectHarness) options() *ReconnectOptions {
	return &ReconnectOptions{
		DialOptions: DialOptions{ConnOptions: ConnOptions{Clock: h.fake, PingInterval: -1,
			Logger: slog.New(h.log), Registry: NoRegistry}},
		random:       func() float64 { return 0.5 },
		OnConnect:    func(*Conn, int) { h.connects.Add(1) },
		OnDisconnect: func(*Conn, error) { h.disconnect.Add(1) },
		OnRetry:      func(a int, d time.Duration, err error) { h.retries <- retry{a, d, err} },
	}
}

func newHarness(t *testing.T) *reconnectHarness {
	return &reconnectHarness{t: t, fake: clock.NewFake(), conns: make(chan *Conn), retries: make(chan retry, 16),
		final: make(chan error, 1), log: &recorder{}}
}

func (h *reconnectHarness) run(url string, opts *ReconnectOptions) {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() {
		for c, err := range Reconnect(ctx, url, opts) {
			if err != nil {
				h.final <- err
				return
			}
			h.conns <- c
			for {
				if _, _, err := c.Read(context.Background()); err != nil {
					break
				}
			}
		}
		h.final <- nil
	}()
}

func (h *reconnectHarness) nextConn() *Conn {
	h.t.Helper()
	select {
	case c := <-h.conns:
		return c
	case err := <-h.final:
		h.t.Fatalf("loop ended with %v, want a connection", err)
	case <-time.After(5 * time.Second):
		h.t.Fatal("no connection within 5 s")
	}
	return nil
}

func (h *reconnectHarness) nextRetry() retry {
	h.t.Helper()
	select {
	case r := <-h.retries:
		return r
	case err := <-h.final:
		h.t.Fatalf("loop ended with %v, want a retry", err)
	case <-time.After(5 * time.Second):
		h.t.Fatal("no retry within 5 s")
	}
	return retry{}
}

func (h *reconnectHarness) end() error {
	h.t.Helper()
	select {
	case err := <-h.final:
		return err
	case <-time.After(5 * time.Second):
		h.t.Fatal("loop did not end within 5 s")
	}
	return nil
}

// advance moves the fake clock to the backoff timer, checking that it is
// not due a nanosecond before d.
func (h *reconnectHarness) advance(d time.Duration) {
	h.t.Helper()
	eventually(h.t, "backoff timer armed", func() bool { return h.fake.Pending() == 1 })
	h.fake.Advance(d - time.Nanosecond)
	if h.fake.Pending() != 1 {
		h.t.Fatalf("backoff timer fired before its %v delay", d)
	}
	// It fires now: what follows (a new connection or the next retry)
	// proves it; Pending cannot, as a failed dial arms the next timer at once.
	h.fake.Advance(time.Nanosecond)
}

// stepDelay is the k-th backoff delay (k >= 1) with the default options and
// a random source fixed at 0.5.
func stepDelay(k int) time.Duration {
	if k == 1 {
		return 2500 * time.Millisecond // half of the 5 s initial delay
	}
	d := math.Min(3.1*math.Pow(1.618, float64(k-2)), 90)
	return time.Duration(d * 0.9 * float64(time.Second)) // less jitter 0.2 * 0.5
}

func closeEnough(a, b time.Duration) bool { return (a - b).Abs() < time.Microsecond }

// TestReconnectRestartCycles is the acceptance test: the server is stopped
// and restarted on the same port 100 times; each time the client redials
// after exactly the backoff delay the fake clock measures, the delays grow
// to the cap and start over after a connection that stayed up, the hooks
// fire once per event, every attempt is logged with its number and delay,
// and no goroutine is left behind.
func TestReconnectRestartCycles(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv := newRestartServer(t, false)
	h := newHarness(t)
	h.run(srv.url(), h.options())
	h.nextConn()

	// attempt counts dials since the last connection that stayed up (the
	// first dial is attempt 1); step counts backoff delays.
	attempt, step, failedDials := 1, 0, 0
	check := func(cycle int, r retry) {
		t.Helper()
		attempt++
		step++
		if r.attempt != attempt || !closeEnough(r.delay, stepDelay(step)) {
			t.Fatalf("cycle %d: retry (attempt %d, delay %v), want attempt %d, delay %v", cycle, r.attempt, r.delay, attempt, stepDelay(step))
		}
	}
	for cycle := range 100 {
		if cycle%10 == 9 {
			// The connection stays up for ResetAfter: the backoff starts over.
			h.fake.Advance(DefaultReconnectResetAfter)
			attempt, step = 0, 0
		}
		srv.stop(cycle%2 == 0) // graceful 1001, or dropped TCP (1006)
		r := h.nextRetry()
		check(cycle, r)
		if code := CloseStatus(r.err); code != StatusGoingAway && code != StatusAbnormal {
			t.Fatalf("cycle %d: retry after %v", cycle, r.err)
		}
		if cycle%5 == 4 {
			// Redial while the server is still down: the dial fails and is
			// retried after the next delay.
			h.advance(r.delay)
			r = h.nextRetry()
			check(cycle, r)
			failedDials++
			if !errors.Is(r.err, syscall.ECONNREFUSED) {
				t.Fatalf("cycle %d: retry after %v, want connection refused", cycle, r.err)
			}
		}
		srv.start()
		h.advance(r.delay)
		h.nextConn()
	}
	h.cancel()
	if err := h.end(); !errors.Is(err, context.Canceled) {
		t.Fatalf("loop ended with %v, want context.Canceled", err)
	}
	if got := h.connects.Load(); got != 101 {
		t.Errorf("OnConnect fired %d times, want 101", got)
	}
	if got := h.disconnect.Load(); got != 101 {
		t.Errorf("OnDisconnect fired %d times, want 101", got)
	}
	attempts := h.log.messages("dial attempt")
	if len(attempts) != 101+failedDials {
		t.Errorf("%d dial attempt records, want %d", len(attempts), 101+failedDials)
	}
	for _, a := range attempts {
		if _, ok := a["attempt"]; !ok {
			t.Fatalf("dial attempt record without attempt: %v", a)
		}
		if _, ok := a["delay"]; !ok {
			t.Fatalf("dial attempt record without delay: %v", a)
		}
	}
	last := attempts[len(attempts)-1]
	if last["attempt"].Int64() != int64(attempt) || !closeEnough(last["delay"].Duration(), stepDelay(step)) {
		t.Errorf("last dial attempt record %v, want attempt %d", last, attempt)
	}
	srv.stop(true)
}

func TestReconnectForbiddenNotRetried(t *testing.T) {
	srv := newRestartServer(t, false)
	srv.status.Store(http.StatusForbidden)
	h := newHarness(t)
	h.run(srv.url(), h.options())
	err := h.end()
	var he *HandshakeError
	if !errors.As(err, &he) || he.StatusCode != http.StatusForbidden {
		t.Fatalf("loop ended with %v, want the 403", err)
	}
	if n := srv.requests.Load(); n != 1 {
		t.Fatalf("%d requests, want 1: a 403 is not retried", n)
	}
	if len(h.retries) != 0 || h.connects.Load() != 0 {
		t.Fatal("hooks fired for a refused dial")
	}
}

// TestReconnectServerErrorRetried: 503 twice, then the upgrade.
func TestReconnectServerErrorRetried(t *testing.T) {
	srv := newRestartServer(t, false)
	srv.status.Store(http.StatusServiceUnavailable)
	h := newHarness(t)
	h.run(srv.url(), h.options())
	r := h.nextRetry()
	var he *HandshakeError
	if !errors.As(r.err, &he) || he.StatusCode != 503 || r.attempt != 2 || r.delay != stepDelay(1) {
		t.Fatalf("first retry %+v", r)
	}
	h.advance(r.delay)
	r = h.nextRetry()
	if r.attempt != 3 || !closeEnough(r.delay, stepDelay(2)) {
		t.Fatalf("second retry %+v, want attempt 3 after %v", r, stepDelay(2))
	}
	srv.status.Store(0)
	h.advance(r.delay)
	h.nextConn()
	h.cancel()
	h.end()
	if n := srv.requests.Load(); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}
}

func TestReconnectEndsOnClose(t *testing.T) {
	for _, tc := range []struct {
		code    StatusCode
		wantErr bool
	}{
		{StatusNormal, false},         // ends quietly
		{StatusPolicyViolation, true}, // not worth a retry: yielded
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			srv := newRestartServer(t, false)
			h := newHarness(t)
			h.run(srv.url(), h.options())
			h.nextConn()
			sc := <-srv.accepted
			sc.Close(tc.code, "done")
			err := h.end()
			if tc.wantErr != (err != nil) || err != nil && CloseStatus(err) != tc.code {
				t.Fatalf("loop ended with %v", err)
			}
			if n := srv.requests.Load(); n != 1 {
				t.Fatalf("%d requests, want 1", n)
			}
		})
	}
}

// TestReconnectBreakKeepsConn: breaking out of the loop leaves the
// connection open and usable, and the iterator leaves nothing running.
func TestReconnectBreakKeepsConn(t *testing.T) {
	srv := newRestartServer(t, true)
	ctx := context.Background()
	var c *Conn
	for conn, err := range Reconnect(ctx, srv.url(), &ReconnectOptions{DialOptions: DialOptions{ConnOptions: ConnOptions{Logger: discard, PingInterval: -1}}}) {
		if err != nil {
			t.Fatal(err)
		}
		c = conn
		break
	}
	defer c.CloseNow()
	if err := c.Write(ctx, Text, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := c.Read(ctx); err != nil || string(p) != "still here" {
		t.Fatalf("read %q %v", p, err)
	}
	if err := c.Close(StatusNormal, ""); err != nil {
		t.Fatal(err)
	}
}

// TestReconnectWaitsForHandedOffConn: the body hands the connection to
// another goroutine and moves on; the iterator waits for it to end before
// redialing.
func TestReconnectWaitsForHandedOffConn(t *testing.T) {
	srv := newRestartServer(t, true)
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	handed := make(chan *Conn)
	bodyDone := make(chan struct{})
	go func() {
		defer close(bodyDone)
		for c, err := range Reconnect(ctx, srv.url(), h.options()) {
			if err != nil {
				return
			}
			handed <- c // and move on at once
		}
	}()
	c := <-handed
	if err := c.Write(ctx, Text, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := c.Read(ctx); err != nil || string(p) != "ping" {
		t.Fatalf("read %q %v", p, err)
	}
	if h.disconnect.Load() != 0 || srv.requests.Load() != 1 || len(h.retries) != 0 {
		t.Fatal("the iterator moved on while the connection was open")
	}
	(<-srv.accepted).CloseNow()
	r := h.nextRetry()
	if CloseStatus(r.err) != StatusAbnormal || h.disconnect.Load() != 1 {
		t.Fatalf("retry after %v", r.err)
	}
	cancel()
	<-bodyDone
}

// TestReconnectCancel: cancelling ctx while the body blocks in Read closes
// the connection with 1001 and ends the loop with the context's error; so
// does cancelling during a backoff delay.
func TestReconnectCancel(t *testing.T) {
	srv := newRestartServer(t, false)
	h := newHarness(t)
	h.run(srv.url(), h.options())
	h.nextConn()
	sc := <-srv.accepted
	h.cancel()
	if err := h.end(); !errors.Is(err, context.Canceled) {
		t.Fatalf("loop ended with %v", err)
	}
	<-sc.Done()
	var ce *CloseError
	if !errors.As(sc.Err(), &ce) || ce.Rcvd == nil || ce.Rcvd.Code != StatusGoingAway {
		t.Fatalf("server saw %v, want a 1001 from the client", sc.Err())
	}

	h = newHarness(t)
	h.run(srv.url(), h.options())
	h.nextConn()
	srv.stop(false)
	h.nextRetry()
	eventually(t, "backoff timer armed", func() bool { return h.fake.Pending() == 1 })
	h.cancel()
	if err := h.end(); !errors.Is(err, context.Canceled) {
		t.Fatalf("loop ended with %v", err)
	}
}

func TestReconnectMaxAttempts(t *testing.T) {
	srv := newRestartServer(t, false)
	url := srv.url()
	srv.stop(false)
	h := newHarness(t)
	opts := h.options()
	opts.MaxAttempts = 3
	h.run(url, opts)
	h.advance(h.nextRetry().delay)
	h.advance(h.nextRetry().delay)
	err := h.end()
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("loop ended with %v", err)
	}
	if n := len(h.log.messages("dial attempt")); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}
}

func TestReconnectFuncHandlerError(t *testing.T) {
	srv := newRestartServer(t, false)
	stop := errors.New("enough")
	h := newHarness(t)
	err := ReconnectFunc(context.Background(), srv.url(), h.options(), func(c *Conn) error { return stop })
	if err != stop {
		t.Fatalf("ReconnectFunc returned %v", err)
	}
	sc := <-srv.accepted
	<-sc.Done()
	if CloseStatus(sc.Err()) != StatusGoingAway {
		t.Fatalf("server saw %v, want 1001", sc.Err())
	}
}

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{fmt.Errorf("tether: dial: %w", io.ErrUnexpectedEOF), true},
		{fmt.Errorf("read response: %w", io.EOF), true},
		{fmt.Errorf("%w: i/o timeout", context.DeadlineExceeded), true},
		{&HandshakeError{StatusCode: 500}, true},
		{&HandshakeError{StatusCode: 502}, true},
		{&HandshakeError{StatusCode: 503}, true},
		{&HandshakeError{StatusCode: 504}, true},
		{&HandshakeError{StatusCode: 501}, false},
		{&HandshakeError{StatusCode: 403}, false},
		{&HandshakeError{StatusCode: 404}, false},
		{&HandshakeError{StatusCode: 429}, false},
		{context.Canceled, false},
		{errors.New("tether: bad URL"), false},
		{&CloseError{Code: StatusAbnormal, Initiator: "peer"}, true},
		{&CloseError{Code: StatusAbnormal, Initiator: "local"}, true},
		{&CloseError{Code: StatusInternalError, Reason: KeepaliveTimeoutReason, Initiator: "local"}, true},
		{&CloseError{Code: StatusServiceRestart, Initiator: "peer"}, true},
		{&CloseError{Code: StatusTryAgainLater, Initiator: "peer"}, true},
		{&CloseError{Code: StatusBadGateway, Initiator: "peer"}, true},
		{&CloseError{Code: StatusGoingAway, Initiator: "peer"}, true},
		{&CloseError{Code: StatusGoingAway, Initiator: "local"}, false},
		{&CloseError{Code: StatusNormal, Initiator: "peer"}, false},
		{&CloseError{Code: StatusPolicyViolation, Initiator: "peer"}, false},
		{&CloseError{Code: 4000, Initiator: "peer"}, false},
	} {
		if got := Retryable(tc.err); got != tc.want {
			t.Errorf("Retryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestBackoffSchedule(t *testing.T) {
	b := newReconnector("ws://x", &ReconnectOptions{random: func() float64 { return 0.5 }}).b
	for k := 1; k < 20; k++ {
		if d := b.next(); !closeEnough(d, stepDelay(k)) {
			t.Fatalf("delay %d = %v, want %v", k, d, stepDelay(k))
		}
	}
	if d := b.next(); d != 81*time.Second {
		t.Fatalf("capped delay %v, want 90 s less 10%% jitter", d)
	}
	b.reset()
	if d := b.next(); d != 2500*time.Millisecond {
		t.Fatalf("after reset %v", d)
	}

	exact := newReconnector("ws://x", &ReconnectOptions{InitialDelay: -1, Jitter: -1, MaxDelay: 10 * time.Second}).b
	var got []time.Duration
	for range 6 {
		got = append(got, exact.next())
	}
	want := []time.Duration{0, 3100 * time.Millisecond, 5015800 * time.Microsecond, 8115564400, 10 * time.Second, 10 * time.Second}
	for i := range want {
		if !closeEnough(got[i], want[i]) {
			t.Fatalf("delays %v, want %v", got, want)
		}
	}
}

// TestOutboxErrorsWhileDisconnected: without a queue, a write while
// disconnected fails at once; once connected, writes go out.
func TestOutboxErrorsWhileDisconnected(t *testing.T) {
	srv := newRestartServer(t, false)
	ob := &Outbox{}
	ctx := context.Background()
	if err := ob.Write(ctx, Text, []byte("early")); !errors.Is(err, ErrDisconnected) {
		t.Fatalf("write before the loop: %v", err)
	}
	h := newHarness(t)
	opts := h.options()
	opts.Outbox = ob
	h.run(srv.url(), opts)
	h.nextConn()
	sc := <-srv.accepted
	if err := ob.Write(ctx, Text, []byte("now")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := sc.Read(ctx); err != nil || string(p) != "now" {
		t.Fatalf("server read %q %v", p, err)
	}
	srv.stop(false)
	h.nextRetry()
	if err := ob.Write(ctx, Text, []byte("lost")); !errors.Is(err, ErrDisconnected) {
		t.Fatalf("write while disconnected: %v", err)
	}
	h.cancel()
	h.end()
	if ob.Dropped() != 0 {
		t.Fatalf("dropped %d, want 0: refused writes are the caller's", ob.Dropped())
	}
}

// TestOutboxQueues: while disconnected, up to Queue messages wait and go
// out in order on the next connection, before anything else; the one that
// does not fit is refused and reported, and so are those left when the
// loop stops for good.
func TestOutboxQueues(t *testing.T) {
	srv := newRestartServer(t, false)
	var mu sync.Mutex
	var dropped []string
	ob := &Outbox{Queue: 3, OnDrop: func(_ MessageType, p []byte, err error) {
		mu.Lock()
		defer mu.Unlock()
		dropped = append(dropped, string(p))
	}}
	h := newHarness(t)
	opts := h.options()
	opts.Outbox = ob
	h.run(srv.url(), opts)
	h.nextConn()
	<-srv.accepted
	srv.stop(false)
	r := h.nextRetry()
	ctx := context.Background()
	for i := range 3 {
		if err := ob.Write(ctx, Text, fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := ob.Write(ctx, Text, []byte("m3")); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("fourth write: %v", err)
	}
	srv.start()
	h.advance(r.delay)
	h.nextConn()
	sc := <-srv.accepted
	if err := ob.Write(ctx, Text, []byte("m4")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"m0", "m1", "m2", "m4"} {
		if _, p, err := sc.Read(ctx); err != nil || string(p) != want {
			t.Fatalf("server read %q %v, want %q", p, err, want)
		}
	}

	srv.status.Store(http.StatusForbidden)
	srv.stop(false)
	r = h.nextRetry()
	ob.Write(ctx, Text, []byte("m5"))
	srv.start()
	h.advance(r.delay)
	if err := h.end(); CloseStatus(err) != -1 || err == nil {
		t.Fatalf("loop ended with %v, want the 403", err)
	}
	if err := ob.Write(ctx, Text, []byte("m6")); err == nil {
		t.Fatal("write after the loop stopped succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(dropped) != "[m3 m5]" || ob.Dropped() != 2 {
		t.Fatalf("dropped %v (%d), want [m3 m5]", dropped, ob.Dropped())
	}
}

func ExampleReconnect() {
	ctx := context.Background()
	outbox := &Outbox{Queue: 100} // writes wait for the next connection
	opts := &ReconnectOptions{Outbox: outbox, MaxDelay: 30 * time.Second}
	for c, err := range Reconnect(ctx, "wss://example.com/feed", opts) {
		if err != nil {
			fmt.Println("gave up:", err) // a 403, ctx, ...
			return
		}
		for {
			_, msg, err := c.Read(ctx)
			if err != nil {
				break // lost: the loop redials after a backoff delay
			}
			fmt.Printf("%s\n", msg)
		}
	}
}

// TestReconnectURLPerAttempt: ReconnectOptions.URL picks each attempt's URL.
func TestReconnectURLPerAttempt(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.RawQuery)
		mu.Unlock()
		c, err := Accept(w, r, &AcceptOptions{ConnOptions: ConnOptions{Registry: NoRegistry, Logger: discard}})
		if err != nil {
			return
		}
		c.Close(StatusServiceRestart, "again")
	}))
	defer srv.Close()
	base := "ws" + strings.TrimPrefix(srv.URL, "http")
	opts := &ReconnectOptions{InitialDelay: -1, MinDelay: time.Millisecond, MaxDelay: time.Millisecond, Jitter: -1,
		URL: func(attempt int) string { return fmt.Sprintf("%s/?attempt=%d", base, attempt) }}
	opts.Registry, opts.Logger = NoRegistry, discard
	n := 0
	for c, err := range Reconnect(context.Background(), base, opts) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			c.CloseNow()
			break
		}
		c.Read(context.Background()) // until the server's close
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"attempt=1", "attempt=2", "attempt=3"}; !slices.Equal(seen, want) {
		t.Fatalf("queries %q, want %q", seen, want)
	}
}

// TestDialAttemptLoggedWhenItStarts: the "dial attempt" record of a redial
// is written once its backoff delay is over, not when the delay begins, and
// carries that delay; an attempt cut off during its delay is never logged.
func TestDialAttemptLoggedWhenItStarts(t *testing.T) {
	srv := newRestartServer(t, false)
	url := srv.url()
	srv.stop(false)
	h := newHarness(t)
	h.run(url, h.options())
	r := h.nextRetry()
	eventually(t, "backoff timer armed", func() bool { return h.fake.Pending() == 1 })
	if n := len(h.log.messages("dial attempt")); n != 1 {
		t.Fatalf("%d dial attempt records while the second attempt waits, want 1", n)
	}
	h.fake.Advance(r.delay)
	r2 := h.nextRetry() // the second attempt was made, and failed
	attempts := h.log.messages("dial attempt")
	if len(attempts) != 2 {
		t.Fatalf("%d dial attempt records after the delay, want 2", len(attempts))
	}
	if a := attempts[1]; a["attempt"].Int64() != 2 || a["delay"].Duration() != r.delay {
		t.Fatalf("second dial attempt record %v, want attempt 2 and delay %v", a, r.delay)
	}
	eventually(t, "backoff timer armed", func() bool { return h.fake.Pending() == 1 })
	h.cancel()
	if err := h.end(); !errors.Is(err, context.Canceled) {
		t.Fatalf("loop ended with %v", err)
	}
	if n := len(h.log.messages("dial attempt")); n != 2 {
		t.Fatalf("%d dial attempt records after a cancel during attempt %d's delay, want 2", n, r2.attempt)
	}
}
