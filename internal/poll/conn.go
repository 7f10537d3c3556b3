package poll

import (
	"context"
	"sync"
	"sync/atomic"
)

// Handler receives a connection's events. Its methods run on the
// connection's loop, one at a time, and must not block: while one runs,
// no other connection of that loop is served.
type Handler interface {
	// OnData is called with bytes read from the connection. p is the
	// loop's buffer, valid only during the call: copy what you keep.
	OnData(c *Conn, p []byte)
	// OnClose is called once, after the descriptor is closed: with io.EOF
	// when the peer closed, an *os.SyscallError for a failed read or write
	// (errors.Is(err, syscall.ECONNRESET) on a reset), ErrClosed after
	// Close or CloseNow, ErrEngineClosed when the engine shut down.
	OnClose(c *Conn, err error)
}

// Drainer is implemented by Handlers that want to know when a connection's
// write queue has been flushed to the socket (OnDrain runs on the loop).
// It is not called for writes that went straight to the socket.
type Drainer interface {
	OnDrain(c *Conn)
}

// Conn is an adopted connection. Its methods may be called from any
// goroutine, the loop's callbacks included, except where noted.
type Conn struct {
	// The fields are ordered so that the struct fills a 128-byte size
	// class: it is most of what an idle connection costs.
	l        *loop
	h        Handler
	leftover *[]byte // loop: bytes read before adoption, not yet delivered

	fd          int32
	paused      atomic.Bool
	closing     atomic.Bool // closed or about to be: read no more
	hasLeftover atomic.Bool
	gone        bool   // loop: closed
	shutWrite   bool   // under mu: CloseWrite was called; FIN once the queue is empty
	ops         connOp // under l.pmu: work asked of the loop

	mu         sync.Mutex // guards what follows, and every system call but reads
	state      connState
	registered bool     // the loop has taken it in (attach)
	armed      interest // what the poller watches; 0: not in the poller
	out        queue    // bytes waiting for the socket (write.go)
	room       chan struct{}
	err        error // why it ends: the first failure, or ErrClosed
}

type connState uint8

const (
	stateOpen     connState = iota
	stateDraining           // Close called: flush, then close
	stateClosing            // close asked of the loop
	stateClosed             // descriptor closed
)

func newConn(l *loop, fd int, h Handler, leftover []byte) *Conn {
	c := &Conn{l: l, h: h, fd: int32(fd)}
	if len(leftover) > 0 {
		b := append([]byte(nil), leftover...)
		c.leftover = &b
		c.hasLeftover.Store(true)
	}
	return c
}

// PauseRead stops reading: the descriptor's read interest is removed, so
// unread bytes stay in the socket and TCP pushes back on the peer. From
// OnData, no further read is made for this event.
func (c *Conn) PauseRead() {
	c.mu.Lock()
	c.paused.Store(true)
	c.updateInterest()
	c.mu.Unlock()
}

// ResumeRead undoes PauseRead; bytes waiting in the socket are reported at
// once (level-triggered), a leftover held back is delivered first.
func (c *Conn) ResumeRead() {
	c.mu.Lock()
	c.paused.Store(false)
	c.updateInterest()
	c.mu.Unlock()
	if c.hasLeftover.Load() {
		c.l.enqueue(c, opResume)
	}
}

// Unread gives back p, the unused end of the bytes OnData got, to be
// delivered again, first, when reading goes on: a handler that pauses
// reading in the middle of a read keeps its place. It may only be called
// from OnData, and copies p.
func (c *Conn) Unread(p []byte) {
	if len(p) == 0 {
		return
	}
	b := append([]byte(nil), p...)
	if c.leftover != nil {
		b = append(b, *c.leftover...)
	}
	c.leftover = &b
	c.hasLeftover.Store(true)
	if !c.paused.Load() {
		c.l.enqueue(c, opResume)
	}
}

// Paused reports whether reading is paused.
func (c *Conn) Paused() bool { return c.paused.Load() }

// Close closes the connection once its queued bytes are written; Writes
// fail with ErrClosed from now on. A peer that never reads keeps it open:
// bound the wait with a timer and CloseNow. It returns ErrClosed if the
// connection was already closing.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateOpen {
		return ErrClosed
	}
	c.setErr(ErrClosed)
	if c.out.n > 0 {
		c.state = stateDraining
		c.wakeWriters()
		return nil
	}
	c.closeLocked()
	return nil
}

// CloseWrite shuts the sending side down (the peer reads EOF) once the
// queued bytes are written; reading goes on. Writes fail with ErrClosed
// from now on.
func (c *Conn) CloseWrite() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateOpen || c.shutWrite {
		return ErrClosed
	}
	c.shutWrite = true
	if c.out.n == 0 {
		return sysShutdownWrite(int(c.fd))
	}
	return nil
}

// CloseNow closes the connection without writing what is queued.
func (c *Conn) CloseNow() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state >= stateClosing {
		return ErrClosed
	}
	c.setErr(ErrClosed)
	c.closeLocked()
	return nil
}

// closeLocked asks the loop to close c; c.mu is held.
func (c *Conn) closeLocked() {
	c.state = stateClosing
	c.closing.Store(true)
	c.wakeWriters()
	c.l.enqueue(c, opClose)
}

// fail records err, the connection's end, and has the loop close it;
// c.mu is held.
func (c *Conn) fail(err error) {
	c.setErr(err)
	if c.state < stateClosing {
		c.closeLocked()
	}
}

func (c *Conn) setErr(err error) {
	if c.err == nil {
		c.err = err
	}
}

// Post runs f on c's loop, after what the loop is doing now. It waits while
// the loop's task queue is full, so it must not be called from the loop
// itself (where f can simply be called).
func (c *Conn) Post(ctx context.Context, f func()) error { return c.l.post(ctx, f) }

// wanted is the interest c's state calls for; c.mu is held.
func (c *Conn) wanted() interest {
	var in interest
	if !c.paused.Load() {
		in |= wantRead
	}
	if c.out.n > 0 {
		in |= wantWrite
	}
	return in
}

// updateInterest brings the poller in line with c's state; c.mu is held.
// Until the loop has registered c it does nothing: attach reads the state.
func (c *Conn) updateInterest() {
	if !c.registered || c.state == stateClosed {
		return
	}
	in := c.wanted()
	if in == c.armed {
		return
	}
	var err error
	switch {
	case c.armed == 0:
		err = c.l.p.add(int(c.fd), in)
	case in == 0:
		err = c.l.p.del(int(c.fd), c.armed)
	default:
		err = c.l.p.mod(int(c.fd), c.armed, in)
	}
	if err != nil {
		c.fail(err)
		return
	}
	c.armed = in
}

// attach registers c with the poller, on the loop.
func (c *Conn) attach() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.registered = true
	c.updateInterest()
	if c.state == stateClosing && c.err != ErrClosed {
		return c.err
	}
	return nil
}

// shut closes the descriptor, on the loop, and returns why c ended.
func (c *Conn) shut(why error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.armed != 0 {
		c.l.p.del(int(c.fd), c.armed) // before close(2): the poller forgets it
		c.armed = 0
	}
	sysClose(int(c.fd))
	c.state = stateClosed
	c.setErr(why)
	c.l.queued.Add(-int64(c.out.n))
	c.out.reset()
	c.wakeWriters()
	return c.err
}
