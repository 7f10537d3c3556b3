package tether

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"unicode/utf8"

	"github.com/tetherws/tether/internal/bufpool"
	"github.com/tetherws/tether/internal/deflate"
	"github.com/tetherws/tether/internal/wire"
)

// message is a whole received data message waiting for the application.
type message struct {
	typ MessageType
	buf *[]byte // from bufpool
}

// Read returns the next whole message. The returned slice belongs to the
// caller. Read returns a *CloseError once the connection has closed and every
// message received before that has been read. Cancelling ctx abandons the
// wait without harming the connection.
func (c *Conn) Read(ctx context.Context) (MessageType, []byte, error) {
	m, err := c.nextMessage(ctx)
	if err != nil {
		return 0, nil, err
	}
	return m.typ, *m.buf, nil // ownership passes to the caller
}

// Reader returns the next message as a stream. The reader is valid until the
// next call to Read or Reader; reading it to the end recycles its buffer.
func (c *Conn) Reader(ctx context.Context) (MessageType, io.Reader, error) {
	m, err := c.nextMessage(ctx)
	if err != nil {
		return 0, nil, err
	}
	c.mr.release()
	c.mr.buf, c.mr.off = m.buf, 0
	return m.typ, &c.mr, nil
}

func (c *conn) nextMessage(ctx context.Context) (message, error) {
	select {
	case m := <-c.msgs:
		return m, nil
	default:
	}
	select {
	case m := <-c.msgs:
		return m, nil
	case <-c.done:
		select {
		case m := <-c.msgs: // deliver what arrived before the close
			return m, nil
		default:
			return message{}, c.err
		}
	case <-ctx.Done():
		return message{}, ctx.Err()
	}
}

// messageReader streams one received message.
type messageReader struct {
	c   *conn
	buf *[]byte
	off int
}

func (r *messageReader) Read(p []byte) (int, error) {
	if r.buf == nil {
		return 0, io.EOF
	}
	n := copy(p, (*r.buf)[r.off:])
	r.off += n
	if r.off == len(*r.buf) {
		r.release()
		return n, io.EOF
	}
	return n, nil
}

func (r *messageReader) release() {
	if r.buf != nil {
		bufpool.Put(r.buf)
		r.buf = nil
	}
}

// readLoop reads frames until the connection ends: it delivers data messages
// to the queue, answers pings, settles pongs and runs the closing handshake.
func (c *conn) readLoop() {
	defer close(c.readDone)
	defer c.br.close()
	var (
		cur        *[]byte // message being assembled
		typ        MessageType
		compressed bool
		valid      wire.UTF8
	)
	defer func() {
		if cur != nil {
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
			c.fail(err)
			return
		}
		if h.Opcode.IsControl() {
			p := c.ctrlIn[:h.Length]
			if err := c.readPayload(h, p); err != nil {
				c.readFailed(err)
				return
			}
			c.logFrame("<", h, p)
			if !c.handleControl(op, p) {
				return
			}
			continue
		}
		if h.Opcode != wire.OpContinuation {
			typ = MessageType(op)
			compressed = h.Rsv&wire.Rsv1 != 0
			valid.Reset()
			cur = bufpool.Get(int(min(h.Length, firstAlloc)))
		}
		if h.Length > c.cfg.readLimit-int64(len(*cur)) {
			c.fail(wire.Errorf(wire.CloseTooBig, "message of more than %d bytes", c.cfg.readLimit))
			return
		}
		start := len(*cur)
		if cur, err = c.readData(h, cur, typ == Text && !compressed, &valid); err != nil {
			if errors.Is(err, errInvalidUTF8) {
				c.fail(wire.Errorf(wire.CloseInvalidPayload, "invalid UTF-8 in text message"))
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
				c.fail(err)
				return
			}
		} else if typ == Text && !valid.Complete() {
			c.fail(wire.Errorf(wire.CloseInvalidPayload, "text message ends inside a UTF-8 sequence"))
			return
		}
		m := message{typ: typ, buf: cur}
		cur = nil
		if !c.deliver(m) {
			return
		}
	}
}

// firstAlloc caps the buffer taken for a message before its bytes arrive:
// a header may announce gigabytes, memory follows only what really comes.
const firstAlloc = 64 << 10

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

func (c *conn) deliver(m message) bool {
	c.stats.messagesIn.Add(1)
	c.stats.bytesIn.Add(int64(len(*m.buf)))
	select {
	case c.msgs <- m: // room in the queue, or the application waiting
		return true
	default:
	}
	select {
	case c.msgs <- m:
		return true
	case <-c.closing:
		// Closing: keep the message if there is room (Read still returns
		// it), but never let a full queue hold up the close handshake.
		select {
		case c.msgs <- m:
		default:
			bufpool.Put(m.buf)
		}
		return true
	case <-c.done:
		bufpool.Put(m.buf)
		return false
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
		if c.log.Enabled(context.Background(), slog.LevelDebug) {
			c.log.Debug("received ping", "payload", hexPayload(p))
		}
		c.queuePong(p)
	case wire.OpPong:
		c.handlePong(p)
	case wire.OpClose:
		c.handleClose(p)
		return false
	}
	return true
}

// readFailed ends the connection after a read error: the peer went away
// without a close frame (1006), or the connection was already finished and
// its socket closed under us.
func (c *conn) readFailed(err error) {
	var pe *wire.ProtocolError
	if errors.As(err, &pe) {
		c.fail(pe)
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
