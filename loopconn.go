package tether

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/tetherws/tether/internal/poll"
)

// loopConn is the net.Conn of a connection the event engine drives: the
// write path, the close path and the deadlines of the protocol code are
// the same for both engines, and here they reach the engine's socket.
//
// Writes go to the socket at once when it takes them, else to the
// connection's write queue, which the loop flushes; past the queue's bound
// Write waits for room, until the write deadline. Close flushes what is
// queued before it closes the socket (the close frame that says why is not
// lost), bounded by the connection's CloseTimeout.
//
// Reading is the loop's, frame by frame, except at the end: once a
// connection is closing (a close frame came, the peer broke the protocol),
// the rest of its life runs on a goroutine with the pull code both engines
// share, and Read serves it the bytes the loop hands over (pull).
type loopConn struct {
	pc           *poll.Conn
	raddr, laddr net.Addr
	linger       time.Duration // how long Close may flush

	mu    sync.Mutex
	wdl   time.Time          // write deadline
	wstop context.CancelFunc // ends a Write waiting for room when the deadline moves
	pull  *pullBuf           // made when the end phase begins
}

// pullBuf holds the bytes read for the end phase's Read.
type pullBuf struct {
	buf    []byte
	off    int
	err    error // what ends reading: io.EOF, a read error, net.ErrClosed
	dl     time.Time
	wake   chan struct{} // capacity 1: bytes, an error or a new deadline
	paused bool          // reading paused: buf is at its bound
}

// pullBound is what the end phase buffers before the loop stops reading.
const pullBound = 64 << 10

func (lc *loopConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	lc.mu.Lock()
	pb := lc.pull
	if pb == nil {
		lc.mu.Unlock()
		return 0, errors.New("tether: read outside the end phase of an engine connection")
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if pb.off < len(pb.buf) {
			n := copy(p, pb.buf[pb.off:])
			pb.off += n
			if pb.off == len(pb.buf) {
				pb.buf, pb.off = pb.buf[:0], 0
			}
			if pb.paused && len(pb.buf)-pb.off < pullBound/2 {
				pb.paused = false
				lc.pc.ResumeRead() // under mu, so that it cannot pass feed's PauseRead
			}
			lc.mu.Unlock()
			return n, nil
		}
		if pb.err != nil {
			err := pb.err
			lc.mu.Unlock()
			return 0, lc.opErr("read", err)
		}
		var expired <-chan time.Time
		if !pb.dl.IsZero() {
			d := time.Until(pb.dl)
			if d <= 0 {
				lc.mu.Unlock()
				return 0, lc.opErr("read", os.ErrDeadlineExceeded)
			}
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			expired = timer.C
		}
		lc.mu.Unlock()
		select {
		case <-pb.wake:
		case <-expired:
		}
		lc.mu.Lock()
	}
}

// startPull begins the end phase: from now on the loop's bytes are for
// Read. rest is what the loop read past the point where it stopped.
func (lc *loopConn) startPull(rest []byte) {
	lc.mu.Lock()
	lc.pull = &pullBuf{wake: make(chan struct{}, 1)}
	lc.mu.Unlock()
	if len(rest) > 0 {
		lc.feed(rest)
	}
}

// feed hands Read bytes the loop read; past the bound the loop stops
// reading until Read has taken them.
func (lc *loopConn) feed(p []byte) {
	lc.mu.Lock()
	pb := lc.pull
	pb.buf = append(pb.buf, p...)
	if !pb.paused && len(pb.buf)-pb.off >= pullBound {
		pb.paused = true
		lc.pc.PauseRead()
	}
	lc.mu.Unlock()
	signal(pb.wake)
}

// endPull hands Read the error that ended reading.
func (lc *loopConn) endPull(err error) {
	lc.mu.Lock()
	pb := lc.pull
	if pb.err == nil {
		pb.err = err
	}
	lc.mu.Unlock()
	signal(pb.wake)
}

func (lc *loopConn) Write(p []byte) (int, error) {
	for {
		err := lc.pc.Send(p)
		if err == nil {
			return len(p), nil
		}
		if err != poll.ErrWouldBlock {
			return 0, lc.opErr("write", err)
		}
		// The queue is at its bound: wait for room, as a blocking write
		// waits for the socket, until the deadline.
		lc.mu.Lock()
		dl := lc.wdl
		if !dl.IsZero() && !time.Now().Before(dl) {
			lc.mu.Unlock()
			return 0, lc.opErr("write", os.ErrDeadlineExceeded)
		}
		ctx, cancel := context.WithCancel(context.Background())
		if !dl.IsZero() {
			ctx, cancel = context.WithDeadline(context.Background(), dl)
		}
		lc.wstop = cancel
		lc.mu.Unlock()
		err = lc.pc.Write(ctx, p)
		lc.mu.Lock()
		lc.wstop = nil
		lc.mu.Unlock()
		cancel()
		switch {
		case err == nil:
			return len(p), nil
		case errors.Is(err, context.DeadlineExceeded):
			return 0, lc.opErr("write", os.ErrDeadlineExceeded)
		case errors.Is(err, context.Canceled):
			continue // the deadline moved: look again
		}
		return 0, lc.opErr("write", err)
	}
}

// Close flushes what is queued, then closes the socket; a peer that does
// not read gets linger to take it.
func (lc *loopConn) Close() error {
	if err := lc.pc.Close(); err != nil {
		return lc.opErr("close", err)
	}
	if lc.pc.Queued() > 0 {
		time.AfterFunc(lc.linger, func() { lc.pc.CloseNow() })
	}
	return nil
}

// CloseWrite sends FIN once what is queued is written.
func (lc *loopConn) CloseWrite() error {
	if err := lc.pc.CloseWrite(); err != nil {
		return lc.opErr("close", err)
	}
	return nil
}

func (lc *loopConn) LocalAddr() net.Addr  { return lc.laddr }
func (lc *loopConn) RemoteAddr() net.Addr { return lc.raddr }

func (lc *loopConn) SetDeadline(t time.Time) error {
	lc.SetReadDeadline(t)
	return lc.SetWriteDeadline(t)
}

func (lc *loopConn) SetReadDeadline(t time.Time) error {
	lc.mu.Lock()
	pb := lc.pull
	if pb != nil {
		pb.dl = t
	}
	lc.mu.Unlock()
	if pb != nil {
		signal(pb.wake)
	}
	return nil
}

func (lc *loopConn) SetWriteDeadline(t time.Time) error {
	lc.mu.Lock()
	lc.wdl = t
	if lc.wstop != nil {
		lc.wstop()
	}
	lc.mu.Unlock()
	return nil
}

// opErr makes err what a *net.TCPConn would have returned for op.
func (lc *loopConn) opErr(op string, err error) error {
	if err == io.EOF {
		return err
	}
	if errors.Is(err, poll.ErrClosed) || errors.Is(err, poll.ErrEngineClosed) {
		err = net.ErrClosed
	}
	netw := ""
	if lc.laddr != nil {
		netw = lc.laddr.Network()
	}
	return &net.OpError{Op: op, Net: netw, Source: lc.laddr, Addr: lc.raddr, Err: err}
}
