package tether

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/tetherws/tether/internal/bufpool"
	"github.com/tetherws/tether/internal/poll"
	"github.com/tetherws/tether/internal/wire"
)

// driver runs a connection on the event engine (EnginePoll): the loop
// reads its socket into the loop's own buffer and feeds the push decoder,
// which checks every rule the pull path checks, in the same order; the
// driver then does on the loop what the reader goroutine does: it answers
// pings, settles pongs, assembles messages and queues them for Read, or
// for Serve and Go, whose handle runs on a goroutine started while there
// are messages to handle. What may block (the closing handshake, a
// failure's lingering, the end of Go's serving) runs on a goroutine of its
// own, started at the end, with the pull code both engines share.
//
// Backpressure: once ReadAhead bytes wait for the application, the loop
// stops reading the socket (TCP then pushes back on the sender) and
// keepalive suspends its ping timeout, as the reader goroutine does when
// it stops on a full inbox (stall.go); a pong the loop cannot write
// because the peer does not read stops reading too, until the queue
// drains.
type driver struct {
	c     *conn
	pc    *poll.Conn
	dec   wire.Decoder
	addrs sockAddrs
	ext   *driverExt // made by the first that needs it: most connections never do

	// the message being assembled; the loop's alone
	cur        *[]byte
	start      int32 // where the current frame's payload begins in cur
	typ        MessageType
	pooled     bool
	compressed bool
	first      bool // the current frame begins its message
	fin        bool // the current frame ends it

	// Reading is paused while either holds; they change, and the engine
	// is told, under mu, so that a resume cannot overtake a pause. mu also
	// guards the net.Conn side's fields (ext) and the serving state below.
	mu          sync.Mutex
	stalled     bool // for room in the inbox
	pongBlocked bool // until the write queue drains, for a pong

	// Serve and Go: serving says a worker is handing messages to handle
	// (one at most per connection, so handle sees them one at a time, in
	// order); next is the message handed to it directly (always a pooled
	// buffer), nextTyp its type. Under mu.
	serving bool
	nextTyp MessageType
	next    *[]byte

	stalledHint atomic.Bool // stalled, read without mu
	ended       atomic.Bool // the loop no longer decodes: the end phase runs
}

// driverExt is what only some connections need of their driver, under its
// mu: a write deadline, a worker to wait for, the end phase's reader.
type driverExt struct {
	wdl    int64              // write deadline, unix nanos; 0 for none
	wstop  context.CancelFunc // ends a Write waiting for room when the deadline moves
	served chan struct{}      // closed when the worker stops serving
	pull   *pullBuf           // made when the end phase begins
}

// extLocked returns d.ext, made if need be; mu is held.
func (d *driver) extLocked() *driverExt {
	if d.ext == nil {
		d.ext = &driverExt{}
	}
	return d.ext
}

// errEnd stops the decoder at a close frame: what follows is ignored
// (RFC 6455 section 5.5.1).
var errEnd = errors.New("tether: end of stream")

// loop returns the connection's driver under the event engine, nil under
// the goroutine engine. The driver is the connection's net.Conn there, so
// the connection keeps no field for it.
func (c *conn) loop() *driver {
	d, _ := c.nc.(*driver)
	return d
}

// takeSocket hands the connection's socket to the event engine, which
// reads it once start is called; it reports false, leaving nc as it was,
// when the engine cannot take it.
func (c *conn) takeSocket(nc net.Conn, early *bufio.Reader) bool {
	var leftover []byte
	if early != nil && early.Buffered() > 0 {
		leftover, _ = early.Peek(early.Buffered())
	}
	d := &driver{c: c}
	d.addrs.set(nc)
	d.dec.Init(wire.DecoderConfig{Role: c.role, AllowRsv1: c.deflate != nil, ReadLimit: c.cfg.readLimit}, d)
	pc, err := takeSocket(nc, leftover, d)
	if err != nil {
		return false
	}
	d.pc = pc
	c.nc = d // see loop
	return true
}

// OnData decodes what the loop read.
func (d *driver) OnData(_ *poll.Conn, p []byte) {
	if d.ended.Load() {
		d.feed(p)
		return
	}
	d.c.lastRecv.Store(d.c.cfg.clock.Now().UnixNano())
	n, err := d.dec.Decode(p)
	switch {
	case err == nil:
	case err == wire.ErrPause:
		d.pc.Unread(p[n:]) // delivered first when reading resumes
	case err == errEnd:
		d.feed(p[n:]) // the client's drain reads up to the server's EOF
	default:
		// The peer broke the protocol: fail the connection in order, then
		// linger, discarding up to its close frame.
		left := d.dec.Left()
		d.toEnd(p[n:])
		q, hold := d.c.orderHold() // now, as a reader goroutine would
		go d.c.endReading(func() {
			d.c.waitOrder(q, hold)
			d.c.fail(err, left)
		})
	}
}

// toEnd begins the end phase: the loop decodes no more, and what it reads
// goes to the pull reader of the goroutine that ends the connection.
func (d *driver) toEnd(rest []byte) {
	d.mu.Lock()
	d.ended.Store(true)
	if d.stalled || d.pongBlocked {
		d.pc.ResumeRead()
	}
	d.mu.Unlock()
	d.c.br = newConnReader(d, nil)
	d.startPull(rest)
}

// OnClose runs once the socket is closed: by the peer, by an error, or
// by this side.
func (d *driver) OnClose(_ *poll.Conn, err error) {
	defer socketReleased()
	d.dec.Release()
	if d.cur != nil && d.pooled {
		bufpool.Put(d.cur)
	}
	d.cur = nil
	if errors.Is(err, poll.ErrClosed) || errors.Is(err, poll.ErrEngineClosed) {
		err = net.ErrClosed
	} else if err == io.EOF && d.dec.InFrame() {
		err = io.ErrUnexpectedEOF
	}
	if d.ended.Load() {
		d.endPull(err)
		return
	}
	// Nothing reads after this end (readFailed only records it), so the
	// end phase's reader and buffer are not made.
	d.ended.Store(true)
	if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, net.ErrClosed) {
		err = d.opErr("read", err)
	}
	go d.c.endReading(func() { d.c.readFailed(err) })
}

// OnDrain runs when the write queue has been flushed: a pong held back for
// it goes out, and reading goes on.
func (d *driver) OnDrain(*poll.Conn) {
	d.mu.Lock()
	blocked := d.pongBlocked
	d.pongBlocked = false
	d.mu.Unlock()
	if !blocked {
		return
	}
	d.flushPong()
	d.mu.Lock()
	if !d.pongBlocked && !d.stalled && !d.ended.Load() {
		d.pc.ResumeRead()
	}
	d.mu.Unlock()
}

// OnFrame starts a data frame.
func (d *driver) OnFrame(h wire.Header, msg wire.Opcode) error {
	if h.Opcode != wire.OpContinuation {
		d.typ = MessageType(msg)
		d.compressed = h.Rsv&wire.Rsv1 != 0
		d.cur, d.pooled = d.c.messageBuf(h, d.compressed)
	}
	d.start, d.first, d.fin = int32(len(*d.cur)), h.Opcode != wire.OpContinuation, h.Fin
	return nil
}

// OnPayload adds a data frame's bytes to the message; the last frame's
// last bytes complete it.
func (d *driver) OnPayload(p []byte, last bool) error {
	if b := *d.cur; cap(b)-len(b) < len(p) {
		d.cur = growCap(d.cur, len(b)+len(p))
	}
	*d.cur = append(*d.cur, p...)
	if !last {
		return nil
	}
	c := d.c
	if c.cfg.logFrames {
		c.logFrame("<", d.header(), (*d.cur)[d.start:])
	}
	if !d.fin {
		return nil
	}
	cur := d.cur
	d.cur = nil
	if d.compressed {
		out, err := c.inflate(cur, d.typ == Text)
		if err != nil {
			return err
		}
		cur = out
	}
	m := message{typ: d.typ, p: *cur}
	if d.pooled {
		m.pooled = cur
	} else {
		c.whole = nil // the application's now
	}
	if d.dispatch(m) {
		d.stall()
		return wire.ErrPause // stop right here: the rest waits in the engine
	}
	return nil
}

// header is the current data frame's header, as far as a frame record
// shows it.
func (d *driver) header() wire.Header {
	h := wire.Header{Fin: d.fin, Opcode: wire.OpContinuation, Length: int64(len(*d.cur)) - int64(d.start), Masked: d.c.role == wire.Server}
	if d.first {
		h.Opcode = wire.Opcode(d.typ)
		if d.compressed {
			h.Rsv = wire.Rsv1
		}
	}
	return h
}

// dispatch queues a whole message for Read, or hands it to handle under
// Serve and Go; it reports whether the queue is full, so that the loop
// stops reading there.
func (d *driver) dispatch(m message) (full bool) {
	c := d.c
	c.stats.messagesIn.Add(1)
	c.stats.bytesIn.Add(int64(len(m.p)))
	closing := c.closeSent.Load()
	if c.srv.Load() != nil {
		return d.toHandle(m, closing)
	}
	added, full := c.queue().push(m, c.full, !closing)
	if !added {
		m.recycle() // closing: never let a full queue hold up the handshake
	}
	if c.srv.Load() != nil {
		// Serve or Go began between the look above and the push, and
		// may have taken the queue before m was in: m is ours to hand.
		d.mu.Lock()
		d.startServing()
		d.mu.Unlock()
	}
	return full && !closing
}

// toHandle hands m to the goroutine that calls handle: straight to a new
// one when none runs and nothing waits (an idle connection served with Go
// never makes the queue), else through the queue, which it drains.
func (d *driver) toHandle(m message, closing bool) (full bool) {
	c := d.c
	d.mu.Lock()
	if !d.serving && m.pooled != nil {
		if q := c.msgs.Load(); q == nil || q.empty() {
			d.serving, d.next, d.nextTyp = true, m.pooled, m.typ
			d.mu.Unlock()
			startWorker(d)
			return false
		}
	}
	// Under mu, so that the goroutine, which looks at the queue under mu
	// before it ends, cannot miss m.
	added, full := c.queue().push(m, c.full, !closing)
	start := d.startServing()
	d.mu.Unlock()
	if !added {
		m.recycle()
	}
	if start {
		startWorker(d)
	}
	return full && !closing
}

// startServing marks the connection served, reporting whether the caller
// must start the goroutine; mu is held.
func (d *driver) startServing() bool {
	if d.serving {
		return false
	}
	d.serving = true
	return true
}

// serve runs on a worker: it calls handle with the message handed over,
// then with every queued one, until none is left.
func (d *driver) serve() {
	c := d.c
	for {
		d.mu.Lock()
		var m message
		has := d.next != nil
		if has {
			m = message{typ: d.nextTyp, p: *d.next, pooled: d.next}
		}
		d.next = nil
		d.mu.Unlock()
		if s := c.srv.Load(); s != nil {
			c.handleMu.Lock()
			if c.srv.Load() == s {
				if has {
					c.callHandle(s, m)
					has = false
				}
				c.handleQueuedLocked(s)
			}
			c.handleMu.Unlock()
		}
		if has {
			// Serving stopped (Serve's context): m waits for Read, ahead
			// of anything queued after it.
			c.queue().pushFront(m)
		}
		d.mu.Lock()
		if q := c.msgs.Load(); q == nil || q.empty() || c.srv.Load() == nil {
			d.serving = false
			if d.ext != nil && d.ext.served != nil {
				close(d.ext.served)
				d.ext.served = nil
			}
			d.mu.Unlock()
			return
		}
		d.mu.Unlock()
	}
}

// waitServed waits until no message is being handed to handle, or the
// connection has ended: the end of a connection served with Serve or Go
// comes after the handling of every message received before it.
func (d *driver) waitServed() {
	d.mu.Lock()
	if !d.serving {
		d.mu.Unlock()
		return
	}
	x := d.extLocked()
	if x.served == nil {
		x.served = make(chan struct{})
	}
	ch := x.served
	d.mu.Unlock()
	<-ch
}

// stall stops reading until the application makes room.
func (d *driver) stall() {
	d.mu.Lock()
	if !d.stalled {
		d.c.stallBegin()
		d.stalled = true
		d.stalledHint.Store(true)
		d.pc.PauseRead()
	}
	d.mu.Unlock()
	d.roomMade() // a message taken before stalled was set saw nothing to do
}

// roomMade resumes reading once the queue has room again, or the
// connection is closing and reads on for the peer's close frame.
func (d *driver) roomMade() {
	if !d.stalledHint.Load() {
		return
	}
	c := d.c
	d.mu.Lock()
	if !d.stalled {
		d.mu.Unlock()
		return
	}
	if q := c.msgs.Load(); q != nil && c.full(q.len()) && !c.closeSent.Load() && !c.isDone() {
		d.mu.Unlock()
		return
	}
	d.stalled = false
	d.stalledHint.Store(false)
	if !d.pongBlocked && !d.ended.Load() {
		d.pc.ResumeRead()
	}
	d.mu.Unlock()
	c.stallEnd()
}

// OnControl acts on a ping, a pong or a close frame, on the loop.
func (d *driver) OnControl(h wire.Header, p []byte) error {
	c := d.c
	c.logFrame("<", h, p)
	switch h.Opcode {
	case wire.OpPing:
		c.receivedPing(p)
		c.pong.set(p)
		if !d.flushPong() {
			return wire.ErrPause
		}
	case wire.OpPong:
		c.handlePong(p)
	case wire.OpClose:
		payload := append([]byte(nil), p...)
		q, hold := c.orderHold() // now, as a reader goroutine would
		d.toEnd(nil)
		go c.endReading(func() {
			c.waitOrder(q, hold)
			c.handleClose(payload)
		})
		return errEnd
	}
	return nil
}

// flushPong writes the pong for the latest ping, on the loop, unless a
// writer holds the frame lock (it sends the pong when it lets go) or the
// write queue is at its bound: then it reports false, and reading stops
// until the queue drains (the peer is not reading its pongs).
func (d *driver) flushPong() bool {
	c := d.c
	for c.pong.waiting() {
		if d.pc.Queued() >= writeQueueLimit {
			d.mu.Lock()
			d.pongBlocked = true
			d.pc.PauseRead()
			d.mu.Unlock()
			return false
		}
		if !c.frameSem.tryAcquire() {
			return true
		}
		if bp := c.pong.take(); bp != nil {
			d.writePong(*bp)
			bufpool.Put(bp)
		}
		c.frameSem.release()
	}
	return true
}

// sendPing writes keepalive ping p from the loop, or, when a writer holds
// the frame lock or the peer is not reading, from a goroutine that waits
// for them.
func (d *driver) sendPing(p *pendingPing) {
	c := d.c
	if !c.frameSem.tryAcquire() {
		go c.sendKeepalivePing(p)
		return
	}
	if d.pc.Queued() >= writeQueueLimit {
		c.frameSem.release()
		go c.sendKeepalivePing(p)
		return
	}
	if d.writeControl(wire.OpPing, p.payload[:]) {
		c.pingWritten(p)
	}
	c.frameSem.release()
	if c.pong.waiting() {
		d.flushPong() // a ping that came meanwhile
	}
}

// writePong writes a pong frame from the loop; the caller holds the frame
// lock and has checked there is room.
func (d *driver) writePong(p []byte) { d.writeControl(wire.OpPong, p) }

// writeControl writes a control frame straight to the engine's queue; the
// caller holds the frame lock and has checked there is room. It reports
// whether the frame went out.
func (d *driver) writeControl(op wire.Opcode, p []byte) bool {
	c := d.c
	if c.closeSent.Load() || c.isDone() {
		return false
	}
	h := wire.Header{Fin: true, Opcode: op, Length: int64(len(p))}
	if c.role == wire.Client {
		h.Masked, h.Key = true, newMaskKey()
	}
	var buf [wire.MaxHeaderSize + wire.MaxControlPayload]byte
	n := wire.PutHeader(buf[:], h)
	n += copy(buf[n:], p)
	if h.Masked {
		wire.Mask(h.Key, 0, buf[n-len(p):n])
	}
	if c.cfg.logFrames {
		c.logFrame(">", h, p)
	}
	if err := d.pc.Send(buf[:n]); err != nil {
		go c.writeFailed(d.opErr("write", err))
		return false
	}
	return true
}
