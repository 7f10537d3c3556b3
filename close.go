package tether

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"time"

	"github.com/tetherws/tether/internal/clock"
	"github.com/tetherws/tether/internal/wire"
)

// Close performs the closing handshake (RFC 6455 section 7): it sends a close
// frame with code and reason, waits up to CloseTimeout for the peer's, then
// closes the TCP connection. It returns nil when the peer answered, an error
// otherwise. Close is safe to call while a message is being written: the
// close frame goes out between fragments and later writes fail.
func (c *Conn) Close(code StatusCode, reason string) error { return c.close(code, reason) }

func (c *conn) close(code StatusCode, reason string) error {
	if code != StatusNoStatus && !wire.ValidCloseCode(uint16(code)) {
		return fmt.Errorf("tether: close code %d may not be sent", code)
	}
	if c.isDone() {
		return c.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.closeTimeout)
	defer cancel()
	first, err := c.sendClose(ctx, code, reason)
	if err != nil {
		// The close frame could not go out (a write blocked the socket
		// past CloseTimeout): still the end decided here.
		c.finish(c.decidedEnd("closed without handshake", err))
		c.closeNow()
		return err
	}
	if !first {
		c.waitRead()
		return errors.New("tether: connection already closing")
	}
	t := c.closeTimer(code, reason)
	if c.inHandle.Load() {
		// Serve's handle is running, maybe on the read loop, which reads
		// the peer's close frame once it returns: waiting here could wait
		// forever. The timer above still bounds the handshake.
		return nil
	}
	c.waitReadDone()
	t.Stop()
	c.closeMu.Lock()
	rcvd := c.rcvd
	c.closeMu.Unlock()
	if rcvd == nil {
		return fmt.Errorf("tether: no close frame received within %v: %w", c.cfg.closeTimeout, c.err)
	}
	return nil
}

// closeTimer drops TCP if the closing handshake begun with code and reason
// has not ended within CloseTimeout.
func (c *conn) closeTimer(code StatusCode, reason string) clock.Timer {
	return c.cfg.clock.AfterFunc(c.cfg.closeTimeout, func() {
		c.finish(&CloseError{Code: code, Reason: reason, Initiator: "local", Sent: &CloseFrame{code, reason},
			Err: errors.New("close handshake timed out")})
		c.nc.Close()
	})
}

// closeNoWait begins the closing handshake and returns: the read loop ends
// it when the peer's close frame comes, the timer after CloseTimeout. It is
// Close for code that may run on the read loop itself.
func (c *conn) closeNoWait(code StatusCode, reason string) {
	if c.isDone() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.closeTimeout)
	first, err := c.sendClose(ctx, code, reason)
	cancel()
	switch {
	case err != nil:
		c.finish(c.decidedEnd("closed without handshake", err))
		c.nc.Close()
	case first:
		c.closeTimer(code, reason)
	}
}

// CloseNow closes the TCP connection at once, without a closing handshake.
// On a connection that failed (a message too big, invalid UTF-8, a protocol
// error) it instead waits, at most CloseTimeout, while the reader discards
// what the peer still sends: closing under unread bytes would answer them
// with a reset, and the peer would lose the close frame that says why.
func (c *Conn) CloseNow() error { return c.closeNow() }

func (c *conn) closeNow() error {
	c.finish(&CloseError{Code: StatusAbnormal, Reason: "closed without handshake", Initiator: "local"})
	// A keepalive timeout's close frame may be on its way: wait for it. (A
	// mutex, not a WaitGroup: abort may begin while this waits, which a
	// WaitGroup at zero does not allow.)
	c.aborting.Lock()
	//lint:ignore SA2001 the lock is the wait for abort's close frame
	c.aborting.Unlock()
	if c.lingering.Load() {
		// A failed connection's read loop is discarding what the peer
		// still sends so that it reads our close frame, not a reset: it
		// closes the socket itself, within CloseTimeout.
		c.waitRead()
		return nil
	}
	err := c.nc.Close()
	c.waitRead()
	return err
}

// waitRead waits for the read loop to end, unless Serve's handle is running:
// it may be running on the read loop itself.
func (c *conn) waitRead() {
	if !c.inHandle.Load() {
		c.waitReadDone()
	}
}

// waitReadDone waits for the read loop to end.
func (c *conn) waitReadDone() {
	c.closeMu.Lock()
	if c.readOver {
		c.closeMu.Unlock()
		return
	}
	if c.readDone == nil {
		c.readDone = make(chan struct{})
	}
	ch := c.readDone
	c.closeMu.Unlock()
	<-ch
}

// readEnded reports whether the read loop is over.
func (c *conn) readEnded() bool {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	return c.readOver
}

// endRead records the end of the read loop and wakes its waiters.
func (c *conn) endRead() {
	c.closeMu.Lock()
	c.readOver = true
	if c.readDone != nil {
		close(c.readDone)
	}
	c.closeMu.Unlock()
}

// doneChan returns the channel Done returns, closed when the connection has
// finished, made by the first caller: most connections end without anyone
// waiting on one.
func (c *conn) doneChan() <-chan struct{} {
	if c.doneState.Load()&doneMade != 0 {
		return c.done
	}
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.isDone() {
			close(c.done)
		}
		c.doneState.Or(doneMade) // after done: whoever sees it set sees done
	}
	return c.done
}

// closingChan returns a channel closed once the close frame is queued.
func (c *conn) closingChan() <-chan struct{} {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closing == nil {
		c.closing = make(chan struct{})
		if c.sent != nil {
			close(c.closing)
		}
	}
	return c.closing
}

// sendClose writes a close frame unless one was sent already; first reports
// whether this call sent it.
func (c *conn) sendClose(ctx context.Context, code StatusCode, reason string) (first bool, err error) {
	reason = wire.TruncateReason(reason)
	c.closeMu.Lock()
	if c.sent != nil {
		c.closeMu.Unlock()
		return false, nil
	}
	c.sent = &CloseFrame{Code: code, Reason: reason}
	if c.closing != nil {
		close(c.closing)
	}
	c.closeMu.Unlock()
	var buf [wire.MaxControlPayload]byte
	p := wire.AppendClose(buf[:0], uint16(code), reason)
	if err := c.acquireAlways(ctx, &c.frameSem); err != nil {
		return true, err
	}
	defer c.releaseFrame()
	c.closeSent.Store(true)
	err = c.writeControlLocked(ctx, wire.OpClose, p)
	c.madeRoom() // a stalled engine connection reads on, for the peer's close frame
	return true, err
}

// acquireAlways takes a semaphore even after the connection has finished, for
// the close frame that says why.
func (c *conn) acquireAlways(ctx context.Context, sem *sema) error {
	if sem.tryAcquire() {
		return nil
	}
	if err := sem.acquire(ctx, nil); err != nil {
		return ctx.Err()
	}
	return nil
}

// handleClose answers the peer's close frame and ends the connection.
func (c *conn) handleClose(p []byte) {
	code, reason, err := wire.ParseClose(p)
	if err != nil {
		c.fail(err, 0)
		return
	}
	rcvd := &CloseFrame{Code: StatusCode(code), Reason: reason}
	c.closeMu.Lock()
	c.rcvd = rcvd
	sent := c.sent
	c.closeMu.Unlock()
	ce := &CloseError{Code: rcvd.Code, Reason: reason, Initiator: "peer", Rcvd: rcvd}
	if sent != nil {
		ce.Code, ce.Reason, ce.Initiator, ce.Sent = sent.Code, sent.Reason, "local", sent
	} else {
		// If the echo cannot be written (the peer may have closed TCP
		// right after its frame: the event engine then has no socket
		// left to write to), the end is still the peer's: decidedEnd.
		c.doneState.Or(donePeerClose)
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.closeTimeout)
		c.sendClose(ctx, rcvd.Code, reason) // echo the code (section 5.5.1)
		cancel()
		c.closeMu.Lock()
		ce.Sent = c.sent
		c.closeMu.Unlock()
	}
	c.finish(ce)
	c.closeTCP()
}

// closeTCP ends the TCP connection after the closing handshake. The server
// closes first (section 7.1.1); a client waits up to CloseTimeout for it.
func (c *conn) closeTCP() {
	if c.role == wire.Client {
		c.nc.SetReadDeadline(time.Now().Add(c.cfg.closeTimeout))
		c.drain()
	}
	c.nc.Close()
}

// drain reads and discards until the peer closes or the read deadline
// passes, so the peer gets our last frames instead of a reset.
func (c *conn) drain() { c.discard(math.MaxInt64) }

// fail fails the connection on a protocol violation (section 7.1.7): it sends
// a close frame with the error's code, wakes every waiter, and closes TCP
// once the peer has had the chance to read the frame (linger). left is what
// remains unread of the current frame's payload, -1 when the stream can no
// longer be parsed.
func (c *conn) fail(err error, left int64) {
	var pe *wire.ProtocolError
	if !errors.As(err, &pe) {
		pe = &wire.ProtocolError{Code: wire.CloseInternalError, Reason: err.Error()}
	}
	code := StatusCode(pe.Code)
	c.log.Warn("failing connection", "code", int(code), "error", pe.Reason)
	reason := pe.Reason
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	c.sendClose(ctx, code, reason)
	cancel()
	c.closeMu.Lock()
	sent := c.sent
	c.closeMu.Unlock()
	// Set before finish wakes the application, whose CloseNow must not
	// cut the lingering short.
	c.lingering.Store(true)
	c.finish(&CloseError{Code: code, Reason: reason, Initiator: "local", Sent: sent, Err: err})
	if tc, ok := c.nc.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	}
	c.linger(left)
	c.nc.Close()
}

// linger reads and discards, for at most CloseTimeout, what the peer still
// sends after a failure: closing a socket with unread bytes makes the kernel
// answer with a reset, which can destroy our close frame on its way and
// fails the peer's writes. A server stops at the peer's close frame, since
// it closes TCP first (section 7.1.1); a client waits for the server's EOF.
func (c *conn) linger(left int64) {
	c.nc.SetReadDeadline(time.Now().Add(c.cfg.closeTimeout))
	if c.role == wire.Server && left >= 0 && c.skipToClose(left) {
		return
	}
	c.drain()
}

// skipToClose discards left bytes, then whole frames up to and including
// the peer's close frame; it reports whether it is done with the stream
// (close frame, EOF, deadline) rather than lost in it (a header it cannot
// decode, after which only a raw drain is left).
func (c *conn) skipToClose(left int64) bool {
	for {
		if err := c.discard(left); err != nil {
			return true
		}
		h, err := c.readHeader()
		var pe *wire.ProtocolError
		switch {
		case errors.As(err, &pe):
			return false
		case err != nil:
			return true
		case h.Opcode == wire.OpClose:
			c.discard(h.Length) // all of it: an unread byte would still reset
			return true
		}
		left = h.Length
	}
}

// discard reads and drops n bytes.
func (c *conn) discard(n int64) error {
	var buf [512]byte
	for n > 0 {
		k, err := c.br.Read(buf[:min(n, int64(len(buf)))])
		n -= int64(k)
		if err != nil {
			return err
		}
	}
	return nil
}

// abort ends the connection at once after sending a close frame on a short
// deadline, for a peer presumed dead: no waiting for its close frame.
//
// The end is recorded first, so every waiter gets this code and reason; the
// close frame goes out next, and closeNow waits for that attempt, so an
// application that reacts to the error by closing the socket cannot cut the
// frame off.
func (c *conn) abort(code StatusCode, reason string) {
	c.aborting.Lock()
	defer c.aborting.Unlock()
	c.finish(&CloseError{Code: code, Reason: reason, Initiator: "local", Sent: &CloseFrame{code, reason}})
	// A writer stuck in the middle of a frame on a full socket leaves no
	// room for a close frame: then closing the socket is all that is left,
	// and it frees the writer at once.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	err := c.acquireAlways(ctx, &c.frameSem)
	cancel()
	if err == nil {
		c.frameSem.release()
		ctx, cancel = context.WithTimeout(context.Background(), 250*time.Millisecond)
		c.sendClose(ctx, code, reason)
		cancel()
	}
	c.nc.Close()
}

// writeFailed ends the connection after a failed write.
func (c *conn) writeFailed(err error) {
	c.finish(c.decidedEnd("write failed", err))
	c.nc.Close()
}

// decidedEnd is the end of a connection that could not close properly: the
// close this end decided (Close, a hub's slow-consumer policy), when one
// was, even if its frame was stuck behind a blocked write whose failure
// ends the connection, since that is why it ended; the peer's close when
// ours was only its echo; otherwise 1006 with reason.
func (c *conn) decidedEnd(reason string, err error) *CloseError {
	if c.doneState.Load()&donePeerClose != 0 {
		c.closeMu.Lock()
		rcvd, sent := c.rcvd, c.sent
		c.closeMu.Unlock()
		return &CloseError{Code: rcvd.Code, Reason: rcvd.Reason, Initiator: "peer", Rcvd: rcvd, Sent: sent, Err: err}
	}
	c.closeMu.Lock()
	decided := c.sent
	c.closeMu.Unlock()
	if decided == nil {
		return &CloseError{Code: StatusAbnormal, Reason: reason, Initiator: "local", Err: err}
	}
	return &CloseError{Code: decided.Code, Reason: decided.Reason, Initiator: "local", Err: err}
}

// finish records how the connection ended, wakes everyone waiting on it and
// logs it, once.
func (c *conn) finish(ce *CloseError) {
	c.finishMu.Do(func() {
		ce.at = c.cfg.clock.Now()
		c.err = ce
		c.closeMu.Lock()
		c.doneState.Or(doneFinished) // after err: isDone says err is set
		if c.done != nil {
			close(c.done)
		}
		c.closeMu.Unlock()
		c.stopKeepalive()
		c.unbindWrite()
		c.slot.release()
		if c.cfg.registry != nil {
			c.cfg.registry.remove(c, ce)
		}
		if c.log.Enabled(context.Background(), slog.LevelInfo) {
			c.log.Info("connection closed", "code", int(ce.Code), "reason", ce.Reason,
				"duration", c.cfg.clock.Now().Sub(c.opened()), "initiator", ce.Initiator)
		}
		if ce.Err != nil && !errors.Is(ce.Err, net.ErrClosed) && c.log.Enabled(context.Background(), slog.LevelDebug) {
			c.log.Debug("connection error", "error", ce.Err)
		}
	})
}

// leaked runs when the application dropped its *Conn without closing it: it
// says so, with the place the connection was opened, and frees the socket.
func (c *conn) leaked() {
	if c.isDone() {
		return
	}
	c.log.Error("connection leaked", "call_site", c.callSite.String(),
		"hint", "the *Conn became unreachable without Close or CloseNow")
	c.finish(&CloseError{Code: StatusAbnormal, Reason: "connection leaked", Initiator: "local"})
	c.nc.Close()
}
