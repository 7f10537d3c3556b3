package tether

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/tetherws/tether/internal/clock"
)

// Backoff defaults, modeled on python-websockets' (its WEBSOCKETS_BACKOFF_*
// variables).
const (
	DefaultReconnectInitialDelay = 5 * time.Second
	DefaultReconnectMinDelay     = 3100 * time.Millisecond
	DefaultReconnectMaxDelay     = 90 * time.Second
	DefaultReconnectFactor       = 1.618
	DefaultReconnectJitter       = 0.2
	DefaultReconnectResetAfter   = 30 * time.Second
)

// ReconnectOptions configure Reconnect. The zero value redials for ever with
// the default backoff.
//
// The delays, from python-websockets: the first redial waits a random time
// up to InitialDelay (RFC 6455 section 7.2.3 asks for a random first delay,
// so that clients cut off together do not all come back at once); the
// second waits MinDelay; each later one Factor times the one before, capped
// at MaxDelay. Every delay but the first is then shortened by a random part
// of up to Jitter of itself. The Clock of the embedded ConnOptions times the
// delays too, so a test can drive them with a fake clock (tethertest.Clock)
// and check each to the nanosecond.
type ReconnectOptions struct {
	// DialOptions are used for every attempt; its Logger receives the
	// records of the reconnect loop as well.
	DialOptions

	// InitialDelay bounds the random delay before the first redial.
	// Default 5 s; negative redials at once.
	InitialDelay time.Duration
	// MinDelay is the delay before the second redial. Default 3.1 s.
	MinDelay time.Duration
	// MaxDelay caps the delays. Default 90 s.
	MaxDelay time.Duration
	// Factor multiplies the delay after each further failure. Default 1.618.
	Factor float64
	// Jitter is the largest fraction by which a delay is shortened at
	// random. Default 0.2; negative for none.
	Jitter float64
	// ResetAfter is how long a connection must have stayed up for the
	// backoff to start over: a connection that drops sooner counts as one
	// more failure, so a server that accepts and drops at once is not
	// hammered. Default 30 s.
	ResetAfter time.Duration
	// MaxAttempts stops the loop after that many attempts in a row have
	// failed (a dial that failed, or a connection that did not stay up for
	// ResetAfter). Zero means no limit.
	MaxAttempts int

	// ShouldRetry says whether an error is worth a redial: a failed dial's
	// error, or the *CloseError of a connection that ended, a normal close
	// included. Nil means Retryable. When it says no to a normal close, the
	// loop ends quietly.
	ShouldRetry func(err error) bool

	// OnConnect is called with each new connection, before the loop body
	// gets it, and the number of the attempt that opened it.
	OnConnect func(c *Conn, attempt int)
	// OnDisconnect is called when a connection the loop body had has ended,
	// with the *CloseError saying how.
	OnDisconnect func(c *Conn, err error)
	// OnRetry is called when a redial is decided: with the number of the
	// coming attempt, the delay before it and the error that caused it.
	OnRetry func(attempt int, delay time.Duration, err error)

	// Outbox, when set, sends its messages on whichever connection the loop
	// holds. It serves one loop at a time.
	Outbox *Outbox

	// URL, when set, gives the URL of each attempt, for example with the
	// position a subscriber resumes from in its query; the url passed to
	// Reconnect still names the loop in the logs.
	URL func(attempt int) string

	// random returns a number in [0, 1) for the jitter; tests fix it.
	random func() float64
}

// Reconnect returns an iterator over successive connections to url: it
// dials, hands the connection to the loop body, and when that connection
// has ended abnormally, redials after a backoff delay.
//
//	for c, err := range tether.Reconnect(ctx, url, opts) {
//		if err != nil {
//			return err // why the loop stopped
//		}
//		for {
//			_, msg, err := c.Read(ctx)
//			if err != nil {
//				break // lost: the loop redials
//			}
//			handle(msg)
//		}
//	}
//
// The body owns each connection until it ends. When the body moves on while
// its connection is still open (it handed it to other goroutines), the
// iterator waits for the connection to end before deciding whether to
// redial. Breaking out of the loop, or returning from it, stops the
// iterator and leaves the connection open for the caller to keep.
//
// A failed dial is retried when ShouldRetry says so (by default: network
// errors, timeouts, EOF during the handshake, HTTP 500, 502, 503, 504); so
// is an ended connection (by default: 1006, 1011, 1012, 1013, 1014, and a
// 1001 the server sent). The loop ends quietly after a normal close (1000,
// or a 1001 the body sent). It ends by yielding a nil connection and the
// error that stopped it: a dial error not worth retrying (a 403, a bad
// URL), a connection that ended otherwise, MaxAttempts failures in a row,
// or ctx's end. When ctx ends, the connection the loop holds is closed
// with 1001, unless the body broke out with it.
//
// Each attempt is logged as it starts (info "dial attempt", with "attempt"
// and the "delay" waited before it), and so is each decision to redial
// (info "reconnecting", with the error and the delay about to be waited).
// The iterator runs on the caller's goroutine and starts none that outlive
// it. It can be ranged over again: each loop starts from scratch.
func Reconnect(ctx context.Context, url string, opts *ReconnectOptions) iter.Seq2[*Conn, error] {
	if opts == nil {
		opts = &ReconnectOptions{}
	}
	o := *opts
	return func(yield func(*Conn, error) bool) {
		r := newReconnector(url, &o)
		r.run(ctx, yield)
	}
}

// ReconnectFunc is Reconnect with a callback: it calls handle with each
// connection, on the calling goroutine. When handle returns nil, the
// connection is waited for and redialed as Reconnect does. When handle
// returns an error, ReconnectFunc closes the connection with 1001 (if it is
// still open) and returns that error. It returns nil after a normal close,
// and otherwise the error that stopped the loop.
func ReconnectFunc(ctx context.Context, url string, opts *ReconnectOptions, handle func(c *Conn) error) error {
	for c, err := range Reconnect(ctx, url, opts) {
		if err != nil {
			return err
		}
		if err := handle(c); err != nil {
			c.Close(StatusGoingAway, "")
			return err
		}
	}
	return nil
}

// Retryable is the default ShouldRetry of Reconnect. It holds for what may
// go away by itself: network errors and timeouts, EOF during the opening
// handshake, HTTP 500, 502, 503 and 504, and connections that ended with
// 1006 (no close frame), 1011 (server error, or a keepalive timeout), 1012
// (service restart), 1013 (try again later), 1014 (bad gateway) or a 1001
// (going away) that the peer sent. It does not hold for other HTTP answers
// (4xx), certificate errors, bad URLs, cancelled contexts and other close
// codes.
func Retryable(err error) bool {
	var ce *CloseError
	if errors.As(err, &ce) {
		switch ce.Code {
		case StatusAbnormal, StatusInternalError, StatusServiceRestart, StatusTryAgainLater, StatusBadGateway:
			return true
		case StatusGoingAway:
			return ce.Initiator == "peer"
		}
		return false
	}
	var he *HandshakeError
	if errors.As(err, &he) {
		switch he.StatusCode {
		case 500, 502, 503, 504:
			return true
		}
		return false
	}
	var (
		cve *tls.CertificateVerificationError
		hne x509.HostnameError
		uae x509.UnknownAuthorityError
		cie x509.CertificateInvalidError
	)
	switch {
	case errors.Is(err, context.Canceled),
		errors.As(err, &cve), errors.As(err, &hne), errors.As(err, &uae), errors.As(err, &cie):
		return false
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, context.DeadlineExceeded):
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// endedNormally reports a close that ends a reconnect loop without an
// error: 1000 from either side, or a 1001 the body sent.
func endedNormally(err error) bool {
	var ce *CloseError
	if !errors.As(err, &ce) {
		return false
	}
	return ce.Code == StatusNormal || ce.Code == StatusGoingAway && ce.Initiator == "local"
}

// reconnector is one run of a reconnect loop.
type reconnector struct {
	url   string
	safe  string // url without a password, for logs
	opts  *ReconnectOptions
	clock clock.Clock
	log   *slog.Logger
	retry func(error) bool
	b     backoff
}

func newReconnector(rawURL string, o *ReconnectOptions) *reconnector {
	r := &reconnector{url: rawURL, safe: rawURL, opts: o, clock: o.Clock, log: o.Logger, retry: o.ShouldRetry}
	if u, err := url.Parse(rawURL); err == nil {
		r.safe = u.Redacted()
	}
	if r.clock == nil {
		r.clock = clock.Real
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.retry == nil {
		r.retry = Retryable
	}
	r.b = backoff{
		initial: orDefault(o.InitialDelay, DefaultReconnectInitialDelay),
		min:     orDefault(o.MinDelay, DefaultReconnectMinDelay),
		max:     orDefault(o.MaxDelay, DefaultReconnectMaxDelay),
		factor:  o.Factor,
		jitter:  o.Jitter,
		random:  o.random,
	}
	if r.b.factor <= 1 {
		r.b.factor = DefaultReconnectFactor
	}
	if r.b.jitter == 0 {
		r.b.jitter = DefaultReconnectJitter
	}
	r.b.jitter = min(max(r.b.jitter, 0), 1)
	if r.b.random == nil {
		r.b.random = rand.Float64
	}
	return r
}

func (r *reconnector) run(ctx context.Context, yield func(*Conn, error) bool) {
	ob := r.opts.Outbox
	if ob != nil {
		ob.start()
	}
	broke, err := r.loop(ctx, yield)
	if ob != nil {
		ob.stop(err) // before the last yield: the body may write again
	}
	if err != nil && !broke {
		yield(nil, err)
	}
}

// loop dials and redials until it should stop, and returns why: nil after a
// normal close or when the body broke out of the loop (broke).
func (r *reconnector) loop(ctx context.Context, yield func(*Conn, error) bool) (broke bool, stop error) {
	resetAfter := orDefault(r.opts.ResetAfter, DefaultReconnectResetAfter)
	attempt, delay := 1, time.Duration(0)
	for {
		if err := r.sleep(ctx, delay); err != nil {
			return false, fmt.Errorf("tether: reconnect %s: %w", r.safe, err)
		}
		// Logged once the delay is over, as the dial starts: the record's
		// time is the attempt's, and its delay is one that was waited.
		r.log.Info("dial attempt", "url", r.safe, "attempt", attempt, "delay", delay)
		u := r.url
		if f := r.opts.URL; f != nil {
			u = f(attempt)
		}
		c, _, err := Dial(ctx, u, &r.opts.DialOptions)
		if err == nil {
			var keep bool
			if keep, err = r.serve(ctx, c, attempt, yield); !keep {
				return true, nil
			}
			if r.clock.Now().Sub(c.opened()) >= resetAfter {
				r.b.reset()
				attempt = 0
			}
		}
		switch retry, n := ctx.Err() == nil && r.retry(err), r.opts.MaxAttempts; {
		case ctx.Err() != nil:
			return false, fmt.Errorf("tether: reconnect %s: %w", r.safe, ctx.Err())
		case !retry && endedNormally(err):
			return false, nil
		case !retry:
			return false, err
		case n > 0 && attempt >= n:
			return false, fmt.Errorf("tether: reconnect %s: gave up after %d attempts: %w", r.safe, attempt, err)
		}
		attempt++
		delay = r.b.next()
		r.log.Info("reconnecting", "url", r.safe, "attempt", attempt, "delay", delay, "error", err.Error())
		if f := r.opts.OnRetry; f != nil {
			f(attempt, delay, err)
		}
	}
}

// serve hands c to the loop body and waits for c to end. keep is false when
// the body broke out of the loop; err is how c ended.
func (r *reconnector) serve(ctx context.Context, c *Conn, attempt int, yield func(*Conn, error) bool) (keep bool, err error) {
	if f := r.opts.OnConnect; f != nil {
		f(c, attempt)
	}
	ob := r.opts.Outbox
	if ob != nil {
		ob.attach(ctx, c)
	}
	// When ctx ends, the connection ends with it (while the body still runs,
	// or after it handed the connection on).
	closed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(closed)
		c.conn.close(StatusGoingAway, "going away")
	})
	keep = yield(c, nil)
	if keep {
		<-c.Done()
	}
	if !stop() {
		<-closed
	}
	if ob != nil {
		ob.detach(c)
	}
	if !keep {
		return false, nil
	}
	err = c.Err()
	if f := r.opts.OnDisconnect; f != nil {
		f(c, err)
	}
	return true, err
}

// sleep waits d on the loop's clock, or until ctx ends.
func (r *reconnector) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	fired := make(chan struct{})
	t := r.clock.AfterFunc(d, func() { close(fired) })
	select {
	case <-fired:
		return nil
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	}
}

// backoff computes the delays of a reconnect loop.
type backoff struct {
	initial, min, max time.Duration
	factor, jitter    float64
	random            func() float64
	n                 int           // delays given since the last reset
	cur               time.Duration // the un-jittered delay of the last step
}

func (b *backoff) reset() { b.n, b.cur = 0, 0 }

func (b *backoff) next() time.Duration {
	b.n++
	switch {
	case b.n == 1:
		if b.initial <= 0 {
			return 0
		}
		return time.Duration(b.random() * float64(b.initial))
	case b.n == 2:
		b.cur = b.min
	default:
		b.cur = time.Duration(min(float64(b.cur)*b.factor, float64(b.max)))
	}
	d := min(b.cur, b.max)
	return d - time.Duration(b.jitter*b.random()*float64(d))
}

// ErrDisconnected is returned by Outbox.Write when there is no connection
// and the outbox keeps no queue.
var ErrDisconnected = errors.New("tether: not connected")

// ErrQueueFull is returned by Outbox.Write when there is no connection and
// the queue is full: the message was dropped.
var ErrQueueFull = errors.New("tether: outbox queue full, message dropped")

// Outbox sends messages on whichever connection a Reconnect loop holds
// (set it as ReconnectOptions.Outbox), so that producers need not follow
// the reconnections. What happens to a message written while there is no
// connection is an explicit choice: with Queue zero, Write fails with
// ErrDisconnected; with Queue positive, up to Queue messages wait and go
// out, in order, on the next connection, before the loop body gets it, and
// a message that does not fit is refused with ErrQueueFull. Every message
// refused or left queued when the loop stops is counted in Dropped and
// passed to OnDrop; none is lost without a word.
//
// A message whose connection failed while it was being written is queued
// again for the next one (when queueing), so the peer may get it twice.
//
// An Outbox is safe for concurrent use. Its zero value errs while
// disconnected.
type Outbox struct {
	// Queue is how many messages may wait for a connection.
	Queue int
	// OnDrop, if set, is called with each message dropped and why.
	OnDrop func(typ MessageType, p []byte, err error)

	mu       sync.Mutex
	conn     *Conn // nil while disconnected or flushing
	pending  []outMsg
	running  bool
	flushing bool
	stopErr  error
	dropped  int64
}

type outMsg struct {
	typ MessageType
	p   []byte
}

// Write sends a message on the current connection or, while there is none,
// queues it or fails, as Queue says. Before the loop has started, messages
// are queued too; after it has stopped, Write fails.
func (o *Outbox) Write(ctx context.Context, typ MessageType, p []byte) error {
	o.mu.Lock()
	if c := o.conn; c != nil && len(o.pending) == 0 && !o.flushing {
		o.mu.Unlock()
		err := c.Write(ctx, typ, p)
		if err == nil || ctx.Err() != nil || c.Err() == nil {
			return err
		}
		o.mu.Lock() // the connection ended under us: as if disconnected
		if o.conn == c {
			o.conn = nil
		}
	}
	defer o.mu.Unlock()
	return o.enqueueLocked(typ, p)
}

// Dropped returns how many messages the outbox has dropped in all.
func (o *Outbox) Dropped() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dropped
}

func (o *Outbox) enqueueLocked(typ MessageType, p []byte) error {
	if !o.running && o.stopErr != nil {
		return o.stopErr
	}
	if o.Queue <= 0 {
		return ErrDisconnected
	}
	if len(o.pending) >= o.Queue {
		o.dropLocked(typ, p, ErrQueueFull)
		return ErrQueueFull
	}
	o.pending = append(o.pending, outMsg{typ, append([]byte(nil), p...)})
	return nil
}

func (o *Outbox) dropLocked(typ MessageType, p []byte, err error) {
	o.dropped++
	if o.OnDrop != nil {
		o.OnDrop(typ, p, err)
	}
}

func (o *Outbox) start() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.running, o.stopErr = true, nil
}

// stop detaches the outbox from its loop; messages still queued are
// dropped, with why the loop stopped.
func (o *Outbox) stop(why error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if why == nil {
		why = errors.New("tether: reconnect loop ended")
	}
	o.running, o.conn, o.stopErr = false, nil, fmt.Errorf("tether: outbox stopped: %w", why)
	for _, m := range o.pending {
		o.dropLocked(m.typ, m.p, o.stopErr)
	}
	o.pending = nil
}

// attach sends the queued messages on c, then makes c the connection.
// When c fails meanwhile, the message being written stays first in line.
func (o *Outbox) attach(ctx context.Context, c *Conn) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.flushing = true
	defer func() { o.flushing = false }()
	for len(o.pending) > 0 {
		m := o.pending[0]
		o.mu.Unlock()
		err := c.Write(ctx, m.typ, m.p)
		o.mu.Lock()
		if err != nil {
			return
		}
		o.pending[0] = outMsg{}
		o.pending = o.pending[1:]
	}
	o.conn = c
}

func (o *Outbox) detach(c *Conn) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.conn == c {
		o.conn = nil
	}
}
