package tether

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/tetherws/tether/internal/wire"
)

// ErrReadConflict is returned by Read and Reader while Serve runs, and by
// Serve while another Serve, a Read or a Reader is in progress: a
// connection's messages go to one consumer at a time.
var ErrReadConflict = errors.New("tether: Serve cannot run alongside Read, Reader or another Serve")

// serving is added to conn.readState while Serve runs; Read and Reader add 1
// while they wait, so a negative state refuses them and a non-zero one
// refuses Serve.
const serving = -1 << 40

// server is one call of Serve or Go: the handler the read loop calls.
type server struct {
	handle func(MessageType, []byte) error
	err    error         // handle's first error; set under conn.handleMu
	failed chan struct{} // Serve: closed when err is set

	// Go: done is called when serving ends; owner keeps the *Conn
	// reachable while the connection serves itself, so it is not taken
	// for leaked; ended says endBackground ran.
	background bool
	done       func(error)
	owner      *Conn
	ended      atomic.Bool
}

// Serve calls handle for each message the connection receives, in order, one
// at a time, until the connection ends, handle fails or ctx is done. It is
// the fast way to read: no allocation per message. handle is called as soon
// as a message is complete (messages queued before Serve was called go
// first), and p is a pooled buffer that is reused once handle returns: copy
// what must outlive the call. handle may call Write, Writer, Ping, Close and
// CloseNow.
//
// Under the event engine (Engine), handle runs on a worker goroutine, and
// while it runs the connection goes on reading: it answers pings, takes
// pongs and queues the messages that come, up to ReadAhead, then stops
// reading until handle catches up, with keepalive's ping timeout suspended
// meanwhile (the peer is not at fault). On a reader goroutine (TLS, pipes,
// EngineGoroutine), handle runs on that goroutine, and while it runs the
// connection reads nothing more, as with gorilla's ReadMessage loop or gws's
// OnMessage: pings wait for their pongs, keepalive pongs are not seen (a
// handle call blocked past PingTimeout fails the connection with 1011). In
// both, a peer's close frame takes effect after every message received
// before it has been handled. A Close called while handle runs sends the
// close frame and returns nil without waiting for the peer's; Serve returns
// once the handshake is over.
//
// Serve returns the connection's *CloseError when it ends, as Read does. When
// handle returns an error, Serve closes the connection and returns that
// error: with the code and reason of a *CloseError it holds (errors.As, a code
// that may be sent), otherwise with 1011 (StatusInternalError) and reason
// "internal error", so the error's text does not reach the peer; data that
// arrives while closing is discarded. When ctx is done, Serve waits for a
// handle call in progress, returns ctx.Err() and leaves the connection open:
// later messages wait for Read, Reader or the next Serve.
//
// Serve cannot be used alongside Read, Reader or another Serve on the same
// connection; it returns ErrReadConflict, and they return it while Serve runs.
func (c *Conn) Serve(ctx context.Context, handle func(typ MessageType, p []byte) error) error {
	if handle == nil {
		return errors.New("tether: Serve with a nil handle")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s := &server{handle: handle, failed: make(chan struct{})}
	if !c.install(s) {
		return ErrReadConflict
	}
	defer c.readState.Add(-serving)
	select {
	case <-s.failed:
		// s stays installed while closing, so data that still comes is
		// discarded, not queued.
		code, reason := handleErrorClose(s.err)
		c.close(code, reason)
		c.stopServing(s)
		return s.err
	case <-c.doneChan():
		c.stopServing(s)
		if s.err != nil {
			return s.err
		}
		return c.err
	case <-ctx.Done():
		c.stopServing(s)
		if s.err != nil {
			return s.err
		}
		return ctx.Err()
	}
}

// Go serves the connection in the background: it calls handle for each
// message as Serve does, and returns at once. It is the way to serve many
// connections: an HTTP handler that calls Accept and then Go can return,
// and net/http frees the request, its buffers and its goroutine, so an idle
// connection holds only its own state (and, on a reader goroutine, that
// goroutine): handle runs on a worker goroutine started while the
// connection has messages to handle. Keep the request's context out of
// handle: net/http cancels it when the handler returns.
//
// Everything Serve says about handle holds: messages in order, one at a
// time, queued ones first; p valid only during the call; handle may call
// Write, Writer, Ping, Close and CloseNow; an error from handle closes the
// connection with 1011 "internal error" (or a *CloseError's code and reason)
// and handle is not called again.
//
// done, if not nil, is called once when serving ends, with what Serve would
// have returned: handle's error, or else the connection's *CloseError. It
// runs after the connection has ended (before Go returns if it had already
// ended), so it may call CloseNow and need not.
// There is no context: serving ends with the connection.
//
// Go returns ErrReadConflict, and serves nothing, while a Read, Reader or
// Serve is in progress; Read, Reader and Serve return it while Go serves.
func (c *Conn) Go(handle func(typ MessageType, p []byte) error, done func(err error)) error {
	if handle == nil {
		return errors.New("tether: Go with a nil handle")
	}
	s := &server{handle: handle, background: true, done: done, owner: c}
	if !c.install(s) {
		return ErrReadConflict
	}
	if c.readEnded() {
		// The read loop ended before it could see s: end here. (It looks
		// for s after endRead, so one of us sees the other.)
		c.endBackground(s)
	}
	return nil
}

// install makes s the connection's server, unless a Read, Reader, Serve or
// Go holds the connection, and hands it the messages queued before; the
// caller undoes it with readState.Add(-serving).
func (c *conn) install(s *server) bool {
	if !c.readState.CompareAndSwap(0, serving) {
		return false
	}
	c.wholeReads.Store(false) // assemble in pooled buffers
	c.srv.Store(s)
	c.serveQueued(s)
	return true
}

// endBackground ends Go's serving once the read loop is over: messages
// queued before the end go to handle, then s is uninstalled and done is
// called. It runs once, from whichever of the read loop and Go sees the end.
func (c *conn) endBackground(s *server) {
	if !s.ended.CompareAndSwap(false, true) {
		return
	}
	c.handleMu.Lock()
	c.handleQueuedLocked(s)
	c.srv.CompareAndSwap(s, nil)
	c.handleMu.Unlock()
	c.readState.Add(-serving)
	err := s.err
	if err == nil {
		err = c.err
	}
	done := s.done
	s.done, s.owner = nil, nil
	if done != nil {
		done(err)
	}
}

// failBackground closes the connection after handle failed under Go, as
// Serve does after it returned an error, but without waiting: it may run on
// the read loop, which reads the peer's answer once it returns.
func (c *conn) failBackground(err error) {
	code, reason := handleErrorClose(err)
	c.closeNoWait(code, reason)
}

// stopServing uninstalls s once the handle call in progress, if any, has
// returned; messages from then on wait in the queue.
func (c *conn) stopServing(s *server) {
	c.handleMu.Lock()
	c.srv.CompareAndSwap(s, nil)
	if c.isDone() {
		// Messages received before the end go to handle, as Read would
		// still return them.
		c.handleQueuedLocked(s)
	}
	c.handleMu.Unlock()
}

// handleErrorClose is the close frame for an error returned by handle.
func handleErrorClose(err error) (StatusCode, string) {
	var ce *CloseError
	if errors.As(err, &ce) && wire.ValidCloseCode(uint16(ce.Code)) {
		return ce.Code, ce.Reason
	}
	return StatusInternalError, "internal error"
}

// dispatch hands a received message to Serve's handle, or to the queue Read
// takes from. It reports whether to keep reading.
func (c *conn) dispatch(m message) bool {
	c.stats.messagesIn.Add(1)
	c.stats.bytesIn.Add(int64(len(m.p)))
	if s := c.srv.Load(); s != nil && c.serveMessage(s, m) {
		return true
	}
	if !c.deliver(m) {
		return false
	}
	// Serve may have started between the check above and the queueing: it
	// takes the queue itself, but if it looked before m was in, m is ours.
	if s := c.srv.Load(); s != nil {
		c.serveQueued(s)
	}
	return true
}

// serveMessage calls s's handle with the queued messages, then m. It reports
// false, leaving m alone, if s stopped serving meanwhile.
func (c *conn) serveMessage(s *server, m message) bool {
	c.handleMu.Lock()
	defer c.handleMu.Unlock()
	if c.srv.Load() != s {
		return false
	}
	c.handleQueuedLocked(s)
	c.callHandle(s, m)
	return true
}

// serveQueued hands every queued message to s, if s still serves.
func (c *conn) serveQueued(s *server) {
	c.handleMu.Lock()
	defer c.handleMu.Unlock()
	if c.srv.Load() == s {
		c.handleQueuedLocked(s)
	}
}

func (c *conn) handleQueuedLocked(s *server) {
	q := c.msgs.Load()
	if q == nil {
		return // nothing was ever queued (dispatch queues before it looks for s)
	}
	q.drainTo(func(m message) {
		c.callHandle(s, m)
		c.madeRoom()
	})
}

// callHandle calls handle with m, unless an earlier call failed, and then
// recycles m's buffer. The caller holds handleMu.
func (c *conn) callHandle(s *server, m message) {
	if s.err == nil {
		c.inHandle.Store(true)
		err := s.handle(m.typ, m.p)
		c.inHandle.Store(false)
		if err != nil {
			s.err = err
			if s.background {
				c.failBackground(err)
			} else {
				close(s.failed)
			}
		}
	}
	m.recycle()
}
