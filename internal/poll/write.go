package poll

import (
	"context"

	"github.com/tetherws/tether/internal/bufpool"
)

// Writing. A write goes straight to the socket when nothing is queued
// before it; what the socket does not take is copied into pooled buffers
// and write interest is armed; the loop flushes them (writev) when the
// socket is writable and disarms once they are gone. An idle connection
// holds no buffer.

// Write writes p whole, in order with other writes: to the socket at once
// when it can, the rest queued for the loop to flush. While the
// connection's queue holds WriteQueueLimit bytes or more, it first waits
// for room, until ctx is done. A write is all or nothing: on an error,
// none of p was taken (so a frame is never cut). The bound is soft: a
// write that starts under it is queued whole, so the queue holds at most
// the limit plus one write.
//
// Write must not be called from a loop's callback (it may wait for the
// loop): use Send there.
func (c *Conn) Write(ctx context.Context, p []byte) error {
	c.mu.Lock()
	for c.state == stateOpen && c.out.n >= c.l.e.opt.WriteQueueLimit {
		room := c.roomChan()
		c.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
		c.mu.Lock()
	}
	err := c.writeLocked(p)
	c.mu.Unlock()
	return err
}

// Send is Write without the wait: with the queue at its bound it returns
// ErrWouldBlock and takes nothing. It is the way to write from a callback.
func (c *Conn) Send(p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == stateOpen && c.out.n >= c.l.e.opt.WriteQueueLimit {
		return ErrWouldBlock
	}
	return c.writeLocked(p)
}

// Queued returns the number of bytes waiting to be written.
func (c *Conn) Queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.n
}

func (c *Conn) writeLocked(p []byte) error {
	if c.state != stateOpen {
		return c.err
	}
	if c.shutWrite {
		return ErrClosed
	}
	if c.out.n == 0 {
		n, err := sysWrite(int(c.fd), p)
		if err != nil {
			c.fail(err)
			return err
		}
		p = p[n:]
	}
	if len(p) == 0 {
		return nil
	}
	c.out.push(p)
	c.l.queued.Add(int64(len(p)))
	c.updateInterest()
	return nil
}

// roomChan returns the channel closed when the queue has room again or the
// connection ends, made on demand: a connection nobody waits on holds none.
func (c *Conn) roomChan() chan struct{} {
	if c.room == nil {
		c.room = make(chan struct{})
	}
	return c.room
}

// wakeWriters releases the Writes waiting for room; c.mu is held.
func (c *Conn) wakeWriters() {
	if c.room != nil {
		close(c.room)
		c.room = nil
	}
}

// flush writes what c has queued, on the loop, when the socket is writable.
func (l *loop) flush(c *Conn) {
	c.mu.Lock()
	if c.state == stateClosed || c.out.n == 0 {
		c.mu.Unlock()
		return
	}
	l.vecs = c.out.vecs(l.vecs[:0])
	n, err := sysWritev(int(c.fd), l.vecs, &l.scratch)
	clear(l.vecs)
	if err != nil {
		c.setErr(err)
		c.mu.Unlock()
		l.closeConn(c, err)
		return
	}
	c.out.advance(n)
	l.queued.Add(-int64(n))
	if c.out.n < l.e.opt.WriteQueueLimit {
		c.wakeWriters()
	}
	drained := c.out.n == 0
	if drained {
		c.updateInterest()
		if c.shutWrite {
			sysShutdownWrite(int(c.fd))
		}
	}
	closing := drained && c.state == stateDraining
	c.mu.Unlock()
	if closing {
		l.closeConn(c, ErrClosed)
		return
	}
	if d, ok := c.h.(Drainer); ok && drained {
		d.OnDrain(c)
	}
}

// queue is a connection's bytes waiting for the socket, in pooled buffers.
type queue struct {
	bufs []*[]byte // oldest first; bufs[0] is written from off
	off  int
	n    int // bytes waiting
}

// Queue buffers are sized to what is queued, from bufpool's smallest class
// up to maxChunk, so a few queued bytes do not hold a large buffer.
const maxChunk = 64 << 10

// push copies p in, filling the last buffer before taking new ones.
func (q *queue) push(p []byte) {
	q.n += len(p)
	if k := len(q.bufs); k > 0 {
		last := q.bufs[k-1]
		m := copy((*last)[len(*last):cap(*last)], p)
		*last = (*last)[:len(*last)+m]
		p = p[m:]
	}
	for len(p) > 0 {
		b := bufpool.Get(min(len(p), maxChunk))
		m := copy((*b)[:cap(*b)], p)
		*b = (*b)[:m]
		q.bufs = append(q.bufs, b)
		p = p[m:]
	}
}

// vecs appends the waiting bytes' buffers to dst, up to its capacity.
func (q *queue) vecs(dst [][]byte) [][]byte {
	for i, b := range q.bufs {
		if len(dst) == cap(dst) {
			break
		}
		if i == 0 {
			dst = append(dst, (*b)[q.off:])
		} else {
			dst = append(dst, *b)
		}
	}
	return dst
}

// advance drops n written bytes, giving back the buffers emptied.
func (q *queue) advance(n int) {
	q.n -= n
	n += q.off
	for len(q.bufs) > 0 && n >= len(*q.bufs[0]) {
		n -= len(*q.bufs[0])
		bufpool.Put(q.bufs[0])
		q.bufs[0] = nil
		q.bufs = q.bufs[1:]
	}
	q.off = n
	if len(q.bufs) == 0 {
		q.bufs, q.off = nil, 0 // an idle connection keeps no slice either
	}
}

// reset drops everything queued.
func (q *queue) reset() {
	for _, b := range q.bufs {
		bufpool.Put(b)
	}
	*q = queue{}
}
