package wire

import (
	"errors"
	"fmt"
	"testing"
)

// event is one thing a Decoder reported, in a form that does not depend on
// how the bytes were split: a data frame's payload is recorded whole, when
// its last chunk arrives.
type event struct {
	kind byte   // 'F' data frame, 'P' its whole payload, 'C' control frame, 'E' error
	op   Opcode // F, C: the frame's opcode
	msg  Opcode // F: the message's opcode
	fin  bool   // F
	rsv  uint8  // F
	n    int64  // F: announced payload length
	p    string // P, C: payload
	code uint16 // E: close code, 0 for an error that is not a *ProtocolError
}

func (e event) String() string {
	switch e.kind {
	case 'F':
		return fmt.Sprintf("F(%v msg=%v fin=%t rsv=%#x n=%d)", e.op, e.msg, e.fin, e.rsv, e.n)
	case 'P':
		return fmt.Sprintf("P(%q)", e.p)
	case 'C':
		return fmt.Sprintf("C(%v %q)", e.op, e.p)
	}
	return fmt.Sprintf("E(%d)", e.code)
}

func evF(op, msg Opcode, fin bool, n int64) event {
	return event{kind: 'F', op: op, msg: msg, fin: fin, n: n}
}
func evFr(op Opcode, rsv uint8, fin bool, n int64) event {
	return event{kind: 'F', op: op, msg: op, fin: fin, rsv: rsv, n: n}
}
func evP(p string) event            { return event{kind: 'P', p: p} }
func evC(op Opcode, p string) event { return event{kind: 'C', op: op, p: p} }
func evE(code uint16) event         { return event{kind: 'E', code: code} }

func errEvent(err error) event {
	var pe *ProtocolError
	if errors.As(err, &pe) {
		return evE(pe.Code)
	}
	return evE(0)
}

// recorder is a FrameHandler that records events and checks the promises
// of the interface: payload only inside a data frame, no empty chunk but
// the last, exactly the announced number of bytes, last on the final one.
type recorder struct {
	events  []event
	pend    []byte
	inFrame bool
	want    int64
	bad     []string
	stopOn  Opcode // return errStop after a control frame of this opcode (0: never)
}

var errStop = errors.New("handler stop")

func (r *recorder) OnFrame(h Header, msg Opcode) error {
	if r.inFrame {
		r.bad = append(r.bad, fmt.Sprintf("OnFrame(%v) inside a frame", h))
	}
	r.inFrame, r.want = true, h.Length
	r.events = append(r.events, event{kind: 'F', op: h.Opcode, msg: msg, fin: h.Fin, rsv: h.Rsv, n: h.Length})
	return nil
}

func (r *recorder) OnPayload(p []byte, last bool) error {
	switch {
	case !r.inFrame:
		r.bad = append(r.bad, "OnPayload outside a frame")
	case len(p) == 0 && !last:
		r.bad = append(r.bad, "empty OnPayload that is not the last")
	}
	r.want -= int64(len(p))
	if last != (r.want == 0) {
		r.bad = append(r.bad, fmt.Sprintf("OnPayload last=%t with %d bytes still due", last, r.want))
	}
	r.pend = append(r.pend, p...)
	if last {
		r.events = append(r.events, evP(string(r.pend)))
		r.pend, r.inFrame = r.pend[:0], false
	}
	return nil
}

func (r *recorder) OnControl(h Header, p []byte) error {
	if !h.Fin || int64(len(p)) != h.Length || !h.Opcode.IsControl() {
		r.bad = append(r.bad, fmt.Sprintf("OnControl(%v) with %d bytes", h, len(p)))
	}
	r.events = append(r.events, evC(h.Opcode, string(p)))
	if r.stopOn != 0 && h.Opcode == r.stopOn {
		return errStop
	}
	return nil
}

// feedPieces feeds copies of pieces to a new decoder and returns its events,
// ending with the error if there is one. It checks after every Feed that a
// decoder between frames holds nothing, and that it takes nothing once
// failed.
func feedPieces(t testing.TB, cfg DecoderConfig, pieces [][]byte) []event {
	t.Helper()
	r := &recorder{}
	var d Decoder
	d.Init(cfg, r)
	defer d.Release()
	for _, piece := range pieces {
		err := d.Feed(append([]byte(nil), piece...))
		checkHolds(t, &d)
		if err != nil {
			before := len(r.events)
			if again := d.Feed([]byte{0x81, 0x00}); again != err || len(r.events) != before {
				t.Fatalf("after %v, Feed returned %v and made %d events", err, again, len(r.events)-before)
			}
			r.events = append(r.events, errEvent(err))
			break
		}
	}
	if len(r.bad) > 0 {
		t.Fatalf("handler contract broken: %v", r.bad)
	}
	return r.events
}

// checkHolds fails t if d keeps a buffer it should not: the control buffer
// only while a control payload is cut, nothing at all between frames.
func checkHolds(t testing.TB, d *Decoder) {
	t.Helper()
	if d.ctl != nil && (d.state != stControl || d.err != nil) {
		t.Fatalf("decoder holds a control buffer in state %d (err %v)", d.state, d.err)
	}
	if !d.InFrame() && (d.ctl != nil || d.hn != 0) {
		t.Fatal("decoder between frames holds bytes")
	}
}

// pullEvents decodes a whole stream the way the root package's pull path
// does (read.go: DecodeHeader, Reader.Next, the read limit, UTF8 chunk by
// chunk), as the reference the Decoder must agree with. A frame cut by the
// end of data reports what the pull path would have acted on before
// blocking: a data frame's header, nothing of a control frame.
func pullEvents(cfg DecoderConfig, data []byte) []event {
	var (
		ev    []event
		r     = Reader{Role: cfg.Role, AllowRsv1: cfg.AllowRsv1}
		valid UTF8
		check bool
		msg   int64
		limit = cfg.ReadLimit
	)
	if limit <= 0 {
		limit = 1<<63 - 1
	}
	for len(data) > 0 {
		h, n, err := DecodeHeader(data)
		if err == ErrShortHeader {
			return ev
		} else if err != nil {
			return append(ev, errEvent(err))
		}
		data = data[n:]
		op, err := r.Next(h)
		if err != nil {
			return append(ev, errEvent(err))
		}
		if h.Opcode.IsControl() {
			if int64(len(data)) < h.Length {
				return ev
			}
			p := append([]byte(nil), data[:h.Length]...)
			if h.Masked {
				Mask(h.Key, 0, p)
			}
			ev, data = append(ev, evC(h.Opcode, string(p))), data[h.Length:]
			continue
		}
		if h.Opcode != OpContinuation {
			check, msg = op == OpText && h.Rsv&Rsv1 == 0, 0
			valid.Reset()
		}
		if h.Length > limit-msg {
			return append(ev, evE(CloseTooBig))
		}
		msg += h.Length
		ev = append(ev, event{kind: 'F', op: h.Opcode, msg: op, fin: h.Fin, rsv: h.Rsv, n: h.Length})
		avail := min(int64(len(data)), h.Length)
		p := append([]byte(nil), data[:avail]...)
		if h.Masked {
			Mask(h.Key, 0, p)
		}
		if check && !valid.Write(p) {
			return append(ev, evE(CloseInvalidPayload))
		}
		if avail < h.Length {
			return ev
		}
		if check && h.Fin && !valid.Complete() {
			return append(ev, evE(CloseInvalidPayload))
		}
		ev, data = append(ev, evP(string(p))), data[avail:]
	}
	return ev
}

// testKey masks the frames the tests build. Its bytes are below 0x80, so
// ASCII stays ASCII whether masked or not (the benchmarks rely on it).
var testKey = [4]byte{0x37, 0x7a, 0x21, 0x3d}

// frame builds one frame: b0 is the first header byte (FIN, RSV, opcode),
// masked uses testKey. The minimal length encoding is used.
func frame(b0 byte, masked bool, payload string) []byte {
	h := Header{Fin: b0&0x80 != 0, Rsv: b0 & 0x70, Opcode: Opcode(b0 & 0x0f), Masked: masked, Length: int64(len(payload))}
	if masked {
		h.Key = testKey
	}
	b := AppendHeader(nil, h)
	start := len(b)
	b = append(b, payload...)
	if masked {
		Mask(h.Key, 0, b[start:])
	}
	return b
}

// cat concatenates frames into one stream.
func cat(frames ...[]byte) []byte {
	var b []byte
	for _, f := range frames {
		b = append(b, f...)
	}
	return b
}

// splitAt cuts data at the given ascending positions.
func splitAt(data []byte, cuts ...int) [][]byte {
	var out [][]byte
	prev := 0
	for _, c := range cuts {
		out = append(out, data[prev:c])
		prev = c
	}
	return append(out, data[prev:])
}

// sameEvents fails t unless got and want are equal.
func sameEvents(t testing.TB, what string, got, want []event) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s:\n got  %v\n want %v", what, got, want)
	}
}
