package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tetherws/tether/internal/wire"
)

// Run runs one load test against cfg.URLs and returns what it measured. It
// fails at once, with a *LimitError, when the run needs more open files than
// this process may have; errors met during the run (refused dials, close
// frames, lost connections) are counted in the result instead.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := CheckOpenFiles(cfg.Conns, cfg.Files(), OpenFileLimit()); err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, lat: newRecorder(), stop: make(chan struct{}), full: make(chan struct{})}
	for _, u := range cfg.URLs {
		t, _ := parseTarget(u)
		r.targets = append(r.targets, t)
	}
	var err error
	switch cfg.Mode {
	case Echo:
		err = r.echo(ctx)
	case Idle:
		err = r.idle(ctx)
	case Handshake:
		err = r.handshakes(ctx)
	case Broadcast:
		err = r.broadcast(ctx)
	}
	if err != nil {
		return nil, err
	}
	return r.result(), nil
}

// run is the state of one Run.
type run struct {
	cfg     Config
	targets []*target
	bseq    atomic.Uint64 // broadcast sequence numbers

	lat       *recorder
	errs      errorCounts
	measuring atomic.Bool
	stopped   atomic.Bool
	stop      chan struct{} // closed when the window ends
	full      chan struct{} // closed when Messages are counted
	fullOnce  sync.Once
	done      atomic.Int64 // replies, handshakes or broadcasts in the window
	window    time.Duration
	connected int
	connectT  time.Duration
	pings     atomic.Int64
	// windowPings counts the pings received in the measured window.
	windowPings atomic.Int64
	ext         atomic.Pointer[string]
	toLastMu    sync.Mutex
	toLast      []float64
}

// count records one completed exchange and its latency, when measuring.
func (r *run) count(shard int, lat time.Duration) {
	if !r.measuring.Load() {
		return
	}
	if r.cfg.Messages == 0 {
		r.done.Add(1)
		r.lat.record(shard, lat)
		return
	}
	for { // count exactly Messages, however many goroutines race for the last
		n := r.done.Load()
		if n >= r.cfg.Messages {
			return
		}
		if r.done.CompareAndSwap(n, n+1) {
			r.lat.record(shard, lat)
			if n+1 == r.cfg.Messages {
				r.fullOnce.Do(func() { close(r.full) })
			}
			return
		}
	}
}

func (r *run) event(name string) {
	if r.cfg.OnEvent != nil {
		r.cfg.OnEvent(name)
	}
}

// target returns the server of connection i.
func (r *run) target(i int) *target {
	return r.targets[(r.cfg.ConnOffset+i)%len(r.targets)]
}

func (r *run) dial(ctx context.Context, i int) (*wsConn, error) {
	dctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	c, err := dial(dctx, r.target(i), &r.cfg)
	if err != nil {
		return nil, err
	}
	c.counted = r
	if c.ext != "" {
		r.ext.CompareAndSwap(nil, &c.ext)
	}
	return c, err
}

// connectAll opens n connections, DialConcurrency at a time; failures are
// counted and leave a nil in their place.
func (r *run) connectAll(ctx context.Context, n int) []*wsConn {
	t0 := time.Now()
	conns := make([]*wsConn, n)
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range min(n, r.cfg.DialConcurrency) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				c, err := r.dial(ctx, i)
				if err != nil {
					r.errs.add(dialErrorKey(err))
					continue
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	r.connectT = time.Since(t0)
	for _, c := range conns {
		if c != nil {
			r.connected++
		}
	}
	r.event("connected")
	return conns
}

// measure runs the warm-up and the measured window, then closes r.stop.
func (r *run) measure(ctx context.Context) {
	defer func() {
		r.stopped.Store(true)
		close(r.stop)
	}()
	if r.cfg.Warmup > 0 {
		select {
		case <-time.After(r.cfg.Warmup):
		case <-ctx.Done():
			return
		}
	}
	r.measuring.Store(true)
	r.event("measure")
	t0 := time.Now()
	var end <-chan time.Time
	if r.cfg.Duration > 0 {
		end = time.After(r.cfg.Duration)
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		select {
		case <-end:
			break loop
		case <-r.full:
			break loop
		case <-ctx.Done():
			break loop
		case <-tick.C:
			if r.cfg.OnProgress != nil {
				r.cfg.OnProgress(r.done.Load())
			}
		}
	}
	r.measuring.Store(false)
	r.window = time.Since(t0)
	r.event("done")
}

// connErr counts how a connection ended, unless the run ended it.
func (r *run) connErr(c *wsConn, err error) {
	var ce *CloseError
	switch {
	case errors.As(err, &ce) && c.initiated.Load() && (ce.Code == 1000 || ce.Code == 1005):
	case errors.As(err, &ce):
		r.errs.add(fmt.Sprintf("close %d", ce.Code))
	case errors.Is(err, errDeadline):
		r.errs.add("timeout")
	case errors.Is(err, net.ErrClosed) && r.stopped.Load():
	default:
		r.errs.add(shortError("connection", err))
	}
}

// finish bounds the goroutines still waiting on connections: every read
// after this fails within Timeout.
func (r *run) finish(conns []*wsConn) {
	dl := time.Now().Add(r.cfg.Timeout)
	for _, c := range conns {
		if c != nil {
			c.nc.SetReadDeadline(dl)
		}
	}
}

func (r *run) echo(ctx context.Context) error {
	conns := r.connectAll(ctx, r.cfg.Conns)
	if r.connected == 0 {
		return r.noConnections()
	}
	payload := Payload(r.cfg.Size)
	op := wire.OpBinary
	if r.cfg.Text {
		op = wire.OpText
	}
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range conns {
		if c == nil {
			continue
		}
		frame, err := c.dataFrame(op, payload)
		if err != nil {
			return err
		}
		if r.cfg.Rate > 0 {
			wg.Go(func() { r.echoRate(i, c, frame, payload, start) })
		} else {
			wg.Go(func() { r.echoClosed(i, c, frame, payload) })
		}
	}
	r.measure(ctx)
	r.finish(conns)
	wg.Wait()
	r.pingsFrom(conns)
	return nil
}

// echoClosed sends the next message when the reply to the last one came.
func (r *run) echoClosed(i int, c *wsConn, frame, want []byte) {
	for !r.stopped.Load() {
		t0 := time.Now()
		if err := c.writeRaw(frame); err != nil {
			r.connErr(c, err)
			c.nc.Close()
			return
		}
		if !r.reply(i, c, want, t0) {
			return
		}
	}
	r.shutdown(c)
}

// shutdown ends a connection whose reader has stopped.
func (r *run) shutdown(c *wsConn) {
	if r.cfg.NoCloseHandshake {
		c.nc.Close()
		return
	}
	c.shutdown()
}

// reply reads one echo and counts it; false means the connection is over.
func (r *run) reply(i int, c *wsConn, want []byte, sent time.Time) bool {
	_, p, err := c.readMessage()
	if err != nil {
		r.connErr(c, err)
		c.nc.Close()
		return false
	}
	lat := time.Since(sent)
	if !bytes.Equal(p, want) {
		r.errs.add("echo differs from the message sent")
		return true
	}
	r.count(i, lat)
	return true
}

// echoRate sends on a fixed schedule and times each reply from the moment
// its message was due, not sent, so a stalled server shows in the latency
// (no coordinated omission).
func (r *run) echoRate(i int, c *wsConn, frame, want []byte, start time.Time) {
	iv := time.Duration(float64(time.Second) * float64(r.cfg.Conns) / r.cfg.Rate)
	due := make(chan time.Time, 4096)
	var rg sync.WaitGroup
	ok := atomic.Bool{}
	ok.Store(true)
	rg.Go(func() {
		for t := range due {
			if !r.reply(i, c, want, t) {
				ok.Store(false)
				for range due {
				}
				return
			}
		}
	})
	next := start.Add(iv * time.Duration(i) / time.Duration(r.cfg.Conns)) // stagger the connections
	timer := time.NewTimer(0)
	defer timer.Stop()
	for !r.stopped.Load() && ok.Load() {
		if d := time.Until(next); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-r.stop:
				continue
			}
		}
		due <- next
		if err := c.writeRaw(frame); err != nil {
			r.connErr(c, err)
			break
		}
		next = next.Add(iv)
	}
	close(due)
	rg.Wait()
	if ok.Load() {
		r.shutdown(c)
	} else {
		c.nc.Close()
	}
}

func (r *run) idle(ctx context.Context) error {
	conns := r.connectAll(ctx, r.cfg.Conns)
	if r.connected == 0 {
		return r.noConnections()
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		if c != nil {
			wg.Go(func() { r.drain(c) })
		}
	}
	r.measure(ctx)
	r.closeAll(conns)
	wg.Wait()
	r.pingsFrom(conns)
	return nil
}

// drain reads and drops messages until the connection ends.
func (r *run) drain(c *wsConn) {
	for {
		if _, _, err := c.readMessage(); err != nil {
			r.connErr(c, err)
			c.nc.Close()
			return
		}
	}
}

// closeAll starts the closing handshake on every connection whose reader
// then sees the server's close frame and ends.
func (r *run) closeAll(conns []*wsConn) {
	r.finish(conns)
	sem := make(chan struct{}, 256)
	var wg sync.WaitGroup
	for _, c := range conns {
		if c == nil {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if r.cfg.NoCloseHandshake {
				c.nc.Close()
			} else {
				c.sendClose(1000)
			}
		})
	}
	wg.Wait()
}

func (r *run) pingsFrom(conns []*wsConn) {
	for _, c := range conns {
		if c != nil {
			r.pings.Add(c.pings.Load())
		}
	}
}

func (r *run) handshakes(ctx context.Context) error {
	var (
		wg      sync.WaitGroup
		success atomic.Int64
	)
	r.connected = r.cfg.Conns
	r.event("connected")
	for w := range r.cfg.Conns {
		wg.Go(func() {
			for i := w; !r.stopped.Load(); i += r.cfg.Conns {
				t0 := time.Now()
				c, err := r.dial(ctx, i)
				if err != nil {
					if !r.stopped.Load() {
						r.errs.add(dialErrorKey(err))
						time.Sleep(10 * time.Millisecond) // do not spin on a refusing server
					}
					continue
				}
				r.count(w, time.Since(t0))
				success.Add(1)
				c.nc.SetReadDeadline(time.Now().Add(r.cfg.Timeout))
				r.shutdown(c)
			}
		})
	}
	r.measure(ctx)
	wg.Wait()
	if success.Load() == 0 {
		return r.noConnections()
	}
	return nil
}

// noConnections is the error of a run that could not open one connection.
func (r *run) noConnections() error {
	return fmt.Errorf("no connection could be opened to %s: %s", r.cfg.URLs[0], r.errs.String())
}

// errorCounts counts errors by kind.
type errorCounts struct {
	mu sync.Mutex
	m  map[string]int64
}

func (e *errorCounts) add(key string) {
	e.mu.Lock()
	if e.m == nil {
		e.m = map[string]int64{}
	}
	e.m[key]++
	e.mu.Unlock()
}

func (e *errorCounts) snapshot() map[string]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]int64, len(e.m))
	for k, v := range e.m {
		out[k] = v
	}
	return out
}

func (e *errorCounts) String() string {
	return formatErrors(e.snapshot())
}

// dialErrorKey names a failed dial or handshake by its cause, short enough
// to group thousands of them.
func dialErrorKey(err error) string {
	var he *HandshakeError
	if errors.As(err, &he) {
		return he.Error()
	}
	return shortError("dial", err)
}

func shortError(prefix string, err error) string {
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno):
		return prefix + ": " + errno.Error()
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return prefix + ": timeout"
	case errors.Is(err, context.Canceled):
		return prefix + ": cancelled"
	}
	return prefix + ": " + err.Error()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
