package tether

import (
	"context"
	"errors"
	"io"
	"unicode/utf8"

	"github.com/tetherws/tether/internal/bufpool"
	"github.com/tetherws/tether/internal/deflate"
	"github.com/tetherws/tether/internal/wire"
)

// message is a whole received data message waiting for the application.
type message struct {
	typ    MessageType
	p      []byte
	pooled *[]byte // p's buffer when it came from bufpool, else nil
}

// Read returns the next whole message. The returned slice belongs to the
// caller (Serve is the way to read without an allocation per message). Read
// returns a *CloseError once the connection has closed and every message
// received before that has been read. Cancelling ctx abandons the wait
// without harming the connection.
//
// Read is strict about order, as if frames were handled one at a time: when
// the peer's close frame, or a frame that breaks the protocol, arrives
// behind messages not read yet, it takes effect only once Read has returned
// those messages and is called again, so replies written in between go out
// before the close frame. The wait is bounded by CloseTimeout: an
// application that does not come for them meanwhile finds the connection
// closed, the messages still readable.
func (c *Conn) Read(ctx context.Context) (MessageType, []byte, error) {
	if !c.enterRead() {
		return 0, nil, ErrReadConflict
	}
	defer c.readState.Add(-1)
	if !c.wholeReads.Load() {
		c.wholeReads.Store(true)
	}
	m, err := c.nextMessage(ctx)
	if err != nil {
		return 0, nil, err
	}
	return m.typ, m.p, nil // ownership passes to the caller
}

// enterRead counts a Read or Reader call in readState, unless Serve or Go
// is serving (see serve.go); the caller undoes it with readState.Add(-1).
func (c *conn) enterRead() bool {
	if c.readState.Add(1) < 0 {
		c.readState.Add(-1)
		return false
	}
	return true
}

// Reader returns the next message as a stream. The reader is valid until the
// next call to Read or Reader; reading it to the end recycles its buffer.
func (c *Conn) Reader(ctx context.Context) (MessageType, io.Reader, error) {
	if !c.enterRead() {
		return 0, nil, ErrReadConflict
	}
	defer c.readState.Add(-1)
	if c.wholeReads.Load() {
		c.wholeReads.Store(false)
	}
	m, err := c.nextMessage(ctx)
	if err != nil {
		return 0, nil, err
	}
	if c.mr == nil { // Reader calls do not overlap: readState
		c.mr = &messageReader{}
	}
	c.mr.release()
	c.mr.p, c.mr.pooled, c.mr.off, c.mr.open = m.p, m.pooled, 0, true
	return m.typ, c.mr, nil
}

// messageReader streams one received message.
type messageReader struct {
	p      []byte
	pooled *[]byte // p's buffer, to recycle, when it came from bufpool
	off    int
	open   bool
}

func (r *messageReader) Read(p []byte) (int, error) {
	if !r.open {
		return 0, io.EOF
	}
	n := copy(p, r.p[r.off:])
	r.off += n
	if r.off == len(r.p) {
		r.release()
		return n, io.EOF
	}
	return n, nil
}

func (r *messageReader) release() {
	if r.pooled != nil {
		bufpool.Put(r.pooled)
	}
	r.p, r.pooled, r.open = nil, nil, false
}

// readLoop reads frames until the connection ends: it delivers data messages
// to Serve's handle or the queue, answers pings, settles pongs and runs the
// closing handshake.
func (c *conn) readLoop() { c.endReading(c.readFrames) }

// endReading runs read, the rest of the connection's reading (all of it on
// a reader goroutine, the end phase under the event engine), then ends it.
func (c *conn) endReading(read func()) {
	if c.loop() != nil {
		// The end takes effect after the messages received before it are
		// handled, as on a reader goroutine, where it is not even read
		// while handle runs: their replies go out before the close frame.
		c.loop().waitServed()
		c.handled()
	}
	read()
	if c.br != nil {
		c.br.close()
	}
	c.endRead()
	// Go's serving ends here, after endRead, so its done may call
	// CloseNow, which waits for it.
	if s := c.srv.Load(); s != nil && s.background {
		c.endBackground(s)
	}
}

func (c *conn) readFrames() {
	var (
		cur        *[]byte // message being assembled
		pooled     bool    // cur is from bufpool, not &c.whole
		typ        MessageType
		compressed bool
		valid      wire.UTF8
	)
	defer func() {
		if cur != nil && pooled {
			bufpool.Put(cur)
		}
	}()
	for {
		h, err := c.readHeader()
		if err != nil {
			c.readFailed(err)
			return
		}
		c.lastRecv.Store(c.cfg.clock.Now().UnixNano())
		op, err := c.rules.Next(h)
		if err != nil {
			c.failInOrder(err, h.Length)
			return
		}
		if h.Opcode.IsControl() {
			if !c.readControl(h, op) {
				return
			}
			continue
		}
		if h.Opcode != wire.OpContinuation {
			typ = MessageType(op)
			compressed = h.Rsv&wire.Rsv1 != 0
			valid.Reset()
			cur, pooled = c.messageBuf(h, compressed)
		}
		if h.Length > c.cfg.readLimit-int64(len(*cur)) {
			c.failInOrder(wire.Errorf(wire.CloseTooBig, "message of more than %d bytes", c.cfg.readLimit), h.Length)
			return
		}
		start := len(*cur)
		if cur, err = c.readData(h, cur, typ == Text && !compressed, &valid); err != nil {
			if errors.Is(err, errInvalidUTF8) {
				left := h.Length - int64(len(*cur)-start)
				c.failInOrder(wire.Errorf(wire.CloseInvalidPayload, "invalid UTF-8 in text message"), left)
			} else {
				c.readFailed(err)
			}
			return
		}
		c.logFrame("<", h, (*cur)[start:])
		if !h.Fin {
			continue
		}
		if compressed {
			if cur, err = c.inflate(cur, typ == Text); err != nil {
				c.failInOrder(err, 0)
				return
			}
		} else if typ == Text && !valid.Complete() {
			c.failInOrder(wire.Errorf(wire.CloseInvalidPayload, "text message ends inside a UTF-8 sequence"), 0)
			return
		}
		m := message{typ: typ, p: *cur}
		if pooled {
			m.pooled = cur
		} else {
			c.whole = nil // the application's now; an idle connection keeps nothing
		}
		cur = nil
		if !c.dispatch(m) {
			return
		}
	}
}

// firstAlloc caps the buffer taken for a message before its bytes arrive:
// a header may announce gigabytes, memory follows only what really comes.
const firstAlloc = 64 << 10

// messageBuf returns the buffer a message that starts with frame h is
// assembled in, and whether it is from bufpool. While the application takes
// whole messages with Read, which hands the buffer over for good, a message
// in one frame of up to firstAlloc bytes gets a buffer of exactly its size
// (one allocation, nothing to recycle); otherwise a pooled one, which
// Reader recycles.
func (c *conn) messageBuf(h wire.Header, compressed bool) (*[]byte, bool) {
	if h.Fin && !compressed && h.Length <= firstAlloc && c.wholeReads.Load() {
		c.whole = make([]byte, 0, h.Length)
		return &c.whole, false
	}
	return bufpool.Get(int(min(h.Length, firstAlloc))), true
}

var errInvalidUTF8 = errors.New("invalid UTF-8")

// readData appends the frame's payload to buf as it arrives, unmasking it
// and, for text, validating it chunk by chunk, so invalid UTF-8 fails the
// connection as soon as it is read, not at the end of the frame.
func (c *conn) readData(h wire.Header, buf *[]byte, text bool, valid *wire.UTF8) (*[]byte, error) {
	want, pos := h.Length, 0
	for want > 0 {
		b := *buf
		if len(b) == cap(b) {
			buf = growCap(buf, int(min(int64(2*cap(b)), int64(len(b))+want)))
			b = *buf
		}
		p := b[len(b) : len(b)+int(min(int64(cap(b)-len(b)), want))]
		n, err := c.br.Read(p)
		if n > 0 {
			p = p[:n]
			if h.Masked {
				pos = wire.Mask(h.Key, pos, p)
			}
			*buf = b[:len(b)+n]
			want -= int64(n)
			if text && !valid.Write(p) {
				return buf, errInvalidUTF8
			}
		}
		if err != nil && want > 0 {
			return buf, noEOF(err)
		}
	}
	return buf, nil
}

// growCap returns a buffer holding b's bytes with capacity at least n.
func growCap(b *[]byte, n int) *[]byte {
	nb := bufpool.Get(max(n, 2*cap(*b)))
	*nb = append(*nb, *b...)
	bufpool.Put(b)
	return nb
}

// recycle returns a message nobody will read to bufpool.
func (m message) recycle() {
	if m.pooled != nil {
		bufpool.Put(m.pooled)
	}
}

func (c *conn) readHeader() (wire.Header, error) {
	b, err := c.br.Peek(2)
	if err != nil {
		return wire.Header{}, err
	}
	n := wire.HeaderSize(b[0], b[1])
	if b, err = c.br.Peek(n); err != nil {
		return wire.Header{}, noEOF(err)
	}
	h, _, err := wire.DecodeHeader(b)
	c.br.Discard(n)
	return h, err
}

// readControl reads a control frame's payload and acts on it; it reports
// whether to keep reading. The payload is read into a pooled buffer, not one
// of the connection's own: an idle connection keeps none.
func (c *conn) readControl(h wire.Header, op wire.Opcode) bool {
	bp := bufpool.Get(wire.MaxControlPayload)
	defer bufpool.Put(bp)
	p := (*bp)[:h.Length]
	if err := c.readPayload(h, p); err != nil {
		c.readFailed(err)
		return false
	}
	c.logFrame("<", h, p)
	return c.handleControl(op, p)
}

// readPayload reads the frame's payload into p and unmasks it.
func (c *conn) readPayload(h wire.Header, p []byte) error {
	if _, err := io.ReadFull(c.br, p); err != nil {
		return noEOF(err)
	}
	if h.Masked {
		wire.Mask(h.Key, 0, p)
	}
	return nil
}

// noEOF turns an EOF in the middle of a frame into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// handleControl acts on a control frame and reports whether to keep reading.
func (c *conn) handleControl(op wire.Opcode, p []byte) bool {
	switch op {
	case wire.OpPing:
		c.receivedPing(p)
		if c.cfg.relay != nil {
			c.relayControl(ControlPing, p)
		} else {
			c.queuePong(p)
		}
	case wire.OpPong:
		c.handlePong(p)
	case wire.OpClose:
		c.inOrder()
		c.handleClose(p)
		return false
	}
	return true
}

// failInOrder fails the connection once the application has taken the
// messages received before the failure (order.go); left is as for fail.
func (c *conn) failInOrder(err error, left int64) {
	c.inOrder()
	c.fail(err, left)
}

// readFailed ends the connection after a read error: the peer went away
// without a close frame (1006), or the connection was already finished and
// its socket closed under us.
func (c *conn) readFailed(err error) {
	var pe *wire.ProtocolError
	if errors.As(err, &pe) {
		c.failInOrder(pe, -1) // a header that does not decode: lost in the stream
		return
	}
	c.finish(&CloseError{Code: StatusAbnormal, Reason: "connection lost", Initiator: "peer", Err: err})
	c.nc.Close()
}

// inflate decompresses a whole received message, bounded by ReadLimit: a
// small frame that would inflate past it fails with 1009 after at most
// ReadLimit bytes of output.
func (c *conn) inflate(buf *[]byte, text bool) (*[]byte, error) {
	out, err := c.deflate.decomp.Decompress(*buf, c.cfg.readLimit)
	bufpool.Put(buf)
	switch {
	case errors.Is(err, deflate.ErrTooBig):
		return nil, wire.Errorf(wire.CloseTooBig, "message inflates to more than %d bytes", c.cfg.readLimit)
	case err != nil:
		return nil, wire.Errorf(wire.CloseInvalidPayload, "bad compressed data: %v", err)
	case text && !utf8.Valid(*out):
		bufpool.Put(out)
		return nil, wire.Errorf(wire.CloseInvalidPayload, "invalid UTF-8 in text message")
	}
	return out, nil
}
