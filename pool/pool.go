// Package pool keeps N client connections to one or several WebSocket
// endpoints, all dialed with one set of DialOptions (so one keepalive
// setting), and spreads writes over the healthy ones: round-robin or to the
// least loaded.
//
// Each connection lives in a slot that a tether.Reconnect loop keeps filled:
// a connection that ends is replaced at once, then with backoff. A health
// check replaces a connection whose last keepalive pong is older than
// PingInterval + PingTimeout, or that is stuck closing, and takes out of
// rotation, without closing it, a connection whose keepalive ping has waited
// longer than SuspectAfter: a peer that went silent stops getting writes
// well before its timeout proves it dead.
package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherws/tether"
	"github.com/tetherws/tether/internal/clock"
)

// Balance chooses the connection for each write.
type Balance int

const (
	// RoundRobin takes the healthy connections in turn.
	RoundRobin Balance = iota
	// LeastLoaded takes the healthy connection with the fewest writes in
	// progress, the first in turn among equals.
	LeastLoaded
)

// DefaultHealthInterval is how often connections are checked by default.
const DefaultHealthInterval = time.Second

// ErrClosed is returned by a closed pool.
var ErrClosed = errors.New("pool: closed")

// Options configure a pool. The zero value gives one connection per
// endpoint with the defaults.
type Options struct {
	// Dial is used for every connection, so that they all share one
	// keepalive setting. FanOut is always set: these connections to one
	// endpoint are deliberate. An ID, if set, gets the slot number appended.
	// Its Clock drives keepalive, the health checks and the redial backoff.
	Dial tether.DialOptions
	// Size is the number of connections, spread over the endpoints in turn.
	// Default one per endpoint.
	Size int
	// Balance chooses the connection for each write.
	Balance Balance
	// HealthInterval is how often the connections are checked. Default 1 s.
	HealthInterval time.Duration
	// SuspectAfter takes a connection out of rotation while its keepalive
	// ping has waited longer than this for its pong. Default a quarter of
	// the ping timeout; negative never does.
	SuspectAfter time.Duration
	// MinDelay and MaxDelay bound the backoff between redials of a slot
	// after the first, immediate one; the defaults are Reconnect's.
	MinDelay, MaxDelay time.Duration
	// OnMessage receives the messages the connections read; nil discards
	// them. It runs on the connection's reading goroutine: one connection's
	// messages arrive in order, and a slow OnMessage holds up only its own
	// connection.
	OnMessage func(c *tether.Conn, typ tether.MessageType, p []byte)
}

// Pool is a set of client connections. It is safe for concurrent use.
type Pool struct {
	opts         Options
	dial         tether.DialOptions
	clock        clock.Clock
	log          *slog.Logger
	slots        []*slot
	next         atomic.Uint64
	closeTimeout time.Duration
	suspectAfter time.Duration

	ctx    context.Context // the slots' lifetime
	cancel context.CancelFunc
	loops  sync.WaitGroup

	mu     sync.Mutex // guards closed, wake and writes.Add
	closed bool
	wake   chan struct{} // closed when a slot may have become usable
	writes sync.WaitGroup

	closing atomic.Bool // no more redials

	healthMu      sync.Mutex
	health        clock.Timer
	healthStopped bool

	sent, failed, replaced, unhealthy atomic.Int64
}

// slot is one connection's place in the pool.
type slot struct {
	index     int
	endpoint  string
	conn      atomic.Pointer[tether.Conn]
	healthy   atomic.Bool
	connected atomic.Bool // has had a connection
	inflight  atomic.Int64
	sent      atomic.Int64
	lastErr   atomic.Pointer[string]

	// health check state, under Pool.healthMu
	closingConn  *tether.Conn
	closingSince time.Time
}

// New dials the pool's connections and returns when all are open. When
// ctx ends first, it returns the pool if some are open (the others keep
// redialing), an error otherwise. A dial that fails in a way not worth
// retrying (tether.Retryable: a 403, a bad URL) fails New.
func New(ctx context.Context, endpoints []string, opts *Options) (*Pool, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("pool: no endpoints")
	}
	if opts == nil {
		opts = &Options{}
	}
	p := &Pool{opts: *opts, dial: opts.Dial, clock: opts.Dial.Clock, log: opts.Dial.Logger, wake: make(chan struct{})}
	p.dial.FanOut = true
	if p.clock == nil {
		p.clock = clock.Real
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.opts.Size <= 0 {
		p.opts.Size = len(endpoints)
	}
	if p.opts.HealthInterval <= 0 {
		p.opts.HealthInterval = DefaultHealthInterval
	}
	p.closeTimeout = orDefault(opts.Dial.CloseTimeout, tether.DefaultCloseTimeout)
	p.suspectAfter = opts.SuspectAfter
	if p.suspectAfter == 0 && opts.Dial.PingInterval >= 0 && opts.Dial.PingTimeout >= 0 {
		p.suspectAfter = orDefault(opts.Dial.PingTimeout, tether.DefaultPingTimeout) / 4
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())

	first := make(chan error, p.opts.Size)
	for i := range p.opts.Size {
		s := &slot{index: i, endpoint: endpoints[i%len(endpoints)]}
		p.slots = append(p.slots, s)
		p.loops.Go(func() { p.run(s, first) })
	}
	p.scheduleHealth()
	for range p.opts.Size {
		select {
		case err := <-first:
			if err != nil {
				p.Close(context.Background())
				return nil, err
			}
		case <-ctx.Done():
			if p.Stats().Open > 0 {
				return p, nil
			}
			p.Close(context.Background())
			return nil, fmt.Errorf("pool: no connection opened: %w", ctx.Err())
		}
	}
	return p, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// run keeps slot s filled until the pool closes. It reports on first the
// slot's first connection (nil) or the error that ended its loop.
func (p *Pool) run(s *slot, first chan<- error) {
	reported := false
	report := func(err error) {
		if !reported {
			reported = true
			first <- err
		}
	}
	ropts := &tether.ReconnectOptions{
		DialOptions:  p.dial,
		InitialDelay: -1, // the other connections show the endpoint is up
		MinDelay:     p.opts.MinDelay,
		MaxDelay:     p.opts.MaxDelay,
		ShouldRetry: func(err error) bool {
			if p.closing.Load() {
				return false
			}
			s.setErr(err)
			// Before the first connection, only what may pass; after it,
			// everything: a pool that gave up on a slot would shrink
			// without a word.
			return s.connected.Load() || tether.Retryable(err)
		},
	}
	if id := p.dial.ID; id != "" {
		ropts.ID = id + "-" + strconv.Itoa(s.index)
	}
	for c, err := range tether.Reconnect(p.ctx, s.endpoint, ropts) {
		if err != nil {
			s.setErr(err)
			report(err)
			return
		}
		p.admit(s, c)
		report(nil)
		p.serve(s, c)
	}
	report(errors.New("pool: closed"))
}

// admit puts c in rotation in slot s.
func (p *Pool) admit(s *slot, c *tether.Conn) {
	s.conn.Store(c)
	s.healthy.Store(true)
	s.connected.Store(true)
	p.notify()
}

// serve reads c until it ends, then takes it out of rotation.
func (p *Pool) serve(s *slot, c *tether.Conn) {
	for {
		typ, data, err := c.Read(p.ctx)
		if err != nil {
			break
		}
		if p.opts.OnMessage != nil {
			p.opts.OnMessage(c, typ, data)
		}
	}
	s.healthy.Store(false)
	s.conn.CompareAndSwap(c, nil)
	if !p.closing.Load() {
		p.replaced.Add(1)
	}
}

func (s *slot) setErr(err error) {
	msg := err.Error()
	s.lastErr.Store(&msg)
}

// usable returns the slot's connection if it may take a write.
func (s *slot) usable() *tether.Conn {
	c := s.conn.Load()
	if c == nil || !s.healthy.Load() || c.Err() != nil {
		return nil
	}
	return c
}

// notify wakes the writers waiting for a usable connection.
func (p *Pool) notify() {
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.wake)
	p.wake = make(chan struct{})
}

// Write sends a message on one healthy connection, chosen by Balance. It
// waits for one while none is usable, until ctx ends. When the chosen
// connection ends during the write, the message is written on another (so
// the peer may get it twice, if the first got it whole).
func (p *Pool) Write(ctx context.Context, typ tether.MessageType, data []byte) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.writes.Add(1)
	p.mu.Unlock()
	defer p.writes.Done()

	var err error
	for range len(p.slots) + 1 {
		var s *slot
		var c *tether.Conn
		if s, c, err = p.pick(ctx); err != nil {
			break
		}
		s.inflight.Add(1)
		err = c.Write(ctx, typ, data)
		s.inflight.Add(-1)
		if err == nil {
			s.sent.Add(1)
			p.sent.Add(1)
			return nil
		}
		if ctx.Err() != nil || c.Err() == nil {
			break // not the connection's doing
		}
		s.healthy.Store(false)
	}
	p.failed.Add(1)
	return err
}

// pick returns a usable slot and its connection, waiting for one.
func (p *Pool) pick(ctx context.Context) (*slot, *tether.Conn, error) {
	for {
		if s, c := p.choose(); s != nil {
			return s, c, nil
		}
		p.mu.Lock()
		closed, wake := p.closed, p.wake
		p.mu.Unlock()
		if closed {
			return nil, nil, ErrClosed
		}
		if s, c := p.choose(); s != nil { // usable since the first look?
			return s, c, nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
}

func (p *Pool) choose() (*slot, *tether.Conn) {
	n := uint64(len(p.slots))
	start := p.next.Add(1)
	var best *slot
	var bestConn *tether.Conn
	for i := range n {
		s := p.slots[(start+i)%n]
		c := s.usable()
		if c == nil {
			continue
		}
		if p.opts.Balance == RoundRobin {
			return s, c
		}
		if best == nil || s.inflight.Load() < best.inflight.Load() {
			best, bestConn = s, c
		}
	}
	return best, bestConn
}

// Stats is a snapshot of a pool.
type Stats struct {
	Size      int   // connections the pool keeps
	Open      int   // connections open now
	Healthy   int   // connections taking writes now
	Sent      int64 // messages written
	Failed    int64 // writes that failed
	Replaced  int64 // connections that ended and were redialed
	Unhealthy int64 // connections the health check closed
	Conns     []ConnStats
}

// ConnStats describes one slot of the pool: its connection's counters (zero
// while it redials) and the pool's view of it.
type ConnStats struct {
	tether.Stats
	Endpoint string
	Local    string // local address, "" while redialing
	Healthy  bool
	InFlight int64  // writes in progress
	Written  int64  // messages the pool wrote on this slot, over all its connections
	LastErr  string // the last dial error or close, if any
}

// Stats returns a snapshot of the pool.
func (p *Pool) Stats() Stats {
	st := Stats{Size: len(p.slots), Sent: p.sent.Load(), Failed: p.failed.Load(),
		Replaced: p.replaced.Load(), Unhealthy: p.unhealthy.Load()}
	for _, s := range p.slots {
		cs := ConnStats{Endpoint: s.endpoint, InFlight: s.inflight.Load(), Written: s.sent.Load()}
		if c := s.conn.Load(); c != nil {
			cs.Stats = c.Stats()
			cs.Local = c.LocalAddr().String()
			if cs.State != "closed" {
				st.Open++
			}
		}
		if s.usable() != nil {
			cs.Healthy = true
			st.Healthy++
		}
		if e := s.lastErr.Load(); e != nil {
			cs.LastErr = *e
		}
		st.Conns = append(st.Conns, cs)
	}
	return st
}

// Close drains the pool: writes started before it finish (later ones fail
// with ErrClosed), then every connection closes with 1000, all in parallel.
// If ctx ends before the writes have finished, the connections close with
// 1001 instead; if it ends before the closing handshakes are done, the rest
// are dropped, and Close returns ctx's error. Close waits for the pool's
// goroutines to end.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.closed = true
	close(p.wake) // waiting writers see closed
	p.wake = make(chan struct{})
	p.mu.Unlock()

	code, reason := tether.StatusNormal, "pool closed"
	drained := make(chan struct{})
	go func() {
		p.writes.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-ctx.Done():
		code, reason = tether.StatusGoingAway, "pool closed before its writes finished"
	}
	p.closing.Store(true)
	p.stopHealth()

	var closing sync.WaitGroup
	var conns []*tether.Conn
	for _, s := range p.slots {
		if c := s.conn.Load(); c != nil {
			conns = append(conns, c)
			closing.Go(func() { c.Close(code, reason) })
		}
	}
	closed := make(chan struct{})
	go func() {
		closing.Wait()
		close(closed)
	}()
	err := ctx.Err()
	select {
	case <-closed:
	case <-ctx.Done():
		err = ctx.Err()
		for _, c := range conns {
			c.CloseNow()
		}
		<-closed
	}
	p.cancel()
	p.loops.Wait()
	<-drained // the connections are closed: writes have returned
	if err != nil {
		return fmt.Errorf("pool: close: %w", err)
	}
	return nil
}

func (p *Pool) scheduleHealth() {
	p.healthMu.Lock()
	defer p.healthMu.Unlock()
	p.health = p.clock.AfterFunc(p.opts.HealthInterval, p.checkHealth)
}

func (p *Pool) stopHealth() {
	p.healthMu.Lock()
	defer p.healthMu.Unlock()
	p.healthStopped = true
	p.health.Stop()
}

// checkHealth judges every connection, closes the dead ones (their slot
// redials), and takes the suspect ones out of rotation.
func (p *Pool) checkHealth() {
	p.healthMu.Lock()
	defer p.healthMu.Unlock()
	if p.healthStopped {
		return
	}
	now := p.clock.Now()
	for _, s := range p.slots {
		c := s.conn.Load()
		if c == nil {
			continue
		}
		st := c.Stats()
		if st.State == "closing" && s.closingConn != c {
			s.closingConn, s.closingSince = c, now
		}
		v, why := judge(st, now, s.closingSince, p.closeTimeout, p.suspectAfter)
		switch v {
		case healthy:
			if !s.healthy.Swap(true) {
				p.notify()
			}
		case suspect:
			s.healthy.Store(false)
		case dead:
			s.healthy.Store(false)
			p.unhealthy.Add(1)
			p.log.Warn("pool: replacing unhealthy connection", "conn", st.ID, "role", st.Role,
				"remote", c.RemoteAddr().String(), "reason", why)
			c.CloseNow()
		}
	}
	p.health.Reset(p.opts.HealthInterval)
}

type verdict int

const (
	healthy verdict = iota
	suspect         // open, but no writes for now
	dead            // to be closed and replaced
)

// judge decides a connection's health from its stats at now. closingSince
// is when the pool first saw it closing.
func judge(st tether.Stats, now, closingSince time.Time, closeTimeout, suspectAfter time.Duration) (verdict, string) {
	switch st.State {
	case "closed":
		return suspect, "closed"
	case "closing":
		if now.Sub(closingSince) > closeTimeout {
			return dead, fmt.Sprintf("closing for more than the close timeout (%v)", closeTimeout)
		}
		return suspect, "closing"
	}
	if st.PingInterval <= 0 {
		return healthy, ""
	}
	timeout := st.PingTimeout
	if timeout <= 0 {
		timeout = st.PingInterval // pings never time out: allow one more interval
	}
	last := st.LastPongAt
	if last.Before(st.OpenedAt) {
		last = st.OpenedAt
	}
	if limit := st.PingInterval + timeout; now.Sub(last) > limit {
		return dead, fmt.Sprintf("no pong for more than ping interval + timeout (%v)", limit)
	}
	if suspectAfter > 0 && st.LastPingAt.After(st.LastPongAt) && now.Sub(st.LastPingAt) > suspectAfter {
		return suspect, "keepalive ping unanswered"
	}
	return healthy, ""
}
