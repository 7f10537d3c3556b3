// Package deflate is permessage-deflate's compression machinery (RFC 7692),
// built so that an idle connection costs almost nothing: flate writers and
// readers come from pools shared by every connection and go back after each
// message, and a connection with context takeover keeps only its sliding
// window (at most 2^bits bytes per direction), as lxzan/gws does.
package deflate

import (
	"bytes"
	"errors"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/tetherws/tether/internal/bufpool"
)

// tail is appended to a compressed message before inflating: the 4 bytes
// RFC 7692 strips (section 7.2.2), then an empty final stored block so the
// stream ends with io.EOF instead of an unexpected EOF.
var tail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// ErrTooBig is returned when a message inflates past its limit.
var ErrTooBig = errors.New("deflate: message inflates past the limit")

// DefaultLevel is the compression level when none is given: the fastest.
// It costs a fraction of the CPU of the higher levels for output a little
// larger, which is the trade most servers want (gorilla and gws make it
// too).
const DefaultLevel = flate.BestSpeed

var (
	windowWriters [15]sync.Pool // window-limited writers, by window bits 8-14
	levelWriters  [10]sync.Pool // 32 KiB-window writers, by level 1-9
)

// writerPool returns the pool of writers for a window of 2^bits at level.
// Levels apply with the full window (15 bits); a smaller window takes
// klauspost's window-limited encoder, whose effort is about level 5.
func writerPool(bits, level int) *sync.Pool {
	if bits < 15 {
		return &windowWriters[bits]
	}
	return &levelWriters[level]
}

func getWriter(bits, level int) *flate.Writer {
	if w, ok := writerPool(bits, level).Get().(*flate.Writer); ok {
		return w
	}
	var (
		w   *flate.Writer
		err error
	)
	if bits < 15 {
		w, err = flate.NewWriterWindow(nil, 1<<bits)
	} else {
		w, err = flate.NewWriter(nil, level)
	}
	if err != nil {
		panic(err) // bits (8-15) and level (1-9) are validated before
	}
	return w
}

func putWriter(bits, level int, w *flate.Writer) {
	w.ResetDict(nil, nil) // drop references to the connection's window
	writerPool(bits, level).Put(w)
}

var readers sync.Pool

// appendWriter collects compressed output into a pooled buffer.
type appendWriter struct{ b *[]byte }

func (a appendWriter) Write(p []byte) (int, error) {
	*a.b = append(*a.b, p...)
	return len(p), nil
}

// window is the last 2^bits bytes of a direction's plaintext, the history a
// context-takeover peer may refer back into.
type window struct {
	size int
	b    []byte
}

func (w *window) add(p []byte) {
	if w.size == 0 {
		return
	}
	if w.b == nil {
		w.b = make([]byte, 0, w.size)
	}
	if len(p) >= w.size {
		w.b = append(w.b[:0], p[len(p)-w.size:]...)
		return
	}
	if keep := w.size - len(p); len(w.b) > keep {
		n := copy(w.b, w.b[len(w.b)-keep:])
		w.b = w.b[:n]
	}
	w.b = append(w.b, p...)
}

// Compressor compresses one connection's outgoing messages.
type Compressor struct {
	Bits     int // window bits the peer allows, 8-15
	Level    int // flate level, 1 (fastest) to 9 (smallest)
	hist     window
	takeover bool
}

// NewCompressor returns a compressor for a window of 2^bits bytes at level
// (1-9; any other value means DefaultLevel); with takeover, messages may
// refer back into earlier ones.
func NewCompressor(bits, level int, takeover bool) *Compressor {
	if level < flate.BestSpeed || level > flate.BestCompression {
		level = DefaultLevel
	}
	c := &Compressor{Bits: bits, Level: level, takeover: takeover}
	if takeover {
		c.hist.size = 1 << bits
	}
	return c
}

// Stream compresses one message as its bytes come.
type Stream struct {
	c   *Compressor
	w   *flate.Writer
	out *[]byte
}

// Begin starts a message whose compressed bytes are appended to *out.
func (c *Compressor) Begin(out *[]byte) *Stream {
	w := getWriter(c.Bits, c.Level)
	w.ResetDict(appendWriter{out}, c.hist.b)
	return &Stream{c: c, w: w, out: out}
}

// Write compresses p; output may lag behind input until Finish.
func (s *Stream) Write(p []byte) (int, error) {
	s.c.hist.add(p)
	return s.w.Write(p)
}

// Finish flushes the message and strips the sync marker, leaving *out ready
// to send. The stream must not be used afterwards.
func (s *Stream) Finish() error {
	err := s.w.Flush()
	putWriter(s.c.Bits, s.c.Level, s.w)
	s.w = nil
	if err == nil && !bytes.HasSuffix(*s.out, tail[:4]) {
		err = errors.New("deflate: flush produced no sync marker")
	}
	if err != nil {
		return err
	}
	*s.out = (*s.out)[:len(*s.out)-4]
	return nil
}

// Compress appends the compressed form of msg to *out.
func (c *Compressor) Compress(out *[]byte, msg []byte) error {
	s := c.Begin(out)
	s.Write(msg)
	return s.Finish()
}

// Sent records a message that went out compressed elsewhere (a prepared
// message compressed without history), so the window stays in step with
// the peer's.
func (c *Compressor) Sent(msg []byte) { c.hist.add(msg) }

// CompressOnce compresses msg with no history at level (0: DefaultLevel),
// in a form any peer that allows a window of 2^bits or more can inflate.
func CompressOnce(out *[]byte, msg []byte, bits, level int) error {
	return NewCompressor(bits, level, false).Compress(out, msg)
}

// Decompressor inflates one connection's incoming messages.
type Decompressor struct {
	hist window
	src  bytes.Reader
}

// NewDecompressor returns a decompressor; with takeover it keeps the last
// 2^bits bytes the peer may refer back into.
func NewDecompressor(bits int, takeover bool) *Decompressor {
	d := &Decompressor{}
	if takeover {
		d.hist.size = 1 << bits
	}
	return d
}

// Decompress inflates a message (its compressed payload, all fragments
// joined) into a pooled buffer. It stops with ErrTooBig as soon as the output
// would exceed limit bytes, so a small bomb costs at most limit bytes.
// compressed must have spare capacity or it is copied once to append the tail.
func (d *Decompressor) Decompress(compressed []byte, limit int64) (*[]byte, error) {
	in := append(compressed, tail...)
	d.src.Reset(in)
	fr, _ := readers.Get().(io.ReadCloser)
	if fr == nil {
		fr = flate.NewReader(&d.src)
	}
	if err := fr.(flate.Resetter).Reset(&d.src, d.hist.b); err != nil {
		readers.Put(fr)
		return nil, err
	}
	defer readers.Put(fr)
	out := bufpool.Get(int(min(int64(len(compressed))*4+64, limit+1, 1<<20)))
	for {
		if len(*out) == cap(*out) {
			nb := bufpool.Get(int(min(int64(2*cap(*out)), limit+1)))
			*nb = append(*nb, *out...)
			bufpool.Put(out)
			out = nb
		}
		b := *out
		n, err := fr.Read(b[len(b):cap(b)])
		*out = b[:len(b)+n]
		if int64(len(*out)) > limit {
			bufpool.Put(out)
			return nil, ErrTooBig
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			bufpool.Put(out)
			return nil, err
		}
	}
	d.hist.add(*out)
	d.src.Reset(nil) // let go of the pooled input buffer
	return out, nil
}
