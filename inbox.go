package tether

import (
	"context"
	"sync"
)

// msgOverhead is what a queued message counts for besides its payload, so
// that a flood of tiny messages is bounded too.
const msgOverhead = 64

// inbox holds the received messages waiting for Read and Reader. The read
// loop keeps reading past them (answering pings, taking pongs) until
// ReadAhead bytes wait, or ReadQueue messages when that is set; then it
// stops reading until the application takes one: the stall, during which
// keepalive does not blame the peer for pongs it cannot see (stall.go).
type inbox struct {
	mu    sync.Mutex
	q     []message // q[head:] wait, oldest first
	head  int
	bytes int64 // what the waiting messages count for (payload + msgOverhead each)

	ready chan struct{} // a message came: wakes a waiting Read
	room  chan struct{} // a message was taken: wakes the stalled read loop

	// starved says a reader found the queue empty since the last push:
	// the application has taken every message and come back for more.
	// hold, while the read loop keeps an end back (inOrder), is closed
	// when that happens.
	starved bool
	hold    chan struct{}
}

func newInbox() *inbox {
	return &inbox{ready: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

// signal wakes one waiter on ch, if any; a wake-up already pending will do.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// len returns the number of waiting messages and what they count for.
func (q *inbox) len() (int, int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.q) - q.head, q.bytes
}

// push adds m; unless keep, it adds m only while not full (a closing
// connection keeps reading for the peer's close frame, but no longer
// queues without bound). It reports whether m was added and whether the
// queue is full after it, under one lock.
func (q *inbox) push(m message, full func(int, int64) bool, keep bool) (added, fullNow bool) {
	q.mu.Lock()
	if !keep && full(len(q.q)-q.head, q.bytes) {
		q.mu.Unlock()
		return false, true
	}
	q.q = append(q.q, m)
	q.bytes += int64(len(m.p)) + msgOverhead
	q.starved = false
	fullNow = full(len(q.q)-q.head, q.bytes)
	q.mu.Unlock()
	signal(q.ready)
	return true, fullNow
}

// empty reports whether no message waits.
func (q *inbox) empty() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.head == len(q.q)
}

// pushFront puts m back ahead of every waiting message.
func (q *inbox) pushFront(m message) {
	q.mu.Lock()
	if q.head > 0 {
		q.head--
		q.q[q.head] = m
	} else {
		q.q = append(q.q, message{})
		copy(q.q[1:], q.q)
		q.q[0] = m
	}
	q.bytes += int64(len(m.p)) + msgOverhead
	q.starved = false
	q.mu.Unlock()
	signal(q.ready)
}

// take removes and returns the oldest waiting message.
func (q *inbox) take() (message, bool) {
	q.mu.Lock()
	if q.head == len(q.q) {
		q.starved = true
		q.releaseLocked()
		q.mu.Unlock()
		return message{}, false
	}
	m := q.q[q.head]
	q.q[q.head] = message{}
	q.head++
	q.bytes -= int64(len(m.p)) + msgOverhead
	more := q.head < len(q.q)
	if !more {
		// Empty: start over at the front, and let a burst's big array go.
		q.head = 0
		if cap(q.q) > 64 {
			q.q = nil
		} else {
			q.q = q.q[:0]
		}
	}
	q.mu.Unlock()
	signal(q.room)
	if more {
		signal(q.ready) // another Read may be waiting too
	}
	return m, true
}

// holdEnd returns a channel closed once the application has taken every
// waiting message and come back for more, or nil when none waits: then
// the application has reached the end already (it may still be busy with
// the last message, but holding for an application that has stopped
// reading would hold the peer's close for CloseTimeout).
func (q *inbox) holdEnd() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.q) {
		return nil
	}
	if q.hold == nil {
		q.hold = make(chan struct{})
	}
	return q.hold
}

// release ends a hold.
func (q *inbox) release() {
	q.mu.Lock()
	q.releaseLocked()
	q.mu.Unlock()
}

func (q *inbox) releaseLocked() {
	if q.hold != nil {
		close(q.hold)
		q.hold = nil
	}
}

// full reports whether n waiting messages counting b bytes stop the read
// loop.
func (c *conn) full(n int, b int64) bool {
	return b >= c.cfg.readAhead || c.cfg.readQueue > 0 && n >= c.cfg.readQueue
}

// queue returns the inbox, made on first use: a connection served with
// Serve or Go from the start never queues a message and never pays for one.
func (c *conn) queue() *inbox {
	if q := c.msgs.Load(); q != nil {
		return q
	}
	q := newInbox()
	if !c.msgs.CompareAndSwap(nil, q) {
		return c.msgs.Load()
	}
	return q
}

// nextMessage waits for the next message; after the end it still returns
// the messages received before it, then the connection's *CloseError.
func (c *conn) nextMessage(ctx context.Context) (message, error) {
	q := c.queue()
	for {
		if m, ok := q.take(); ok {
			c.madeRoom()
			return m, nil
		}
		select {
		case <-q.ready:
		case <-c.doneChan():
			if m, ok := q.take(); ok {
				c.madeRoom()
				return m, nil
			}
			return message{}, c.err
		case <-ctx.Done():
			return message{}, ctx.Err()
		}
	}
}

// deliver queues m for Read and Reader, then, when the inbox is full, waits
// for the application to make room before the read loop goes on. It reports
// whether to keep reading.
func (c *conn) deliver(m message) bool {
	q := c.queue()
	closing := c.closeSent.Load()
	added, full := q.push(m, c.full, !closing)
	if !added {
		m.recycle() // closing: never let a full queue hold up the handshake
		return true
	}
	if closing || !full {
		return true
	}
	return c.waitRoom(q)
}

// waitRoom stops reading until the application takes a message, the
// connection starts closing or ends. Meanwhile keepalive knows the peer's
// pongs cannot be seen (stall.go).
func (c *conn) waitRoom(q *inbox) bool {
	c.stallBegin()
	defer c.stallEnd()
	closing := c.closingChan()
	for {
		select {
		case <-q.room:
			if !c.full(q.len()) {
				return true
			}
		case <-closing:
			return true
		case <-c.doneChan():
			return false
		}
	}
}

// drainTo hands every waiting message to f, oldest first.
func (q *inbox) drainTo(f func(message)) {
	for {
		m, ok := q.take()
		if !ok {
			return
		}
		f(m)
	}
}

// madeRoom tells the event engine's driver that a message was taken: a
// connection that stopped reading on a full queue reads again.
func (c *conn) madeRoom() {
	if d := c.loop(); d != nil {
		d.roomMade()
	}
}
