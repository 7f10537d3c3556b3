package tether

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// NetConn returns a net.Conn that carries a byte stream over c, to tunnel a
// protocol that wants one (SSH, a database's wire protocol, HTTP/1) through
// a WebSocket, as coder/websocket's NetConn does and Node ws's
// createWebSocketStream does on the other side. Each Write sends its bytes
// as one message of type typ; Read returns the bytes of the messages
// received, in order, across message boundaries. Nothing else may read c
// meanwhile; other code may still write to it.
//
//   - Read returns io.EOF once c has closed with 1000 (normal) or 1001 (going
//     away), from either side, and its *CloseError otherwise. A received
//     message of the other type is a broken stream: c is closed with 1003
//     (unsupported data) and Read fails.
//   - Close closes c with 1000 and waits for the closing handshake; it
//     returns nil when c ends with 1000 or 1001, whoever sent it first.
//   - ctx bounds the net.Conn's life: once it ends, c is closed with 1001
//     and calls fail with ctx's error. In an HTTP handler, the request's
//     context closes the connection when the handler returns.
//   - Deadlines work as on a TCP connection, on the wall clock (not
//     ConnOptions.Clock): once one passes, blocked and later calls fail
//     with os.ErrDeadlineExceeded (a net.Error whose Timeout is true)
//     until it is moved. A read timeout leaves c intact; a write cut short
//     by its deadline leaves a partial frame on the wire, so it fails c, as
//     Write does when its ctx ends mid-message.
//
// The net.Conn is safe for concurrent use: Reads are serialised, Writes go
// out as whole messages. Its addresses are c's.
func NetConn(ctx context.Context, c *Conn, typ MessageType) net.Conn {
	n := &netConn{c: c, typ: typ, ctx: ctx, closed: make(chan struct{})}
	n.read.init(ctx)
	n.write.init(ctx)
	n.stop = context.AfterFunc(ctx, func() { c.Close(StatusGoingAway, "") })
	return n
}

type netConn struct {
	c     *Conn
	typ   MessageType
	ctx   context.Context
	stop  func() bool // undoes the AfterFunc that closes c with ctx
	read  deadline
	write deadline

	readMu sync.Mutex
	msg    io.Reader // the rest of the message being read; nil between messages
	eof    bool      // c closed normally: Read returns io.EOF from now on

	closing atomic.Bool
	closed  chan struct{} // closed by Close
}

func (n *netConn) Read(p []byte) (int, error) {
	n.readMu.Lock()
	defer n.readMu.Unlock()
	for {
		if n.eof {
			return 0, io.EOF
		}
		if n.msg != nil {
			k, err := n.msg.Read(p) // the message is in memory: this never blocks
			if err == io.EOF {
				n.msg, err = nil, nil
			}
			if k > 0 || err != nil || len(p) == 0 {
				return k, err
			}
			continue // an empty message, or the end of one: on to the next
		}
		if err := n.nextMessage(); err != nil {
			return 0, err
		}
	}
}

// nextMessage waits for the next message; the caller holds readMu.
func (n *netConn) nextMessage() error {
	ctx := n.read.context()
	typ, r, err := n.c.Reader(ctx)
	if err != nil {
		if endedCleanly(err) {
			n.eof = true
			return io.EOF
		}
		return n.opError(ctx, err)
	}
	if typ != n.typ {
		err := fmt.Errorf("tether: NetConn received a %v message in a %v stream", typ, n.typ)
		n.c.Close(StatusUnsupportedData, "unexpected message type")
		return err
	}
	n.msg = r
	return nil
}

func (n *netConn) Write(p []byte) (int, error) {
	ctx := n.write.context()
	if err := n.c.Write(ctx, n.typ, p); err != nil {
		return 0, n.opError(ctx, err)
	}
	return len(p), nil
}

// opError turns a failed call's context error into what a net.Conn
// returns: os.ErrDeadlineExceeded when a deadline passed, net.ErrClosed
// after Close, ctx's error when the net.Conn's context ended.
func (n *netConn) opError(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	select {
	case <-n.closed:
		return net.ErrClosed
	default:
	}
	if cause := context.Cause(ctx); errors.Is(cause, os.ErrDeadlineExceeded) {
		return os.ErrDeadlineExceeded
	}
	return n.ctx.Err()
}

func (n *netConn) Close() error {
	if !n.closing.CompareAndSwap(false, true) {
		return net.ErrClosed
	}
	close(n.closed)
	n.stop()
	err := n.c.Close(StatusNormal, "")
	n.read.cancelFor(net.ErrClosed)
	n.write.cancelFor(net.ErrClosed)
	if endedCleanly(n.c.Err()) {
		return nil // the peer closed first, or at the same time: the stream ended well
	}
	return err
}

// endedCleanly reports a connection closed with 1000 or 1001 by either side.
func endedCleanly(err error) bool {
	var ce *CloseError
	return errors.As(err, &ce) && (ce.Code == StatusNormal || ce.Code == StatusGoingAway)
}

func (n *netConn) LocalAddr() net.Addr  { return n.c.LocalAddr() }
func (n *netConn) RemoteAddr() net.Addr { return n.c.RemoteAddr() }

func (n *netConn) SetDeadline(t time.Time) error {
	n.read.set(t)
	n.write.set(t)
	return nil
}

func (n *netConn) SetReadDeadline(t time.Time) error  { n.read.set(t); return nil }
func (n *netConn) SetWriteDeadline(t time.Time) error { n.write.set(t); return nil }

// deadline is one direction's deadline, as a context the calls of that
// direction run under: cancelled, with os.ErrDeadlineExceeded as its cause,
// when the deadline passes, which aborts the calls in progress too. Moving
// a passed deadline makes a fresh context for the calls that follow.
type deadline struct {
	mu     sync.Mutex
	parent context.Context
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	ended  bool // ctx was cancelled for good (Close)
}

func (d *deadline) init(parent context.Context) {
	d.parent = parent
	d.ctx, d.cancel = context.WithCancelCause(parent)
}

// context returns the context of a call starting now.
func (d *deadline) context() context.Context {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ctx
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ended {
		return
	}
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if d.ctx.Err() != nil && d.parent.Err() == nil { // the last deadline passed
		d.ctx, d.cancel = context.WithCancelCause(d.parent)
	}
	if t.IsZero() {
		return
	}
	cancel := d.cancel
	if wait := time.Until(t); wait > 0 {
		d.timer = time.AfterFunc(wait, func() { cancel(os.ErrDeadlineExceeded) })
		return
	}
	cancel(os.ErrDeadlineExceeded)
}

func (d *deadline) cancelFor(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ended = true
	if d.timer != nil {
		d.timer.Stop()
	}
	d.cancel(err)
}
