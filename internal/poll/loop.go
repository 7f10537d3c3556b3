package poll

import (
	"context"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// loop is one event loop: a poller, the connections registered on it, a
// read buffer they share, its timers and queues of work from other
// goroutines. Fields marked "loop" are touched only by the loop goroutine.
type loop struct {
	e     *Engine
	p     *poller
	conns map[int32]*Conn // loop: registered connections by descriptor
	buf   []byte          // loop: the read buffer
	evs   []event         // loop

	nconns atomic.Int64 // adopted and not yet closed
	queued atomic.Int64 // bytes in the write queues of its connections
	quit   atomic.Bool
	done   chan struct{} // closed when the loop has ended

	// Work from other goroutines. A connection with pending ops is in ops
	// once, whatever it asks, so that list is bounded by the number of
	// connections; tasks are bounded by slots, a semaphore Post waits on.
	pmu     sync.Mutex
	ops     []*Conn
	opsRun  []*Conn  // loop: ops being run
	opsBits []connOp // loop: their bits
	tasks   []func()
	taskRun []func() // loop
	slots   chan struct{}
	stopped bool // the loop has ended: nothing more is accepted

	timers // timer.go

	vecs    [][]byte // loop: a flush's buffers
	scratch sysScratch
}

// connOp is work a connection asks of its loop from another goroutine.
type connOp uint8

const (
	opRegister connOp = 1 << iota // add to the table and poller, deliver the leftover
	opClose                       // close now
	opResume                      // reading resumed: deliver a leftover held while paused
)

func newLoop(e *Engine, id int) (*loop, error) {
	p, err := newPoller()
	if err != nil {
		return nil, err
	}
	l := &loop{
		e:     e,
		p:     p,
		conns: make(map[int32]*Conn),
		buf:   make([]byte, e.opt.ReadBufferSize),
		evs:   make([]event, maxEvents),
		done:  make(chan struct{}),
		slots: make(chan struct{}, e.opt.TaskQueue),
		vecs:  make([][]byte, 0, maxIovecs),
	}
	l.timers.init(l, e.opt.Clock)
	return l, nil
}

func (l *loop) run() {
	defer l.e.wg.Done()
	for !l.quit.Load() {
		n, err := l.p.wait(l.evs, l.waitTimeout())
		if err != nil {
			// The poller itself failed (EBADF, ENOMEM...): nothing on
			// this loop can make progress any more.
			panic(err)
		}
		for _, ev := range l.evs[:n] {
			l.handle(ev)
		}
		l.runOps()
		l.runTasks()
		if !l.fake {
			l.runTimers()
		}
	}
	l.shutdown()
}

// handle dispatches one readiness report. Writes go first: a flush may
// make room that a callback of the read below wants.
func (l *loop) handle(ev event) {
	c := l.conns[ev.fd]
	if c == nil {
		return // closed earlier in this batch
	}
	if ev.ready&(readyWrite|readyHup) != 0 {
		l.flush(c)
	}
	if !c.gone && ev.ready&(readyRead|readyHup) != 0 {
		l.readable(c)
	}
}

// readable reads up to ReadsPerEvent times into the loop's buffer, handing
// each read to OnData, and stops early once the socket looks drained (a
// short read) so as not to spend a system call on EAGAIN.
//
// A paused connection is normally not in the poller at all (see interest),
// so an event for it is one reported before it paused: ignored.
func (l *loop) readable(c *Conn) {
	if c.paused.Load() || c.closing.Load() {
		return
	}
	if !l.deliverLeftover(c) {
		return
	}
	for range l.e.opt.ReadsPerEvent {
		n, again, err := sysRead(int(c.fd), l.buf)
		switch {
		case again:
			return
		case err != nil:
			l.closeConn(c, err)
			return
		case n == 0:
			l.closeConn(c, io.EOF)
			return
		}
		c.h.OnData(c, l.buf[:n])
		if c.gone || c.paused.Load() || c.closing.Load() || c.leftover != nil || n < len(l.buf) {
			return
		}
	}
}

// deliverLeftover hands the bytes read before adoption to OnData, unless
// reading is paused; it reports whether reading may go on.
func (l *loop) deliverLeftover(c *Conn) bool {
	if c.leftover == nil {
		return true
	}
	if c.paused.Load() || c.closing.Load() {
		return false
	}
	b := *c.leftover
	c.leftover = nil
	c.hasLeftover.Store(false)
	c.h.OnData(c, b)
	return !c.gone && !c.paused.Load() && !c.closing.Load() && c.leftover == nil
}

// enqueue asks the loop to run op for c; false if the loop has ended.
func (l *loop) enqueue(c *Conn, op connOp) bool {
	l.pmu.Lock()
	if l.stopped {
		l.pmu.Unlock()
		return false
	}
	if c.ops == 0 {
		l.ops = append(l.ops, c)
	}
	c.ops |= op
	l.pmu.Unlock()
	l.p.wake()
	return true
}

func (l *loop) runOps() {
	l.pmu.Lock()
	if len(l.ops) == 0 {
		l.pmu.Unlock()
		return
	}
	l.ops, l.opsRun = l.opsRun[:0], l.ops
	l.opsBits = l.opsBits[:0]
	for _, c := range l.opsRun {
		l.opsBits = append(l.opsBits, c.ops)
		c.ops = 0
	}
	l.pmu.Unlock()
	for i, c := range l.opsRun {
		l.runOp(c, l.opsBits[i])
		l.opsRun[i] = nil
	}
}

func (l *loop) runOp(c *Conn, op connOp) {
	if op&opRegister != 0 {
		l.register(c)
	}
	if c.gone {
		return
	}
	if op&opClose != 0 {
		l.closeConn(c, ErrClosed)
		return
	}
	if op&opResume != 0 {
		l.deliverLeftover(c)
	}
}

// register puts c in the table and the poller, then delivers its leftover.
func (l *loop) register(c *Conn) {
	if c.gone {
		return // closed before Start
	}
	l.conns[c.fd] = c
	if err := c.attach(); err != nil {
		l.closeConn(c, err)
		return
	}
	l.deliverLeftover(c)
}

// closeConn ends c on the loop: out of the poller, then close(2), then
// out of the table, then OnClose, with the first error c met if any.
func (l *loop) closeConn(c *Conn, why error) {
	if c.gone {
		return
	}
	c.gone = true
	err := c.shut(why)
	delete(l.conns, c.fd)
	l.nconns.Add(-1)
	c.leftover = nil
	c.h.OnClose(c, err)
}

// post queues f to run on the loop, waiting for room while the queue is full.
func (l *loop) post(ctx context.Context, f func()) error {
	select {
	case l.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-l.done:
		return ErrEngineClosed
	}
	l.pmu.Lock()
	if l.stopped {
		l.pmu.Unlock()
		<-l.slots
		return ErrEngineClosed
	}
	l.tasks = append(l.tasks, f)
	l.pmu.Unlock()
	l.p.wake()
	return nil
}

func (l *loop) runTasks() {
	l.pmu.Lock()
	if len(l.tasks) == 0 {
		l.pmu.Unlock()
		return
	}
	l.tasks, l.taskRun = l.taskRun[:0], l.tasks
	l.pmu.Unlock()
	for i, f := range l.taskRun {
		l.taskRun[i] = nil
		<-l.slots // the room is made before f runs: f may post again
		f()
	}
}

// waitTimeout is how long the poller may sleep: until the earliest timer
// (rounded up to a millisecond, the poller's unit), or for ever.
func (l *loop) waitTimeout() int {
	if l.fake {
		return -1
	}
	l.tmu.Lock()
	defer l.tmu.Unlock()
	if len(l.heap) == 0 {
		l.sleepUntil = math.MaxInt64
		return -1
	}
	when := l.heap[0].when
	l.sleepUntil = when
	d := when - l.now()
	if d <= 0 {
		return 0
	}
	return int((d + int64(time.Millisecond) - 1) / int64(time.Millisecond))
}

// shutdown ends the loop: it closes every connection, registered or on its
// way, drops the tasks and closes the poller.
func (l *loop) shutdown() {
	l.pmu.Lock()
	l.stopped = true
	ops, tasks := l.ops, l.tasks
	l.ops, l.tasks = nil, nil
	for _, c := range ops {
		c.ops = 0
	}
	l.pmu.Unlock()
	for range tasks {
		<-l.slots
	}
	for _, c := range ops {
		l.closeConn(c, ErrEngineClosed)
	}
	for _, c := range l.conns {
		l.closeConn(c, ErrEngineClosed)
	}
	l.timers.stopAll()
	l.p.close()
	close(l.done)
}
