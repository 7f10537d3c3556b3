package tether

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherws/tether/internal/bufpool"
	"github.com/tetherws/tether/internal/deflate"
	"github.com/tetherws/tether/internal/wire"
)

// newMaskKey returns a client frame's masking key (RFC 6455 section 5.3),
// from the runtime's ChaCha8, seeded by the OS.
func newMaskKey() [4]byte {
	k := rand.Uint32()
	return [4]byte{byte(k), byte(k >> 8), byte(k >> 16), byte(k >> 24)}
}

// writeBufSize is the buffer a frame is assembled in: small frames leave in
// one write, masked large ones in chunks of this size.
const writeBufSize = 16 << 10

var errCloseSent = errors.New("tether: close frame already sent")

func (c *conn) isDone() bool { return c.doneState.Load()&doneFinished != 0 }

// closedErr is the error for a write after the close frame went out: the
// *CloseError once the connection is done, errCloseSent while it closes.
func (c *conn) closedErr() error {
	if c.isDone() {
		return c.err
	}
	return errCloseSent
}

// Write sends a whole message. Messages longer than FragmentSize go out as
// fragments, with any pending control frames between them. With compression
// negotiated, messages of CompressionThreshold bytes or more are compressed.
// It is safe to call concurrently with other writes. A write cut short by ctx
// leaves a partial frame on the wire, so it fails the connection; a ctx done
// before the message starts sends nothing and leaves the connection open.
func (c *Conn) Write(ctx context.Context, typ MessageType, p []byte) error {
	if typ != Text && typ != Binary {
		return fmt.Errorf("tether: invalid message type %d", typ)
	}
	if err := c.acquire(ctx, &c.msgSem); err != nil {
		return err
	}
	defer c.msgSem.release()
	payload, rsv := p, uint8(0)
	if c.deflate != nil && len(p) >= c.cfg.threshold {
		buf := bufpool.Get(len(p)/2 + 64)
		defer bufpool.Put(buf)
		if err := c.deflate.comp.Compress(buf, p); err != nil {
			return err
		}
		payload, rsv = *buf, wire.Rsv1
	}
	if err := c.writeMessage(ctx, wire.Opcode(typ), rsv, payload); err != nil {
		return err
	}
	c.stats.messagesOut.Add(1)
	c.stats.bytesOut.Add(int64(len(p)))
	return nil
}

// writeMessage writes a message's payload as frames of at most FragmentSize;
// rsv goes on the first frame only. The caller holds msgSem.
func (c *conn) writeMessage(ctx context.Context, op wire.Opcode, rsv uint8, p []byte) error {
	for {
		n := min(len(p), c.cfg.fragmentSize)
		fin := n == len(p)
		if err := c.writeData(ctx, fin, op, rsv, p[:n]); err != nil {
			return err
		}
		if fin {
			return nil
		}
		p, op, rsv = p[n:], wire.OpContinuation, 0
	}
}

// acquire takes a one-slot semaphore, giving up when ctx is done or the
// connection closes. Only a writer that has to wait makes the connection's
// done channel.
func (c *conn) acquire(ctx context.Context, sem *sema) error {
	if c.isDone() {
		return c.err
	}
	if sem.tryAcquire() {
		return nil
	}
	switch sem.acquire(ctx, c.doneChan()) {
	case nil:
		return nil
	case errSemaDone:
		return c.err
	default:
		return context.Cause(ctx)
	}
}

// writeData writes one data frame under the frame lock.
func (c *conn) writeData(ctx context.Context, fin bool, op wire.Opcode, rsv uint8, p []byte) error {
	if err := c.acquire(ctx, &c.frameSem); err != nil {
		return err
	}
	defer c.releaseFrame()
	if c.closeSent.Load() || c.isDone() {
		return c.closedErr()
	}
	return c.writeFrame(ctx, wire.Header{Fin: fin, Rsv: rsv, Opcode: op, Length: int64(len(p))}, p)
}

// writeFrame writes one frame; the caller holds frameSem. A failed write
// leaves the stream corrupt, so it ends the connection. A frame whose ctx is
// done before it starts is not written: the error is ctx's and the
// connection goes on, unless the frame continues a message already begun.
func (c *conn) writeFrame(ctx context.Context, h wire.Header, p []byte) error {
	c.bindWrite(ctx)
	defer c.endWrite()
	if ctx.Err() != nil {
		return c.frameNotStarted(h, context.Cause(ctx))
	}
	if c.role == wire.Client {
		h.Masked, h.Key = true, newMaskKey()
	}
	if c.cfg.logFrames {
		c.logFrame(">", h, p)
	}
	if err := c.writeRaw(h, p); err != nil {
		return c.frameFailed(ctx, err)
	}
	return nil
}

// The cold ends of writeFrame live apart, to keep its frame small: a
// keepalive ping is written from a goroutine the runtime starts with the
// smallest stack, and the whole write path must fit it (see keepaliveFire).

// frameNotStarted is a frame whose context was done before it started: the
// error is ctx's, and the connection ends if the frame continued a message.
//
//go:noinline
func (c *conn) frameNotStarted(h wire.Header, err error) error {
	if h.Opcode != wire.OpContinuation {
		return err
	}
	c.writeFailed(fmt.Errorf("%w (message cut short)", err))
	return c.err
}

// frameFailed ends the connection after a failed write, naming ctx's part.
//
//go:noinline
func (c *conn) frameFailed(ctx context.Context, err error) error {
	if ctxErr := writeCtxErr(ctx, err); ctxErr != nil {
		err = fmt.Errorf("%w (write interrupted: %w)", ctxErr, err)
	}
	c.writeFailed(err)
	return c.err
}

// writeCtxErr returns ctx's part in a failed write: its error, or
// context.DeadlineExceeded when the socket's deadline (ctx's) ran out just
// before ctx's own timer said so.
func writeCtxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx) // its error, or the cause it was cancelled with
	}
	if dl, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// writev is the vector of a large frame's writev: header and payload.
type writev struct {
	iov [2][]byte
	wv  net.Buffers
}

var writevPool = sync.Pool{New: func() any { return new(writev) }}

// sockWrite writes p whole to the connection: on a TCP or Unix socket with
// raw system calls (see sysio.go), otherwise with net.Conn.Write. A
// connection whose net.Conn was replaced (tests count bytes that way) goes
// through the replacement.
func (c *conn) sockWrite(p []byte) error {
	if c.loop() != nil || c.br == nil {
		// The engine's socket; or a connection whose engine socket a test
		// replaced. (Under the engine br is the end phase's, not this.)
		_, err := c.nc.Write(p)
		return err
	}
	if rc := c.br.rc; rc != nil && c.br.nc == c.nc {
		return sockWrite(c.nc, rc, p)
	}
	_, err := c.nc.Write(p)
	return err
}

func (c *conn) writeRaw(h wire.Header, p []byte) error {
	// A buffer the frame's size, up to writeBufSize: a ping or a small
	// message does not take (and, after a GC emptied the pool, clear) 16 KiB.
	bp := bufpool.Get(min(writeBufSize, wire.MaxHeaderSize+len(p)))
	defer bufpool.Put(bp)
	buf := (*bp)[:cap(*bp)]
	n := wire.PutHeader(buf, h)
	if !h.Masked && len(p) > len(buf)-n {
		return c.writeLarge(buf[:n], p)
	}
	pos := 0
	for {
		m := copy(buf[n:], p)
		if h.Masked {
			pos = wire.Mask(h.Key, pos, buf[n:n+m])
		}
		if err := c.sockWrite(buf[:n+m]); err != nil {
			return err
		}
		p = p[m:]
		if len(p) == 0 {
			return nil
		}
		n = 0
	}
}

// writeLarge writes a header and a large payload in one writev, the payload
// not copied. The vector is pooled, so this allocates nothing and a
// connection keeps none between frames.
//
//go:noinline
func (c *conn) writeLarge(hdr, p []byte) error {
	v := writevPool.Get().(*writev)
	v.iov = [2][]byte{hdr, p}
	v.wv = v.iov[:]
	_, err := v.wv.WriteTo(c.nc)
	v.iov, v.wv = [2][]byte{}, nil // keep no reference to p
	writevPool.Put(v)
	return err
}

// writeControl writes a control frame, waiting for the frame lock.
func (c *conn) writeControl(ctx context.Context, op wire.Opcode, p []byte) error {
	if err := c.acquire(ctx, &c.frameSem); err != nil {
		return err
	}
	defer c.releaseFrame()
	return c.writeControlLocked(ctx, op, p)
}

func (c *conn) writeControlLocked(ctx context.Context, op wire.Opcode, p []byte) error {
	if op != wire.OpClose && (c.closeSent.Load() || c.isDone()) {
		return c.closedErr()
	}
	return c.writeFrame(ctx, wire.Header{Fin: true, Opcode: op, Length: int64(len(p))}, p)
}

// releaseFrame gives up the frame lock and then sends a pong that arrived
// while it was held, so pongs never wait for the next writer.
func (c *conn) releaseFrame() {
	c.frameSem.release()
	if c.pong.p.Load() != nil {
		c.flushPong()
	}
}

// pendingPong holds the payload of the latest unanswered ping. RFC 6455
// section 5.5.3 allows answering only the most recent one. The payload waits
// in a pooled buffer, so a connection holds none between pings. A payload
// there is a pong to send: whoever holds frameSem when it is stored, or
// takes frameSem after, sends it.
type pendingPong struct {
	p atomic.Pointer[[]byte] // the payload to answer, nil once taken
}

// queuePong records a ping to answer and sends the pong at once if no frame
// is being written; otherwise the writer holding the lock sends it when it
// lets go. The read loop never blocks here on a busy writer.
func (c *conn) queuePong(p []byte) {
	c.pong.set(p)
	c.flushPong()
}

// set records p as the payload to answer.
func (pp *pendingPong) set(p []byte) {
	bp := bufpool.Get(len(p))
	*bp = append(*bp, p...)
	if old := pp.p.Swap(bp); old != nil {
		bufpool.Put(old) // a newer ping replaces it
	}
}

// take returns the payload to answer, nil if an earlier flush took it.
func (pp *pendingPong) take() *[]byte { return pp.p.Swap(nil) }

// waiting reports whether a ping waits for its pong.
func (pp *pendingPong) waiting() bool { return pp.p.Load() != nil }

func (c *conn) flushPong() {
	for c.pong.p.Load() != nil {
		if !c.frameSem.tryAcquire() {
			return // the holder sends it on release
		}
		if bp := c.pong.take(); bp != nil { // nil: an earlier flush took this ping's payload
			c.writeControlLocked(context.Background(), wire.OpPong, *bp)
			bufpool.Put(bp)
		}
		c.frameSem.release()
	}
}

// Writer returns a writer for one message, sent as fragments as the data
// comes (compressed as it comes when compression is negotiated). A full
// fragment waits for the next Write or for Close, which sends it as the final
// frame when no more data came: a message written in one Write and closed
// goes out as one frame when it fits one. Close the writer to finish the
// message; no other message can be written until then, but control frames
// can go out between fragments.
func (c *Conn) Writer(ctx context.Context, typ MessageType) (*MessageWriter, error) {
	if typ != Text && typ != Binary {
		return nil, fmt.Errorf("tether: invalid message type %d", typ)
	}
	if err := c.acquire(ctx, &c.msgSem); err != nil {
		return nil, err
	}
	limit := min(c.cfg.fragmentSize, writeBufSize)
	w := &MessageWriter{c: c.conn, ctx: ctx, op: wire.Opcode(typ), buf: bufpool.Get(limit), limit: limit}
	if c.deflate != nil {
		w.rsv = wire.Rsv1
		w.z = c.deflate.comp.Begin(w.buf)
	}
	return w, nil
}

// MessageWriter streams one message; see Conn.Writer.
type MessageWriter struct {
	c      *conn
	ctx    context.Context
	op     wire.Opcode
	rsv    uint8
	buf    *[]byte         // pending payload: plain, or compressed output with z
	z      *deflate.Stream // compresses into buf
	limit  int             // fragment size: full fragments leave when more data comes
	n      int64           // message bytes written
	closed bool
	err    error
}

// Write buffers (or compresses) p and sends full fragments, except the
// last: a full fragment waits for the next Write or for Close, so a message
// that ends on a fragment boundary ends with its last data frame, not with an
// empty one.
func (w *MessageWriter) Write(p []byte) (int, error) {
	if w.closed {
		return 0, errors.New("tether: write to a closed message writer")
	}
	if w.err != nil {
		return 0, w.err
	}
	w.n += int64(len(p))
	if w.z != nil {
		w.z.Write(p)
		return len(p), w.sendFull()
	}
	n := 0
	for len(p) > 0 {
		if len(*w.buf) == w.limit {
			// The fragment held back is not the last: send it.
			if err := w.flush(false, *w.buf); err != nil {
				return n, err
			}
			*w.buf = (*w.buf)[:0]
		}
		b := *w.buf
		if len(b) == 0 && len(p) > w.limit {
			// Big write with nothing buffered: send it as is, no copy,
			// keeping back a tail for the buffer, which may be the last.
			m := min(len(p), w.c.cfg.fragmentSize)
			if m == len(p) {
				m -= w.limit
			}
			if err := w.flush(false, p[:m]); err != nil {
				return n, err
			}
			n, p = n+m, p[m:]
			continue
		}
		m := copy(b[len(b):w.limit], p)
		*w.buf = b[:len(b)+m]
		n, p = n+m, p[m:]
	}
	return n, nil
}

// sendFull sends every full fragment of compressed output.
func (w *MessageWriter) sendFull() error {
	for len(*w.buf) > w.limit {
		if err := w.flush(false, (*w.buf)[:w.limit]); err != nil {
			return err
		}
		n := copy(*w.buf, (*w.buf)[w.limit:])
		*w.buf = (*w.buf)[:n]
	}
	return nil
}

func (w *MessageWriter) flush(fin bool, p []byte) error {
	w.err = w.c.writeData(w.ctx, fin, w.op, w.rsv, p)
	w.op, w.rsv = wire.OpContinuation, 0
	return w.err
}

// Close sends the final fragment and releases the connection for the next
// message.
func (w *MessageWriter) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.err
	if w.z != nil {
		if zerr := w.z.Finish(); err == nil {
			err = zerr
			if err == nil {
				err = w.sendFull()
			}
		}
	}
	if err == nil {
		err = w.flush(true, *w.buf)
	}
	bufpool.Put(w.buf)
	w.buf = nil
	if err == nil {
		w.c.stats.messagesOut.Add(1)
		w.c.stats.bytesOut.Add(w.n)
	}
	w.c.msgSem.release()
	return err
}
