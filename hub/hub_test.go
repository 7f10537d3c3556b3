package hub

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherws/tether"
	"go.uber.org/goleak"
)

// TestMain fails the run if a writer or any connection goroutine outlives
// the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var discard = slog.New(slog.DiscardHandler)

// smallBuffers makes every accepted TCP connection's send buffer small, so a
// client that does not read stalls its writer after a few kilobytes.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return nc, err
}

// hubServer joins every connection to the room named by the request path
// and reads (discarding) until the connection ends.
type hubServer struct {
	t     *testing.T
	hub   *Hub
	reg   *tether.Registry
	url   string
	conns sync.Map // remote address -> server-side *tether.Conn
	// slowCloseTimeout, when set, is the slow clients' CloseTimeout: how
	// long one holds the server's close frame behind messages it has not
	// read (strict order) before it answers.
	slowCloseTimeout time.Duration
}

// newHubServer starts a server for a hub with opts; its connections give up
// a closing handshake after closeTimeout.
func newHubServer(t *testing.T, opts *Options, closeTimeout time.Duration) *hubServer {
	t.Helper()
	s := &hubServer{t: t, hub: New(opts), reg: tether.NewRegistry()}
	s.reg.Logger = discard
	var wg sync.WaitGroup
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		c, err := tether.Accept(w, r, &tether.AcceptOptions{Subprotocols: []string{Subprotocol}, ConnOptions: tether.ConnOptions{
			Registry: s.reg, PingInterval: -1, CloseTimeout: closeTimeout, Logger: discard}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		s.conns.Store(c.RemoteAddr().String(), c)
		room := strings.TrimPrefix(r.URL.Path, "/")
		if c.Subprotocol() == Subprotocol {
			err = s.hub.Subscribe(r.Context(), room, c, SinceFromRequest(r))
		} else {
			err = s.hub.Join(room, c)
		}
		if err != nil {
			return
		}
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}))
	srv.Listener = smallBuffers{srv.Listener}
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s.reg.Shutdown(ctx, tether.StatusGoingAway, "")
		s.hub.Close()
		wg.Wait()
	})
	s.url = "ws" + strings.TrimPrefix(srv.URL, "http")
	return s
}

// dial opens a client in room; slow ones get a small receive buffer and
// read little ahead of their application.
func (s *hubServer) dial(room string, slow bool) *tether.Conn {
	s.t.Helper()
	opts := &tether.DialOptions{FanOut: true, ConnOptions: tether.ConnOptions{
		Registry: tether.NoRegistry, PingInterval: -1, Logger: discard}}
	if slow {
		opts.ReadQueue = 16
		opts.CloseTimeout = s.slowCloseTimeout
		opts.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			nc, err := d.DialContext(ctx, network, addr)
			if err == nil {
				nc.(*net.TCPConn).SetReadBuffer(4096)
			}
			return nc, err
		}
	}
	c, _, err := tether.Dial(context.Background(), s.url+"/"+room, opts)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { c.CloseNow() })
	return c
}

// dialSub opens a subscriber in room, resuming after since.
func (s *hubServer) dialSub(room string, since uint64) *tether.Conn {
	s.t.Helper()
	opts := &tether.DialOptions{FanOut: true, Subprotocols: []string{Subprotocol}, ConnOptions: tether.ConnOptions{
		Registry: tether.NoRegistry, PingInterval: -1, Logger: discard}}
	c, _, err := tether.Dial(context.Background(), fmt.Sprintf("%s/%s?since=%d", s.url, room, since), opts)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { c.CloseNow() })
	return c
}

// serverSide returns the server's end of client connection c.
func (s *hubServer) serverSide(c *tether.Conn) *tether.Conn {
	s.t.Helper()
	var sc *tether.Conn
	eventually(s.t, "server side registered", func() bool {
		v, ok := s.conns.Load(c.LocalAddr().String())
		if ok {
			sc = v.(*tether.Conn)
		}
		return ok
	})
	return sc
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

func waitGroup(t *testing.T, wg *sync.WaitGroup, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s; %s", what, failures())
	}
}

// failures lists the readers' errors so far, for a test that timed out.
var failures = func() string { return "" }

// message is a numbered message of size bytes, random after the number so
// that compression cannot shrink it.
func message(seq, size int) []byte {
	p := make([]byte, size)
	rand.Read(p)
	binary.BigEndian.PutUint32(p, uint32(seq))
	return p
}

// fastReaders starts a reader per connection that checks every message
// arrives in order and marks it in acks[seq].
func fastReaders(t *testing.T, conns []*tether.Conn, acks []sync.WaitGroup, total int) (done *sync.WaitGroup, errs chan error) {
	done = &sync.WaitGroup{}
	errs = make(chan error, len(conns))
	failures = func() string {
		var out []string
		for len(errs) > 0 {
			out = append(out, (<-errs).Error())
		}
		return strings.Join(out, "; ")
	}
	for i, c := range conns {
		done.Go(func() {
			for want := range total {
				_, p, err := c.Read(context.Background())
				if err != nil {
					errs <- fmt.Errorf("reader %d: message %d: %w", i, want, err)
					return
				}
				if got := int(binary.BigEndian.Uint32(p)); got != want {
					errs <- fmt.Errorf("reader %d: got message %d, want %d", i, got, want)
					return
				}
				acks[want].Done()
			}
		})
	}
	return done, errs
}

// broadcastPaced sends total messages, never more than window ahead of the
// slowest fast reader: the readers keep up, so only the policy can touch
// them if the hub were unfair.
func broadcastPaced(t *testing.T, h *Hub, room string, acks []sync.WaitGroup, fast, total, size, window int, sample func()) {
	t.Helper()
	for i := range total {
		if i >= window {
			waitGroup(t, &acks[i-window], fmt.Sprintf("readers to get message %d", i-window))
		}
		acks[i].Add(fast)
		if _, err := h.Broadcast(room, tether.Binary, message(i, size)); err != nil {
			t.Fatal(err)
		}
		if sample != nil && i%100 == 50 {
			// Measure at rest: every reader has every message so far.
			waitGroup(t, &acks[i], fmt.Sprintf("readers to get message %d", i))
			sample()
		}
	}
}

// TestBroadcastThousandSubscribers is the acceptance test: 1,000 subscribers
// (100 under the race detector) and one that never reads. Every reader gets
// every message, in order; the one that does not read is closed with 1013
// once its queue is full; the queues, and the memory, stay bounded.
func TestBroadcastThousandSubscribers(t *testing.T) {
	fast, total, size, queue, window := 1000, 250, 512, 64, 32
	if raceEnabled {
		fast = 100
	}
	// No write timeout: only the queue policy may end the stalled one. Its
	// close frame then waits for the stuck write, until CloseTimeout.
	s := newHubServer(t, &Options{Queue: queue, WriteTimeout: -1, Logger: discard}, 500*time.Millisecond)
	conns := make([]*tether.Conn, fast)
	for i := range conns {
		conns[i] = s.dial("news", false)
	}
	slow := s.dial("news", true)
	slowServer := s.serverSide(slow)
	eventually(t, "every subscriber joined", func() bool { return s.hub.Len("news") == fast+1 })

	acks := make([]sync.WaitGroup, total)
	readers, errs := fastReaders(t, conns, acks, total)
	// Memory is sampled after a GC: what the hub and the connections retain,
	// not the garbage between collections.
	heap := func() int64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.GC() // the second empties the buffer pools' victim caches
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	// The first sample, after 50 messages, is the baseline: by then every
	// connection has its buffers (and its inflater: compression is on).
	idle, samples, maxPending := heap(), []int64(nil), 0
	sample := func() {
		samples = append(samples, heap())
		maxPending = max(maxPending, s.hub.Stats().Pending)
	}
	start := time.Now()
	broadcastPaced(t, s.hub, "news", acks, fast, total, size, window, sample)
	waitGroup(t, readers, "readers")
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	select { // closed by the policy
	case <-slowServer.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("slow consumer still open; stats %+v; server %+v", s.hub.Stats(), slowServer.Stats())
	}
	eventually(t, "slow consumer retired", func() bool { return s.hub.Stats().Conns == fast })
	// The message its writer was stuck on counts as discarded when that
	// write ends (the TCP drop after CloseTimeout), which may come after
	// the connection is done and retired.
	accounted := func(st Stats) bool { return st.Queued == st.Sent+st.Discarded+int64(st.Pending) }
	eventually(t, "every queued message sent, pending or discarded", func() bool { return accounted(s.hub.Stats()) })
	st := s.hub.Stats()
	if st.SlowClosed != 1 || st.Dropped < 1 {
		t.Fatalf("stats %+v: want one slow consumer closed", st)
	}
	if !accounted(st) {
		t.Fatalf("stats %+v: queued messages unaccounted for", st)
	}
	if st.Sent < int64(fast*total) {
		t.Fatalf("stats %+v: sent fewer than the %d messages the readers got", st, fast*total)
	}
	if maxPending > queue*(fast+1) {
		t.Fatalf("%d messages pending at once, more than %d queues of %d", maxPending, fast+1, queue)
	}
	// Queued messages are shared: the hub holds about window messages for
	// the readers and a queue's worth for the stalled one (64 * 512 B),
	// whatever the number of subscribers and messages. 4 MiB is far above
	// that and far below a copy per subscriber (1,000 * 250 * 512 B =
	// 122 MiB).
	sample() // the stalled one is closed: nothing of it is left
	growth := slices.Max(samples) - samples[0]
	if growth > 4<<20 {
		t.Fatalf("live heap grew by %d MiB while broadcasting (samples %v)", growth>>20, samples)
	}
	t.Logf("%d subscribers + 1 stalled, %d messages of %d B: %v, %.0f deliveries/s, %.0f broadcasts/s; live heap %.1f MiB idle, %.1f MiB after 50 messages, %+.2f MiB at most after that; max pending %d; stats %+v",
		fast, total, size, elapsed.Round(time.Millisecond), float64(fast*total)/elapsed.Seconds(), float64(total)/elapsed.Seconds(),
		float64(idle)/(1<<20), float64(samples[0])/(1<<20), float64(growth)/(1<<20), maxPending, st)
}

// TestDropPolicyCountsEverything: under DropMessages a subscriber that does
// not read keeps its connection; what it later reads plus what the hub
// counts as dropped for it is exactly what was broadcast, in order, and the
// hub logs the run of drops and its end.
func TestDropPolicyCountsEverything(t *testing.T) {
	fast, total, size, queue, window := 20, 300, 512, 16, 8
	logs := &recorder{}
	s := newHubServer(t, &Options{Queue: queue, Policy: DropMessages, WriteTimeout: -1, Logger: slog.New(logs)}, time.Second)
	conns := make([]*tether.Conn, fast)
	for i := range conns {
		conns[i] = s.dial("feed", false)
	}
	slow := s.dial("feed", true)
	slowServer := s.serverSide(slow)
	eventually(t, "every subscriber joined", func() bool { return s.hub.Len("feed") == fast+1 })

	acks := make([]sync.WaitGroup, total)
	readers, errs := fastReaders(t, conns, acks, total)
	broadcastPaced(t, s.hub, "feed", acks, fast, total, size, window, nil)
	waitGroup(t, readers, "readers")
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	dropped := s.hub.Dropped(slowServer)
	if dropped == 0 {
		t.Fatal("the stalled subscriber lost nothing: the test did not stall it")
	}
	// Now it reads: every message the hub did not drop for it, in order.
	last := -1
	for range total - int(dropped) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, p, err := slow.Read(ctx)
		cancel()
		if err != nil {
			t.Fatalf("after message %d: %v (dropped %d)", last, err, dropped)
		}
		seq := int(binary.BigEndian.Uint32(p))
		if seq <= last || seq >= total {
			t.Fatalf("message %d after %d", seq, last)
		}
		last = seq
	}
	// Caught up, it gets new messages again.
	acks = append(acks, sync.WaitGroup{})
	acks[total].Add(fast)
	if n, _ := s.hub.Broadcast("feed", tether.Binary, message(total, size)); n != fast+1 {
		t.Fatalf("broadcast after catching up reached %d of %d", n, fast+1)
	}
	if _, p, err := slow.Read(context.Background()); err != nil || int(binary.BigEndian.Uint32(p)) != total {
		t.Fatalf("read after catching up: %v", err)
	}
	if slowServer.Err() != nil {
		t.Fatalf("the slow connection ended: %v", slowServer.Err())
	}
	// Each run of drops is logged when it starts and when the queue is
	// empty again, with the count so far.
	var ups []map[string]slog.Value
	eventually(t, "caught-up record", func() bool {
		ups = logs.messages("slow consumer caught up")
		return len(ups) > 0 && ups[len(ups)-1]["dropped"].Int64() == dropped
	})
	if downs := logs.messages("slow consumer: dropping messages"); len(downs) != len(ups) {
		t.Fatalf("%d runs of drops logged, %d ends", len(downs), len(ups))
	}
	if id := ups[0]["conn"].String(); id != slowServer.ID() {
		t.Fatalf("record names %s, want %s", id, slowServer.ID())
	}
	if st := s.hub.Stats(); st.Dropped != dropped || st.SlowClosed != 0 {
		t.Fatalf("stats %+v, want %d dropped and nobody closed", st, dropped)
	}
}

// TestCloseSlowSends1013: a subscriber that stops reading for a while is
// closed with 1013 once its queue is full; when it reads again it gets what
// was queued before, then the close frame.
func TestCloseSlowSends1013(t *testing.T) {
	s := newHubServer(t, &Options{Queue: 4, Logger: discard}, time.Minute)
	c := s.dial("r", true)
	sc := s.serverSide(c)
	eventually(t, "joined", func() bool { return s.hub.Len("r") == 1 })
	for i := 0; s.hub.Stats().SlowClosed == 0; i++ {
		s.hub.Broadcast("r", tether.Binary, message(i, 1024))
		if i > 1_000_000 {
			t.Fatal("never closed")
		}
	}
	var err error
	for err == nil {
		_, _, err = c.Read(context.Background())
	}
	var ce *tether.CloseError
	if !errors.As(err, &ce) || ce.Code != tether.StatusTryAgainLater || ce.Reason != SlowReason || ce.Initiator != "peer" {
		t.Fatalf("client read %v, want 1013 %q", err, SlowReason)
	}
	<-sc.Done()
	if s.hub.Len("r") != 0 {
		t.Fatal("closed subscriber still in the room")
	}
}

// TestCloseSlowBehindBlockedWrite: when the policy closes a member whose
// write is blocked on a full socket, the close frame waits behind that
// write, whose WriteTimeout then cuts it: the connection must still end as
// the policy decided, 1013 "slow consumer" from this side (the record
// that the log, the registry, the metrics and the dashboard all take), not
// as a failed write (1006).
func TestCloseSlowBehindBlockedWrite(t *testing.T) {
	// The close must land behind a blocked write: an attempt where it
	// went out between two writes does not count.
	for range 10 {
		err := closeSlowAttempt(t)
		// Every attempt ends 1013; the one to look for is the close
		// decided while a write was blocked (its error is kept in Err).
		var ce *tether.CloseError
		if !errors.As(err, &ce) || ce.Code != tether.StatusTryAgainLater || ce.Reason != SlowReason || ce.Initiator != "local" {
			t.Fatalf("slow member ended with %v, want 1013 %q from this side", err, SlowReason)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return
		}
	}
	t.Fatal("in 10 attempts, the policy never closed a member during a blocked write")
}

// closeSlowAttempt paces broadcasts to one member that does not read until
// the policy closes it, and returns how its connection ended.
func closeSlowAttempt(t *testing.T) error {
	s := newHubServer(t, &Options{Queue: 4, WriteTimeout: time.Second, Logger: discard}, time.Minute)
	// When the close frame goes out between two writes (an attempt that
	// does not count), it reaches the member, which holds it behind the
	// messages it has not read for its CloseTimeout before it answers:
	// keep that short, so the attempt ends well within the wait below.
	// (Under the event engine, whose 16 KiB write queue takes a 64 KiB
	// message whole, this happens more often than on a reader goroutine.)
	s.slowCloseTimeout = time.Second
	stuck := s.dial("r", true)
	sc := s.serverSide(stuck)
	eventually(t, "joined", func() bool { return s.hub.Len("r") == 1 })
	msg := make([]byte, 64<<10)
	rand.Read(msg) // incompressible: the socket fills after a few
	// Paced, so that the writer keeps up until the socket is full and a
	// write blocks; the queue then fills behind it within the timeout.
	for i := 0; s.hub.Stats().SlowClosed == 0; i++ {
		s.hub.Broadcast("r", tether.Binary, msg)
		time.Sleep(25 * time.Millisecond)
		if i > 1000 {
			t.Fatal("never closed")
		}
	}
	select {
	case <-sc.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the slow member is still open")
	}
	stuck.CloseNow()
	return sc.Err()
}

// TestConcurrentBroadcastsOneOrder: broadcasts from several goroutines reach
// every member in the same order.
func TestConcurrentBroadcastsOneOrder(t *testing.T) {
	s := newHubServer(t, &Options{Queue: 1024, Logger: discard}, time.Second)
	const members, senders, each = 5, 4, 50
	conns := make([]*tether.Conn, members)
	for i := range conns {
		conns[i] = s.dial("room", false)
	}
	eventually(t, "joined", func() bool { return s.hub.Len("room") == members })
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for i := range each {
				s.hub.Broadcast("room", tether.Text, fmt.Appendf(nil, "%d-%d", g, i))
			}
		})
	}
	wg.Wait()
	var first []string
	for i, c := range conns {
		var got []string
		for range senders * each {
			_, p, err := c.Read(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(p))
		}
		if i == 0 {
			first = got
		} else if fmt.Sprint(got) != fmt.Sprint(first) {
			t.Fatalf("member %d saw another order", i)
		}
	}
}

func TestRooms(t *testing.T) {
	s := newHubServer(t, &Options{Logger: discard}, time.Second)
	a1, a2, b := s.dial("a", false), s.dial("a", false), s.dial("b", false)
	eventually(t, "joined", func() bool { return s.hub.Len("a") == 2 && s.hub.Len("b") == 1 })
	if n, err := s.hub.Broadcast("a", tether.Text, []byte("to a")); n != 2 || err != nil {
		t.Fatalf("broadcast to a: %d %v", n, err)
	}
	for _, c := range []*tether.Conn{a1, a2} {
		if _, p, err := c.Read(context.Background()); err != nil || string(p) != "to a" {
			t.Fatalf("read %q %v", p, err)
		}
	}
	// b joins a too; a2 leaves a.
	bs := s.serverSide(b)
	s.hub.Join("a", bs)
	s.hub.Leave("a", s.serverSide(a2))
	if n, _ := s.hub.Broadcast("a", tether.Text, []byte("again")); n != 2 {
		t.Fatalf("broadcast reached %d, want a1 and b", n)
	}
	for _, c := range []*tether.Conn{a1, b} {
		if _, p, err := c.Read(context.Background()); err != nil || string(p) != "again" {
			t.Fatalf("read %q %v", p, err)
		}
	}
	// A connection that ends leaves every room.
	b.Close(tether.StatusNormal, "")
	<-bs.Done()
	eventually(t, "b gone", func() bool { return s.hub.Len("b") == 0 && s.hub.Len("a") == 1 })
	if n, err := s.hub.Broadcast("nobody", tether.Text, []byte("x")); n != 0 || err != nil {
		t.Fatalf("empty room: %d %v", n, err)
	}
	if _, err := s.hub.Broadcast("a", tether.MessageType(9), []byte("x")); err == nil {
		t.Fatal("bad message type accepted")
	}
	s.hub.Close()
	if _, err := s.hub.Broadcast("a", tether.Text, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("broadcast after close: %v", err)
	}
	if err := s.hub.Join("a", bs); !errors.Is(err, ErrClosed) {
		t.Fatalf("join after close: %v", err)
	}
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

func (r *recorder) messages(msg string) []map[string]slog.Value {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]slog.Value
	for _, rec := range r.recs {
		if rec.Message == msg {
			m := map[string]slog.Value{}
			rec.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value; return true })
			out = append(out, m)
		}
	}
	return out
}

// TestWriteTimeoutFailsStuckMember: a member that stops reading, with a
// queue too long for the slow-consumer policy to come first, is failed by
// WriteTimeout once a write to it has lasted that long; the others still get
// every message.
func TestWriteTimeoutFailsStuckMember(t *testing.T) {
	const timeout = 300 * time.Millisecond
	s := newHubServer(t, &Options{Queue: 10000, WriteTimeout: timeout, Logger: discard}, 200*time.Millisecond)
	fast := s.dial("room", false)
	stuck := s.dial("room", true)
	stuckServer := s.serverSide(stuck)
	eventually(t, "both joined", func() bool { return s.hub.Len("room") == 2 })
	got := make(chan int, 1)
	go func() {
		n := 0
		for {
			if _, _, err := fast.Read(context.Background()); err != nil {
				got <- n
				return
			}
			n++
		}
	}()
	// Incompressible (compression is negotiated), so that the stuck
	// member's socket buffers fill after a few.
	msg := make([]byte, 64<<10)
	rand.Read(msg)
	start := time.Now()
	const total = 100
	for range total {
		if _, err := s.hub.Broadcast("room", tether.Binary, msg); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-stuckServer.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("the stuck member is still open; stats %+v", s.hub.Stats())
	}
	if d := time.Since(start); d < timeout {
		t.Errorf("the stuck member was failed after %v, before the write timeout (%v)", d, timeout)
	}
	var ce *tether.CloseError
	if err := stuckServer.Err(); !errors.As(err, &ce) || ce.Code != tether.StatusAbnormal || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("stuck member ended with %v, want a failed write (1006) cut by the timeout", err)
	}
	eventually(t, "stuck member retired", func() bool { return s.hub.Len("room") == 1 })
	eventually(t, "the reader got every message", func() bool { return s.serverSide(fast).Stats().MessagesOut == total })
	if st := s.hub.Stats(); st.SlowClosed != 0 || st.Dropped != 0 {
		t.Errorf("stats %+v: the queue policy acted, not the timeout", st)
	}
	fast.CloseNow()
	<-got
}
