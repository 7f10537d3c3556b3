package conformance

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tetherws/tether"
)

// Time budgets. A failing case must see Tether's close frame within
// failBudget of the bad input, and the TCP connection end within closeBudget
// of the close frame.
const (
	failBudget  = 1 * time.Second
	closeBudget = 1 * time.Second
	stepTimeout = 5 * time.Second  // an echo or pong in a light case
	heavyStep   = 60 * time.Second // an echo in a family 9 case
	endBudget   = 3 * time.Second  // Tether's Read returning after the close
	writeBudget = 30 * time.Second // one write of the peer
)

// role is the role Tether plays in a run; the peer plays the other one.
type role string

const (
	roleServer role = "server" // Tether echo server, raw test client
	roleClient role = "client" // Tether echo client, raw test server
)

// caseFailure is how a peer check fails a case: Fatalf panics with it and
// the runner recovers it, so that a known library bug can be reported as
// such instead of failing the run.
type caseFailure struct{ msg string }

// eventKind is what the peer received.
type eventKind int

const (
	evMessage   eventKind = iota // a whole data message
	evPing                       // a ping (Tether has keepalive off, so never expected)
	evPong                       // a pong
	evClose                      // a close frame
	evEOF                        // the TCP connection ended (EOF or reset)
	evViolation                  // Tether sent something RFC 6455 forbids
)

// Event is one thing the peer received: a whole message, a control frame,
// the end of the TCP stream, or a protocol violation by Tether.
type Event struct {
	Kind   eventKind
	Op     byte   // opText or opBinary for evMessage
	Data   []byte // message or control payload
	Code   int    // evClose: the status code, 1005 for an empty payload
	Reason string // evClose
	Err    error  // evEOF, evViolation
	At     time.Time
}

func (e Event) String() string {
	switch e.Kind {
	case evMessage:
		return fmt.Sprintf("%s message %s", opName(e.Op), short(e.Data))
	case evPing:
		return "PING " + short(e.Data)
	case evPong:
		return "PONG " + short(e.Data)
	case evClose:
		return fmt.Sprintf("CLOSE %d %q", e.Code, e.Reason)
	case evEOF:
		return fmt.Sprintf("TCP end (%v)", e.Err)
	case evViolation:
		return fmt.Sprintf("protocol violation by Tether: %v", e.Err)
	}
	return "?"
}

// short prints a payload for a message: its length and its first bytes.
func short(b []byte) string {
	const max = 24
	s := fmt.Sprintf("[%d bytes]", len(b))
	if len(b) == 0 {
		return s
	}
	cut := b
	if len(cut) > max {
		cut = cut[:max]
	}
	if utf8.Valid(cut) {
		s += fmt.Sprintf(" %q", cut)
	} else {
		s += fmt.Sprintf(" % x", cut)
	}
	if len(b) > max {
		s += "…"
	}
	return s
}

// Event patterns for optional events (see ExpectFail, ExpectCloseEcho).
func msgEvent(op byte, data []byte) Event { return Event{Kind: evMessage, Op: op, Data: data} }
func textEvent(s string) Event            { return msgEvent(opText, []byte(s)) }
func pongEvent(s string) Event            { return Event{Kind: evPong, Data: []byte(s)} }

func (e Event) matches(pat Event) bool {
	return e.Kind == pat.Kind && e.Op == pat.Op && bytes.Equal(e.Data, pat.Data)
}

// Peer is the raw-frame end of a case: a test client in the server role, a
// test server in the client role. Its methods fail the case (by panicking
// with a caseFailure) as soon as Tether does something unexpected.
type Peer struct {
	role  role
	id    string
	heavy bool
	nc    net.Conn
	br    *bufio.Reader
	ep    *endpoint

	events     chan Event
	quit       chan struct{}
	readerDone chan struct{}
	eof        *Event  // the end of the stream, once seen
	pending    []Event // events taken from the queue and put back
	finished   bool    // the case ran a closing expectation to its end

	traceMu sync.Mutex
	trace   []string
	sendErr error
}

func newPeer(r role, c *Case, nc net.Conn, br *bufio.Reader, ep *endpoint) *Peer {
	p := &Peer{
		role:       r,
		id:         c.ID,
		heavy:      c.Heavy,
		nc:         nc,
		br:         br,
		ep:         ep,
		events:     make(chan Event, 64),
		quit:       make(chan struct{}),
		readerDone: make(chan struct{}),
	}
	go p.readLoop()
	return p
}

// Fatalf fails the case.
func (p *Peer) Fatalf(format string, args ...any) {
	panic(caseFailure{msg: fmt.Sprintf(format, args...)})
}

func (p *Peer) tracef(format string, args ...any) {
	p.traceMu.Lock()
	defer p.traceMu.Unlock()
	if len(p.trace) < 200 {
		p.trace = append(p.trace, time.Now().Format("15:04:05.000")+" "+fmt.Sprintf(format, args...))
	}
}

func (p *Peer) traceString() string {
	p.traceMu.Lock()
	defer p.traceMu.Unlock()
	return strings.Join(p.trace, "\n")
}

// masks reports whether the peer masks f: a client must, a server must not,
// unless the case asks for the wrong masking.
func (p *Peer) masks(f Frame) bool {
	m := p.role == roleServer
	if f.Mask == maskWrong {
		m = !m
	}
	return m
}

// Encode returns the bytes of frames, masked as the peer's role requires.
func (p *Peer) Encode(frames ...Frame) []byte {
	n := 0
	for _, f := range frames {
		n += len(f.Payload) + 14
	}
	b := make([]byte, 0, n)
	for _, f := range frames {
		b = appendFrame(b, f, p.masks(f))
	}
	return b
}

// EncodeHeader returns the header of f announcing length bytes of payload,
// for a frame whose payload is never sent (read-limit cases).
func (p *Peer) EncodeHeader(f Frame, length uint64) []byte {
	return appendHeader(nil, f, p.masks(f), [4]byte{1, 2, 3, 4}, length)
}

func describeFrames(frames []Frame) string {
	var parts []string
	for i, f := range frames {
		if i == 4 {
			parts = append(parts, fmt.Sprintf("… %d more", len(frames)-4))
			break
		}
		s := fmt.Sprintf("%s fin=%t", opName(f.Op), f.Fin)
		if f.Rsv != 0 {
			s += fmt.Sprintf(" rsv=%d", f.Rsv)
		}
		if f.Mask == maskWrong {
			s += " wrong-mask"
		}
		parts = append(parts, s+" "+short(f.Payload))
	}
	return strings.Join(parts, ", ")
}

// write sends b in one write. A failed write is remembered, not fatal: the
// next expectation reports what Tether did.
func (p *Peer) write(b []byte) {
	if p.sendErr != nil {
		return
	}
	p.nc.SetWriteDeadline(time.Now().Add(writeBudget))
	if _, err := p.nc.Write(b); err != nil {
		p.sendErr = err
		p.tracef("write failed: %v", err)
	}
}

// Send writes frames in one write (one chop).
func (p *Peer) Send(frames ...Frame) {
	p.tracef("> %s", describeFrames(frames))
	p.write(p.Encode(frames...))
}

// SendSync writes each frame with its own write (frame-wise chops).
func (p *Peer) SendSync(frames ...Frame) {
	p.tracef("> frame-wise: %s", describeFrames(frames))
	for _, f := range frames {
		p.write(p.Encode(f))
	}
}

// SendChops writes frames as one byte stream cut into writes of n bytes
// (n = 1: octet-wise chops).
func (p *Peer) SendChops(n int, frames ...Frame) {
	p.tracef("> in chops of %d: %s", n, describeFrames(frames))
	p.writeChops(n, p.Encode(frames...))
}

func (p *Peer) writeChops(n int, b []byte) {
	for len(b) > 0 && p.sendErr == nil {
		m := min(n, len(b))
		p.write(b[:m])
		b = b[m:]
	}
}

// SendBytes writes raw bytes in one write.
func (p *Peer) SendBytes(what string, b []byte) {
	p.tracef("> %s (%d bytes)", what, len(b))
	p.write(b)
}

// emit hands an event to the case goroutine unless the case is over.
func (p *Peer) emit(ev Event) bool {
	ev.At = time.Now()
	select {
	case p.events <- ev:
		return true
	case <-p.quit:
		return false
	}
}

// readLoop reads Tether's frames, checks them against RFC 6455, reassembles
// messages and emits events until the stream ends.
func (p *Peer) readLoop() {
	defer close(p.readerDone)
	var (
		lastKey [4]byte
		haveKey bool
		inMsg   bool
		msgOp   byte
		parts   [][]byte // the fragments of the message being received
		size    int
		hdr     [14]byte
	)
	violation := func(format string, args ...any) {
		p.emit(Event{Kind: evViolation, Err: fmt.Errorf(format, args...)})
	}
	for {
		if _, err := io.ReadFull(p.br, hdr[:2]); err != nil {
			p.emit(Event{Kind: evEOF, Err: err})
			return
		}
		fin := hdr[0]&0x80 != 0
		rsv := hdr[0] & 0x70
		op := hdr[0] & 0x0f
		masked := hdr[1]&0x80 != 0
		var length uint64
		switch l := hdr[1] & 0x7f; l {
		case 126:
			if _, err := io.ReadFull(p.br, hdr[2:4]); err != nil {
				violation("stream ends inside a frame header: %v", err)
				return
			}
			length = uint64(binary.BigEndian.Uint16(hdr[2:4]))
			if length < 126 {
				violation("%s frame length %d not minimally encoded", opName(op), length)
				return
			}
		case 127:
			if _, err := io.ReadFull(p.br, hdr[2:10]); err != nil {
				violation("stream ends inside a frame header: %v", err)
				return
			}
			length = binary.BigEndian.Uint64(hdr[2:10])
			if length <= 0xffff {
				violation("%s frame length %d not minimally encoded", opName(op), length)
				return
			}
		default:
			length = uint64(l)
		}
		var key [4]byte
		if masked {
			if _, err := io.ReadFull(p.br, key[:]); err != nil {
				violation("stream ends inside a frame header: %v", err)
				return
			}
		}
		switch {
		case p.role == roleServer && masked:
			violation("masked %s frame from the server", opName(op))
			return
		case p.role == roleClient && !masked:
			violation("unmasked %s frame from the client", opName(op))
			return
		case rsv != 0:
			violation("%s frame with RSV bits %#x", opName(op), rsv>>4)
			return
		case masked && haveKey && key == lastKey:
			violation("%s frame reuses the masking key % x of the frame before", opName(op), key)
			return
		case length > 64<<20:
			violation("%s frame of %d bytes", opName(op), length)
			return
		}
		lastKey, haveKey = key, masked
		payload := make([]byte, length)
		if _, err := io.ReadFull(p.br, payload); err != nil {
			violation("stream ends inside a %s frame (%d bytes): %v", opName(op), length, err)
			return
		}
		if masked {
			maskBytes(key, 0, payload)
		}
		if op >= 0x8 {
			if !fin || length > 125 {
				violation("bad control frame: %s fin=%t len=%d", opName(op), fin, length)
				return
			}
		}
		switch op {
		case opText, opBinary:
			if inMsg {
				violation("new %s frame inside a fragmented message", opName(op))
				return
			}
			inMsg, msgOp, parts, size = true, op, [][]byte{payload}, len(payload)
		case opCont:
			if !inMsg {
				violation("continuation frame without a message")
				return
			}
			parts, size = append(parts, payload), size+len(payload)
		case opPing:
			if !p.emit(Event{Kind: evPing, Data: payload}) {
				return
			}
			continue
		case opPong:
			if !p.emit(Event{Kind: evPong, Data: payload}) {
				return
			}
			continue
		case opClose:
			code, reason, err := parseClosePayload(payload)
			if err != nil {
				violation("bad close frame % x: %v", payload, err)
				return
			}
			if !p.emit(Event{Kind: evClose, Data: payload, Code: code, Reason: reason}) {
				return
			}
			continue
		default:
			violation("frame with reserved opcode %#x", op)
			return
		}
		if !fin {
			continue
		}
		msg := parts[0]
		if len(parts) > 1 {
			msg = make([]byte, 0, size)
			for _, part := range parts {
				msg = append(msg, part...)
			}
		}
		if msgOp == opText && !utf8.Valid(msg) {
			violation("text message that is not UTF-8: %s", short(msg))
			return
		}
		if !p.emit(Event{Kind: evMessage, Op: msgOp, Data: msg}) {
			return
		}
		inMsg, parts = false, nil
	}
}

// Next returns the next event, failing the case after d.
func (p *Peer) Next(d time.Duration, what string) Event {
	if p.eof != nil {
		return *p.eof
	}
	if len(p.pending) > 0 {
		ev := p.pending[0]
		p.pending = p.pending[1:]
		return p.got(ev)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case ev := <-p.events:
		return p.got(ev)
	case <-t.C:
		msg := fmt.Sprintf("timed out after %v waiting for %s", d, what)
		if p.sendErr != nil {
			msg += fmt.Sprintf(" (a write failed before: %v)", p.sendErr)
		}
		p.Fatalf("%s", msg)
	}
	panic("unreachable")
}

func (p *Peer) got(ev Event) Event {
	p.tracef("< %v", ev)
	if ev.Kind == evEOF || ev.Kind == evViolation {
		p.eof = &ev
	}
	if ev.Kind == evViolation {
		p.Fatalf("%v", ev)
	}
	return ev
}

func (p *Peer) step() time.Duration {
	if p.heavy {
		return heavyStep
	}
	return stepTimeout
}

// ExpectMessage expects the next event to be the message op/data.
func (p *Peer) ExpectMessage(op byte, data []byte) {
	what := fmt.Sprintf("%s message %s", opName(op), short(data))
	ev := p.Next(p.step(), what)
	if ev.Kind != evMessage || ev.Op != op || !bytes.Equal(ev.Data, data) {
		p.Fatalf("got %v, want %s%s", ev, what, diff(ev.Data, data))
	}
}

// ExpectText expects an echoed text message.
func (p *Peer) ExpectText(s string) { p.ExpectMessage(opText, []byte(s)) }

// ExpectPong expects the next event to be a pong with payload.
func (p *Peer) ExpectPong(payload []byte) {
	ev := p.Next(p.step(), "PONG "+short(payload))
	if ev.Kind != evPong || !bytes.Equal(ev.Data, payload) {
		p.Fatalf("got %v, want PONG %s", ev, short(payload))
	}
}

// diff says where two payloads of a failed comparison part.
func diff(got, want []byte) string {
	if len(got) != len(want) {
		return fmt.Sprintf(" (length %d, want %d)", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Sprintf(" (first difference at byte %d: %#x, want %#x)", i, got[i], want[i])
		}
	}
	return ""
}

// takeOptional consumes ev if it matches the next of the optional patterns
// still allowed, in order.
func takeOptional(ev Event, optional *[]Event) bool {
	for i, pat := range *optional {
		if ev.matches(pat) {
			*optional = (*optional)[i+1:]
			return true
		}
	}
	return false
}

// ExpectFail expects Tether to fail the connection: a close frame with code
// within failBudget, optionally preceded by the optional events (in order,
// each at most once; Autobahn's non-strict outcomes), then the TCP
// connection closing within closeBudget. Tether's Read must end with a
// *CloseError of that code that Tether initiated.
func (p *Peer) ExpectFail(code int, optional ...Event) {
	p.expectFail(code, false, failBudget, optional)
}

// ExpectFailOrDrop is ExpectFail where Autobahn also accepts a TCP drop
// without a close frame.
func (p *Peer) ExpectFailOrDrop(code int) {
	p.expectFail(code, true, failBudget, nil)
}

// TryExpectFail waits up to d for Tether to fail the connection with code. It
// reports false, with nothing consumed, if Tether stayed silent; any other
// outcome is handled as by ExpectFail.
func (p *Peer) TryExpectFail(code int, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case ev := <-p.events:
		p.pending = append(p.pending, ev)
		p.expectFail(code, false, failBudget, nil)
		return true
	case <-t.C:
		return false
	}
}

// quiet waits d and reports true if nothing arrived; otherwise it returns the
// event, which stays consumed.
func (p *Peer) quiet(d time.Duration) (Event, bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case ev := <-p.events:
		return p.got(ev), false
	case <-t.C:
		return Event{}, true
	}
}

func (p *Peer) expectFail(code int, dropOK bool, budget time.Duration, optional []Event) {
	start := time.Now()
	what := fmt.Sprintf("Tether's close frame with code %d", code)
	for {
		left := budget - time.Since(start)
		if left <= 0 {
			left = time.Millisecond
		}
		ev := p.Next(left, what)
		switch {
		case ev.Kind == evClose:
			if ev.Code != code {
				p.Fatalf("got close code %d (%q), want %d", ev.Code, ev.Reason, code)
			}
			// Echo the close frame as a well-behaved peer does, then the
			// TCP connection must end.
			p.Send(closeFrame(uint16(code), ""))
			p.expectEOF("after Tether's close frame")
			p.finished = true
			p.expectTetherEnd(code, "local")
			return
		case ev.Kind == evEOF:
			if dropOK {
				p.finished = true
				return
			}
			p.Fatalf("TCP connection ended without a close frame (%v), want %s", ev.Err, what)
		case takeOptional(ev, &optional):
		default:
			p.Fatalf("got %v, want %s", ev, what)
		}
	}
}

// expectEOF expects the TCP stream to end within closeBudget with nothing
// more sent.
func (p *Peer) expectEOF(when string) {
	ev := p.Next(closeBudget, "the TCP connection to close "+when)
	if ev.Kind != evEOF {
		p.Fatalf("got %v %s, want the TCP connection closed", ev, when)
	}
}

// CloseNormal ends a case the normal way: the peer closes with 1000 and
// expects the echo, then the end of the connection.
func (p *Peer) CloseNormal() {
	p.Send(closeFrame(1000, ""))
	p.ExpectCloseEcho(1000)
}

// ExpectCloseEcho expects Tether's answer to a close frame the peer sent:
// optional events, then a close frame with code (1005: empty payload). A
// Tether server must then close the TCP connection within closeBudget; a
// Tether client waits for the server to close it, so the peer does. Tether's
// Read must end with a *CloseError of code that the peer initiated.
func (p *Peer) ExpectCloseEcho(code int, optional ...Event) {
	what := fmt.Sprintf("the echo of the close frame (code %d)", code)
	for {
		ev := p.Next(p.step(), what)
		switch {
		case ev.Kind == evClose:
			// An empty close (1005) may be answered with an empty one or 1000.
			if ev.Code != code && !(code == 1005 && ev.Code == 1000) {
				p.Fatalf("got close code %d (%q), want %d", ev.Code, ev.Reason, code)
			}
			if p.role == roleServer {
				p.expectEOF("after the closing handshake")
			}
			p.finished = true
			p.expectTetherEnd(code, "peer")
			return
		case takeOptional(ev, &optional):
		default:
			p.Fatalf("got %v, want %s", ev, what)
		}
	}
}

// expectTetherEnd checks how Tether's side saw the end: its Read must return
// a *CloseError with code and initiator.
func (p *Peer) expectTetherEnd(code int, initiator string) {
	err, ok := p.ep.wait(endBudget)
	if !ok {
		p.Fatalf("Tether's Read did not return within %v of the close", endBudget)
	}
	var ce *tether.CloseError
	if !errors.As(err, &ce) {
		p.Fatalf("Tether's Read ended with %v (%T), want a *tether.CloseError", err, err)
	}
	if int(ce.Code) != code || ce.Initiator != initiator {
		p.Fatalf("Tether's CloseError is code %d initiator %q (%v), want code %d initiator %q",
			ce.Code, ce.Initiator, ce, code, initiator)
	}
}

// ExpectTetherClose expects a close frame that Tether initiated with code
// and reason, optionally sends more frames (which Tether must ignore), then
// echoes the close. A Tether server must close the TCP connection within
// closeBudget; a Tether client waits for the peer to close it. Conn.Close
// must return nil and Read a *CloseError that Tether initiated.
func (p *Peer) ExpectTetherClose(code int, reason string, after ...Frame) {
	ev := p.Next(p.step(), fmt.Sprintf("Tether's close frame %d %q", code, reason))
	if ev.Kind != evClose || ev.Code != code || ev.Reason != reason {
		p.Fatalf("got %v, want Tether's close frame %d %q", ev, code, reason)
	}
	p.Send(append(after, closeFrame(uint16(code), ""))...)
	if p.role == roleServer {
		p.expectEOF("after the closing handshake")
	} else {
		if ev, quiet := p.quiet(100 * time.Millisecond); !quiet {
			p.Fatalf("got %v after the closing handshake", ev)
		}
		p.nc.Close()
	}
	p.finished = true
	p.expectTetherEnd(code, "local")
	if !p.ep.closeCalled || p.ep.closeErr != nil {
		p.Fatalf("Conn.Close returned %v, want nil after a complete closing handshake", p.ep.closeErr)
	}
}

// ExpectFailOrWait accepts either outcome of an announced frame that Tether
// may take or refuse: a failure with code, or silence, after which the peer
// drops the connection.
func (p *Peer) ExpectFailOrWait(code int) {
	if ev, quiet := p.quiet(500 * time.Millisecond); !quiet {
		p.pending = append(p.pending, ev)
		p.eof = nil
		p.ExpectFail(code)
		return
	}
	p.Drop()
}

// Drop ends the case by closing the TCP connection without a closing
// handshake; Tether must then end the connection with 1006.
func (p *Peer) Drop() {
	p.tracef("> drop the TCP connection")
	p.nc.Close()
	p.finished = true
	p.expectTetherEnd(1006, "peer")
}

// ExpectInOrder expects exactly the events, in this order: what a strict
// endpoint sends before it fails the connection (the echo of the messages
// received before a bad frame).
func (p *Peer) ExpectInOrder(events ...Event) {
	for _, e := range events {
		if ev := p.Next(p.step(), e.String()); !ev.matches(e) {
			p.Fatalf("got %v, want %v first", ev, e)
		}
	}
}

// ExpectAll expects exactly the events, in any order.
func (p *Peer) ExpectAll(events ...Event) {
	left := append([]Event(nil), events...)
	for len(left) > 0 {
		var names []string
		for _, e := range left {
			names = append(names, e.String())
		}
		what := strings.Join(names, " and ")
		ev := p.Next(p.step(), what)
		found := false
		for i, e := range left {
			if ev.matches(e) {
				left = append(left[:i], left[i+1:]...)
				found = true
				break
			}
		}
		if !found {
			p.Fatalf("got %v, want %s", ev, what)
		}
	}
}

// cleanup ends the peer's side and waits for its reader.
func (p *Peer) cleanup() {
	close(p.quit)
	p.nc.Close()
	<-p.readerDone
}
