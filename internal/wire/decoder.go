package wire

import (
	"errors"
	"sync"
)

// FrameHandler receives what a Decoder decodes, in the order of the wire.
// Every method may return an error to stop the decoder: Feed then returns
// that error and the decoder accepts nothing more (a driver stops this way
// after a close frame, whose followers RFC 6455 section 5.5.1 says to
// ignore).
//
// The byte slices handed over are valid only during the call: they are the
// caller's own read buffer (unmasked in place) or the decoder's pooled
// control buffer, both reused as soon as the call returns.
type FrameHandler interface {
	// OnFrame announces a data frame whose header has passed the rules of
	// Reader.Next and the read limit. msg is the opcode of the message the
	// frame belongs to: OpText or OpBinary, for continuations too. The
	// frame's payload follows through OnPayload.
	OnFrame(h Header, msg Opcode) error

	// OnPayload delivers the next bytes of the current data frame's
	// payload, unmasked. For an uncompressed text message they have been
	// checked as UTF-8 so far; a final frame's last bytes also end on a
	// whole code point. last is true on the call that completes the frame:
	// there is exactly one such call per data frame, with an empty p when
	// the frame is empty, so the driver needs no byte counting of its own.
	OnPayload(p []byte, last bool) error

	// OnControl delivers a whole control frame (ping, pong or close) with
	// its payload unmasked. The frame has passed the control-frame rules
	// (final, at most 125 bytes, no RSV bits); parsing a close payload
	// (ParseClose) is the caller's business.
	OnControl(h Header, p []byte) error
}

// DecoderConfig is what a Decoder needs to know of the connection.
type DecoderConfig struct {
	// Role is the end that reads: a server requires masked frames, a
	// client unmasked ones.
	Role Role
	// AllowRsv1 is set when permessage-deflate was negotiated: RSV1 may
	// then mark the first frame of a compressed message.
	AllowRsv1 bool
	// ReadLimit bounds a message, as its frames' lengths add up on the
	// wire (before any decompression): a frame that would take the message
	// past it fails with 1009 as soon as its header is read, before any of
	// its payload is taken. Zero or less means no limit.
	ReadLimit int64
}

// ErrPause, returned by a FrameHandler method, stops Decode after the
// current call without ending the decoder: Decode returns it with the
// bytes taken so far, and the next Decode goes on from there (the driver
// feeds it the rest later: a connection that stops reading on a full
// queue stops exactly at a message's end).
var ErrPause = errors.New("wire: decoding paused")

// ErrDecoderReleased is what Feed returns after Release.
var ErrDecoderReleased = errors.New("wire: decoder released")

// Decoder is the push side of the wire rules: the bytes of a connection
// are fed to it in whatever pieces they arrive, and it calls a
// FrameHandler as frames and payload bytes become known. It serves an event
// loop that reads many sockets into one buffer of its own: nothing the
// loop reads has to be kept once Feed returns, except what the decoder
// keeps itself, which is little.
//
// It holds at most an incomplete frame header (up to 14 bytes, in a fixed
// array) and an incomplete control payload (up to 125 bytes, in a buffer
// from a pool, taken only while a control frame is cut by the end of a
// Feed). Data payloads are never buffered: they are unmasked in place and
// handed over as they come, so a 1 GiB frame costs the decoder nothing.
// Between frames it holds no buffer at all, which is what lets an idle
// connection cost only its struct.
//
// The checks are those of the pull path, in the same order: DecodeHeader,
// Reader.Next (masking by role, RSV bits, reserved opcodes, control-frame
// limits, fragmentation), the read limit (1009), then incremental UTF-8 for
// uncompressed text (1007), failing on the first byte that cannot be valid.
// After an error, Feed accepts nothing more and returns the same error.
//
// Use Init before the first Feed. A Decoder must not be copied after Init,
// and is not safe for concurrent use: one loop feeds one connection.
type Decoder struct {
	h     FrameHandler
	err   error
	limit int64 // ReadLimit, or the largest int64 for none
	left  int64 // payload bytes of the current frame not yet fed
	msg   int64 // bytes the current message's frames announced so far
	valid UTF8
	ctl   *[MaxControlPayload]byte // pooled; only while a control payload is cut

	rules  Reader
	hdr    [MaxHeaderSize]byte // an incomplete header's bytes
	hn     uint8               // bytes of hdr in use
	state  uint8
	key    [4]byte
	pos    uint8  // masking-key position of the next payload byte
	op     Opcode // opcode of the current control frame
	masked bool
	fin    bool  // the current data frame ends its message
	check  bool  // the current message is uncompressed text: validate UTF-8
	ctlN   uint8 // control payload bytes gathered in ctl
	ctlLen uint8 // the current control frame's payload length
}

// Decoder states: what the next byte fed belongs to.
const (
	stHeader  uint8 = iota // a frame header (hn bytes of it already in hdr)
	stData                 // a data frame's payload (left bytes to come)
	stControl              // a control frame's payload (ctlLen-ctlN to come)
)

// ctlPool holds the buffers of control payloads that a Feed cut short.
// Most control frames arrive whole and never take one.
var ctlPool = sync.Pool{New: func() any { return new([MaxControlPayload]byte) }}

// Init prepares d for a new connection, dropping anything it held.
func (d *Decoder) Init(cfg DecoderConfig, h FrameHandler) {
	d.Release()
	limit := cfg.ReadLimit
	if limit <= 0 {
		limit = 1<<63 - 1
	}
	*d = Decoder{h: h, limit: limit, rules: Reader{Role: cfg.Role, AllowRsv1: cfg.AllowRsv1}}
}

// Release returns any buffer d holds to its pool; call it when the
// connection ends, perhaps in the middle of a control frame. Feed returns
// ErrDecoderReleased afterwards, until the next Init.
func (d *Decoder) Release() {
	d.dropControl()
	if d.err == nil {
		d.err = ErrDecoderReleased
	}
}

// Err returns the error that stopped d, or nil.
func (d *Decoder) Err() error { return d.err }

// InFrame reports whether the bytes fed so far end inside a frame (its
// header or its payload). A connection whose bytes end here ended in the
// middle of a frame: the pull path's io.ErrUnexpectedEOF, not a clean EOF.
func (d *Decoder) InFrame() bool { return d.state != stHeader || d.hn > 0 }

// InMessage reports whether a fragmented message is in progress.
func (d *Decoder) InMessage() bool { return d.rules.InMessage() }

// Feed decodes p, which may hold any part of the stream: a header cut
// anywhere, a payload in many pieces, many frames. It calls d's handler
// for everything p completes and returns the first error, a
// *ProtocolError for a peer that broke the protocol or what the handler
// returned. Feed unmasks payload bytes in place, so p must be writable and
// is changed; the decoder keeps no reference to p.
func (d *Decoder) Feed(p []byte) error {
	_, err := d.Decode(p)
	return err
}

// Decode is Feed that also reports how many bytes of p it took: all of
// them, unless it stopped on an error, whose frame's bytes up to the point
// of failure count as taken (a rejected header is taken whole, its payload
// not). A driver that goes on reading the stream after a failure (to
// discard up to the peer's close frame) starts at p[n:], with Left bytes of
// the failed frame still to skip.
func (d *Decoder) Decode(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	taken := 0
	for taken < len(p) {
		n, err := d.step(p[taken:])
		taken += n
		if err == ErrPause {
			return taken, err
		}
		if err != nil {
			d.err = err
			d.dropControl()
			return taken, err
		}
	}
	return taken, nil
}

// Left returns, after Decode stopped on an error, the payload bytes of the
// frame it stopped in that the stream still holds: the whole payload of a
// frame whose header was refused, the rest of one whose payload failed, -1
// when the header itself could not be decoded (the stream is lost).
func (d *Decoder) Left() int64 { return d.left }

// step takes the next bytes of p for the current state and reports how
// many it took.
func (d *Decoder) step(p []byte) (int, error) {
	switch d.state {
	case stData:
		n := int(min(int64(len(p)), d.left))
		return n, d.payload(p[:n])
	case stControl:
		return d.control(p)
	}
	return d.header(p)
}

// header decodes a frame header from p, straight from p when it holds the
// whole header (the common case), else through hdr across Feeds.
func (d *Decoder) header(p []byte) (int, error) {
	b := p
	if d.hn > 0 || len(p) < 2 || len(p) < HeaderSize(p[0], p[1]) {
		taken, ok := d.gather(p)
		if !ok {
			return taken, nil
		}
		b, d.hn = d.hdr[:d.hn], 0
		h, _, err := DecodeHeader(b)
		if err != nil {
			d.left = -1
			return taken, err
		}
		return taken, d.begin(h)
	}
	h, n, err := DecodeHeader(b)
	if err != nil {
		d.left = -1
		return n, err
	}
	return n, d.begin(h)
}

// gather copies header bytes from p into hdr until hdr holds the whole
// header the first two bytes announce. It returns the bytes it took and
// whether the header is complete.
func (d *Decoder) gather(p []byte) (int, bool) {
	taken := 0
	for {
		need := 2
		if d.hn >= 2 {
			need = HeaderSize(d.hdr[0], d.hdr[1])
		}
		if int(d.hn) == need {
			return taken, true
		}
		n := copy(d.hdr[d.hn:need], p[taken:])
		if n == 0 {
			return taken, false
		}
		d.hn += uint8(n)
		taken += n
	}
}

// begin applies the rules to a decoded header and starts its frame.
func (d *Decoder) begin(h Header) error {
	op, err := d.rules.Next(h)
	if err != nil {
		d.left = h.Length // Left: the refused frame's payload is still to come
		return err
	}
	d.key, d.pos, d.masked = h.Key, 0, h.Masked
	if h.Opcode.IsControl() {
		return d.beginControl(h)
	}
	return d.beginData(h, op)
}

// beginData starts a data frame: the read limit, then OnFrame. An empty
// frame is completed at once, so that it never waits for a next Feed.
func (d *Decoder) beginData(h Header, op Opcode) error {
	if h.Opcode != OpContinuation {
		d.msg = 0
		d.check = op == OpText && h.Rsv&Rsv1 == 0 // compressed text is checked once inflated
		d.valid.Reset()
	}
	if h.Length > d.limit-d.msg {
		d.left = h.Length
		return Errorf(CloseTooBig, "message of more than %d bytes", d.limit)
	}
	d.msg += h.Length
	d.left, d.fin = h.Length, h.Fin
	d.state = stData
	if err := d.h.OnFrame(h, op); err != nil {
		return err
	}
	if h.Length == 0 {
		return d.payload(nil)
	}
	return nil
}

// payload unmasks and checks the next chunk of a data frame, then hands
// it over. Invalid UTF-8 is refused before the handler sees the chunk.
func (d *Decoder) payload(p []byte) error {
	if d.masked {
		d.pos = uint8(Mask(d.key, int(d.pos), p))
	}
	d.left -= int64(len(p))
	last := d.left == 0
	if d.check {
		if !d.valid.Write(p) {
			return Errorf(CloseInvalidPayload, "invalid UTF-8 in text message")
		}
		if last && d.fin && !d.valid.Complete() {
			return Errorf(CloseInvalidPayload, "text message ends inside a UTF-8 sequence")
		}
	}
	if last {
		d.state = stHeader
	}
	return d.h.OnPayload(p, last)
}

// beginControl starts a control frame; an empty one is delivered at once.
func (d *Decoder) beginControl(h Header) error {
	d.op, d.ctlLen, d.ctlN = h.Opcode, uint8(h.Length), 0
	if h.Length == 0 {
		return d.deliverControl(nil)
	}
	d.state = stControl
	return nil
}

// control takes control payload bytes from p. A payload wholly inside p is
// unmasked and delivered in place; only one cut by the end of p is copied,
// into a pooled buffer given back as soon as the frame is complete.
func (d *Decoder) control(p []byte) (int, error) {
	if d.ctl == nil && len(p) >= int(d.ctlLen) {
		n := int(d.ctlLen)
		d.state = stHeader
		return n, d.deliverControl(p[:n])
	}
	if d.ctl == nil {
		d.ctl = ctlPool.Get().(*[MaxControlPayload]byte)
	}
	n := copy(d.ctl[d.ctlN:d.ctlLen], p)
	d.ctlN += uint8(n)
	if d.ctlN < d.ctlLen {
		return n, nil
	}
	buf := d.ctl
	d.ctl = nil
	d.state = stHeader
	err := d.deliverControl(buf[:d.ctlLen])
	ctlPool.Put(buf)
	return n, err
}

// deliverControl unmasks a whole control payload and hands it over.
func (d *Decoder) deliverControl(p []byte) error {
	if d.masked {
		Mask(d.key, 0, p)
	}
	h := Header{Fin: true, Opcode: d.op, Masked: d.masked, Key: d.key, Length: int64(len(p))}
	return d.h.OnControl(h, p)
}

// dropControl gives back the buffer of a cut control payload, if any.
func (d *Decoder) dropControl() {
	if d.ctl != nil {
		ctlPool.Put(d.ctl)
		d.ctl = nil
	}
}
