package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherws/tether"
	"github.com/tetherws/tether/internal/clock"
	"go.uber.org/goleak"
)

// TestMain fails the run if a slot loop, a health check or a connection
// goroutine outlives the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var discard = slog.New(slog.DiscardHandler)

// server counts the messages it receives, by content, and keeps its
// connections by the client's address.
type server struct {
	t      *testing.T
	url    string
	status atomic.Int32 // refuse with this HTTP status when not zero
	read   atomic.Bool  // read messages (or leave them queued)

	mu    sync.Mutex
	got   map[string]int            // message -> times received
	conns map[string]*tether.Conn   // client address -> server side
	byID  map[string]map[string]int // server conn ID -> messages
}

func newServer(t *testing.T) *server {
	s := &server{t: t, got: map[string]int{}, conns: map[string]*tether.Conn{}, byID: map[string]map[string]int{}}
	s.read.Store(true)
	reg := tether.NewRegistry()
	reg.Logger = discard
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		if code := int(s.status.Load()); code != 0 {
			http.Error(w, "refused", code)
			return
		}
		c, err := tether.Accept(w, r, &tether.AcceptOptions{ConnOptions: tether.ConnOptions{
			Registry: reg, PingInterval: -1, Logger: discard}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		s.mu.Lock()
		s.conns[c.RemoteAddr().String()] = c
		s.byID[c.ID()] = map[string]int{}
		s.mu.Unlock()
		if !s.read.Load() {
			<-c.Done()
			return
		}
		for {
			_, p, err := c.Read(context.Background())
			if err != nil {
				return
			}
			s.mu.Lock()
			s.got[string(p)]++
			s.byID[c.ID()][string(p)]++
			s.mu.Unlock()
		}
	}))
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		reg.Shutdown(ctx, tether.StatusGoingAway, "")
		wg.Wait()
	})
	s.url = "ws" + strings.TrimPrefix(srv.URL, "http")
	return s
}

func (s *server) received(msg string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got[msg]
}

// proxy forwards TCP connections to target and can blackhole one: from then
// on it swallows everything both ways, and neither end sees a close.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	frozen map[string]*atomic.Bool // client address -> blackholed
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, frozen: map[string]*atomic.Bool{}}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			frozen := &atomic.Bool{}
			p.mu.Lock()
			p.frozen[c.RemoteAddr().String()] = frozen
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			p.wg.Go(func() { pump(up, c, frozen) })
			p.wg.Go(func() { pump(c, up, frozen) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func pump(dst, src net.Conn, frozen *atomic.Bool) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !frozen.Load() {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) url() string { return "ws://" + p.ln.Addr().String() + "/pool" }

func (p *proxy) blackhole(client string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frozen[client].Store(true)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// fakeOptions is a pool of size connections whose keepalive, health checks
// and backoff run on fake.
func fakeOptions(fake *clock.Fake, size int, interval, timeout time.Duration) *Options {
	return &Options{
		Dial: tether.DialOptions{ConnOptions: tether.ConnOptions{Clock: fake, PingInterval: interval,
			PingTimeout: timeout, Logger: discard, Registry: tether.NoRegistry}},
		Size:           size,
		HealthInterval: time.Second,
	}
}

// settle waits until every connection but the blackholed one has its
// keepalive pongs: the fake clock must not run ahead of the network.
func settle(t *testing.T, p *Pool, victim string) {
	t.Helper()
	eventually(t, "pongs", func() bool {
		for _, cs := range p.Stats().Conns {
			if cs.ID != victim && cs.ID != "" && cs.PongsReceived < cs.PingsSent {
				return false
			}
		}
		return true
	})
}

// TestPoolReplacesBlackholed is the acceptance test: one connection's
// traffic is blackholed. Within ping interval + timeout (10 s + 5 s, on a
// fake clock) the pool has closed and replaced it; from the moment its
// keepalive ping goes unanswered for SuspectAfter, writes go only to the
// healthy connections, and none is lost.
func TestPoolReplacesBlackholed(t *testing.T) {
	srv := newServer(t)
	px := newProxy(t, strings.TrimPrefix(srv.url, "ws://"))
	fake := clock.NewFake()
	const interval, timeout = 10 * time.Second, 5 * time.Second
	ctx := context.Background()
	p, err := New(ctx, []string{px.url()}, fakeOptions(fake, 3, interval, timeout))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	st := p.Stats()
	if st.Healthy != 3 {
		t.Fatalf("stats %+v", st)
	}
	victim := st.Conns[1]
	px.blackhole(victim.Local)

	sentWhileSuspect := 0
	for elapsed := time.Second; elapsed <= interval+timeout; elapsed += time.Second {
		fake.Advance(time.Second)
		settle(t, p, victim.ID)
		st := p.Stats()
		cur := st.Conns[1]
		if elapsed < interval+timeout-2*time.Second {
			// The first ping goes out 8-10 s in, so it times out 13-15 s in.
			if cur.ID != victim.ID || cur.State != "open" {
				t.Fatalf("at %v the blackholed connection is %s %s, want still open", elapsed, cur.ID, cur.State)
			}
		}
		if cur.ID == victim.ID && !cur.Healthy && cur.State == "open" {
			// Suspect: out of rotation while still open. Writes now must all
			// reach the server through the others.
			for i := range 10 {
				msg := fmt.Sprintf("at %v #%d", elapsed, i)
				if err := p.Write(ctx, tether.Text, []byte(msg)); err != nil {
					t.Fatal(err)
				}
				sentWhileSuspect++
				eventually(t, "message at the server", func() bool { return srv.received(msg) == 1 })
			}
		}
		for i, cs := range st.Conns {
			if i != 1 && !cs.Healthy {
				t.Fatalf("at %v healthy connection %d is out of rotation: %+v", elapsed, i, cs)
			}
		}
	}
	if sentWhileSuspect == 0 {
		t.Fatal("the blackholed connection was never taken out of rotation before its timeout")
	}
	// At interval + timeout it is gone, and its slot redials at once.
	eventually(t, "replacement", func() bool {
		cs := p.Stats().Conns[1]
		return cs.ID != "" && cs.ID != victim.ID && cs.Healthy
	})
	st = p.Stats()
	if st.Replaced != 1 || st.Healthy != 3 || !strings.Contains(st.Conns[1].LastErr, tether.KeepaliveTimeoutReason) {
		t.Fatalf("stats %+v, want one replacement after a keepalive timeout, and three healthy", st)
	}
	// The replacement takes its share of round-robin writes, and every
	// write arrives.
	for i := range 30 {
		if err := p.Write(ctx, tether.Text, fmt.Appendf(nil, "after %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if w := p.Stats().Conns[1].Written; w != 10 {
		t.Fatalf("the replaced slot took %d of 30 writes, want 10", w)
	}
	for i := range 30 {
		msg := fmt.Sprintf("after %d", i)
		eventually(t, msg, func() bool { return srv.received(msg) == 1 })
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestPoolHealthCheckReplacesStale: with keepalive timeouts off, the
// connection itself never gives up on a silent peer: the pool's health
// check closes it once its last pong is older than two intervals.
func TestPoolHealthCheckReplacesStale(t *testing.T) {
	srv := newServer(t)
	px := newProxy(t, strings.TrimPrefix(srv.url, "ws://"))
	fake := clock.NewFake()
	const interval = 10 * time.Second
	ctx := context.Background()
	p, err := New(ctx, []string{px.url()}, fakeOptions(fake, 2, interval, -1))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	victim := p.Stats().Conns[0]
	px.blackhole(victim.Local)
	for elapsed := time.Second; elapsed <= 2*interval; elapsed += time.Second {
		fake.Advance(time.Second)
		settle(t, p, victim.ID)
		if cs := p.Stats().Conns[0]; cs.ID != victim.ID || cs.State != "open" {
			t.Fatalf("at %v: %s %s, want the silent connection still open", elapsed, cs.ID, cs.State)
		}
	}
	fake.Advance(time.Second) // now its last sign of life is more than 20 s old
	eventually(t, "replacement", func() bool {
		cs := p.Stats().Conns[0]
		return cs.ID != "" && cs.ID != victim.ID && cs.Healthy
	})
	if st := p.Stats(); st.Unhealthy != 1 || st.Replaced != 1 {
		t.Fatalf("stats %+v, want one connection closed by the health check", st)
	}
}

func TestJudge(t *testing.T) {
	t0 := time.Date(2025, 6, 7, 5, 0, 0, 0, time.UTC)
	open := tether.Stats{State: "open", OpenedAt: t0, PingInterval: 10 * time.Second, PingTimeout: 5 * time.Second}
	with := func(f func(*tether.Stats)) tether.Stats { s := open; f(&s); return s }
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	for _, tc := range []struct {
		name         string
		st           tether.Stats
		now          time.Time
		closingSince time.Time
		want         verdict
	}{
		{"fresh", open, sec(1), time.Time{}, healthy},
		{"no pong yet, within interval + timeout", open, sec(15), time.Time{}, healthy},
		{"no pong after interval + timeout", open, sec(16), time.Time{}, dead},
		{"pong recent", with(func(s *tether.Stats) { s.LastPingAt, s.LastPongAt = sec(10), sec(10) }), sec(24), time.Time{}, healthy},
		{"pong too old", with(func(s *tether.Stats) { s.LastPingAt, s.LastPongAt = sec(20), sec(10) }), sec(26), time.Time{}, dead},
		{"ping outstanding briefly", with(func(s *tether.Stats) { s.LastPingAt = sec(10) }), sec(11), time.Time{}, healthy},
		{"ping outstanding past SuspectAfter", with(func(s *tether.Stats) { s.LastPingAt = sec(10) }), sec(13), time.Time{}, suspect},
		{"timeouts off: two intervals", with(func(s *tether.Stats) { s.PingTimeout = 0 }), sec(20), time.Time{}, healthy},
		{"timeouts off: past two intervals", with(func(s *tether.Stats) { s.PingTimeout = 0 }), sec(21), time.Time{}, dead},
		{"keepalive off", with(func(s *tether.Stats) { s.PingInterval, s.PingTimeout = 0, 0 }), sec(1000), time.Time{}, healthy},
		{"closing", with(func(s *tether.Stats) { s.State = "closing" }), sec(5), sec(1), suspect},
		{"stuck closing", with(func(s *tether.Stats) { s.State = "closing" }), sec(12), sec(1), dead},
		{"closed", with(func(s *tether.Stats) { s.State = "closed" }), sec(1), time.Time{}, suspect},
	} {
		if got, why := judge(tc.st, tc.now, tc.closingSince, 10*time.Second, 2*time.Second); got != tc.want {
			t.Errorf("%s: %v (%s), want %v", tc.name, got, why, tc.want)
		}
	}
}

// TestPoolRoundRobinAndEndpoints: four connections over two endpoints take
// writes in turn.
func TestPoolRoundRobinAndEndpoints(t *testing.T) {
	a, b := newServer(t), newServer(t)
	ctx := context.Background()
	var got atomic.Int64
	p, err := New(ctx, []string{a.url, b.url}, &Options{Size: 4,
		Dial:      tether.DialOptions{ConnOptions: tether.ConnOptions{Logger: discard, Registry: tether.NoRegistry}},
		OnMessage: func(*tether.Conn, tether.MessageType, []byte) { got.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	for i, cs := range st.Conns {
		if want := []string{a.url, b.url}[i%2]; cs.Endpoint != want || cs.PingInterval != tether.DefaultPingInterval {
			t.Fatalf("slot %d: %+v", i, cs)
		}
	}
	for i := range 40 {
		if err := p.Write(ctx, tether.Text, fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i, cs := range p.Stats().Conns {
		if cs.Written != 10 {
			t.Fatalf("slot %d wrote %d messages, want 10 each", i, cs.Written)
		}
	}
	// Messages from the servers reach OnMessage.
	eventually(t, "a's connections", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return len(a.conns) == 2
	})
	a.mu.Lock()
	for _, sc := range a.conns {
		sc.Write(ctx, tether.Text, []byte("hello"))
	}
	a.mu.Unlock()
	eventually(t, "messages from a", func() bool { return got.Load() == 2 })
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*server{a, b} {
		s.mu.Lock()
		for _, sc := range s.conns {
			<-sc.Done()
			var ce *tether.CloseError
			if !errors.As(sc.Err(), &ce) || ce.Code != tether.StatusNormal || ce.Reason != "pool closed" {
				t.Errorf("server saw %v, want 1000 pool closed", sc.Err())
			}
		}
		s.mu.Unlock()
	}
	if err := p.Write(ctx, tether.Text, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

func TestPoolLeastLoaded(t *testing.T) {
	srv := newServer(t)
	ctx := context.Background()
	p, err := New(ctx, []string{srv.url}, &Options{Size: 3, Balance: LeastLoaded,
		Dial: tether.DialOptions{ConnOptions: tether.ConnOptions{Logger: discard, Registry: tether.NoRegistry}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	p.slots[0].inflight.Store(2)
	p.slots[1].inflight.Store(1)
	p.slots[2].inflight.Store(3)
	for range 5 {
		if s, _ := p.choose(); s != p.slots[1] {
			t.Fatalf("chose slot %d, want the least loaded (1)", s.index)
		}
	}
	p.slots[1].healthy.Store(false)
	if s, _ := p.choose(); s != p.slots[0] {
		t.Fatalf("chose slot %d, want 0 once 1 is out of rotation", s.index)
	}
	for _, s := range p.slots {
		s.inflight.Store(0)
	}
}

func TestPoolNewRefused(t *testing.T) {
	srv := newServer(t)
	srv.status.Store(http.StatusForbidden)
	_, err := New(context.Background(), []string{srv.url}, &Options{Size: 2,
		Dial: tether.DialOptions{ConnOptions: tether.ConnOptions{Logger: discard, Registry: tether.NoRegistry}}})
	var he *tether.HandshakeError
	if !errors.As(err, &he) || he.StatusCode != http.StatusForbidden {
		t.Fatalf("New: %v, want the 403", err)
	}
}

// TestPoolCloseCut: when ctx ends before the writes drain (here one is stuck
// on a server that does not read), Close closes with 1001, drops what does
// not answer, and returns ctx's error; the stuck write returns too.
func TestPoolCloseCut(t *testing.T) {
	srv := newServer(t)
	srv.read.Store(false)
	ctx := context.Background()
	p, err := New(ctx, []string{srv.url}, &Options{Size: 1,
		Dial: tether.DialOptions{ConnOptions: tether.ConnOptions{Logger: discard, Registry: tether.NoRegistry,
			CompressionMode: tether.CompressionDisabled}}})
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 1<<20)
	werr := make(chan error, 1)
	go func() {
		for {
			if err := p.Write(ctx, tether.Binary, big); err != nil {
				werr <- err
				return
			}
		}
	}()
	// Stuck: the server's read-ahead is full, the socket buffers too, and
	// the count of whole messages sent no longer moves.
	last := int64(-1)
	eventually(t, "a stuck write", func() bool {
		time.Sleep(20 * time.Millisecond)
		st := p.Stats()
		stuck := st.Conns[0].InFlight == 1 && st.Sent > 0 && int64(st.Sent) == last
		last = int64(st.Sent)
		return stuck
	})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.Close(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close: %v", err)
	}
	if err := <-werr; err == nil {
		t.Fatal("the stuck write succeeded")
	}
}
