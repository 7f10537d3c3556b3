package poll

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/tetherws/tether/internal/clock"
)

// Timers. Each loop keeps its timers in one 4-ary min-heap (shallower than
// a binary heap, so fewer cache misses per Reset) ordered by deadline, and
// runs every timer due in one pass after its poller returns: no runtime
// timer and no goroutine per timer, and the keepalive pings of many
// connections that fall due together go out in one wake-up. With the real
// clock the loop sleeps in the poller until the earliest deadline. With
// another clock (a clock.Fake in tests), time is the clock's: the loop
// holds one of its timers, for its earliest deadline, and when the clock
// fires it the loop runs what is due before the clock goes on, so tests
// stay deterministic.

// Timer is a function run on a connection's loop at a deadline. Its
// methods may be called from any goroutine; it satisfies clock.Timer.
type Timer struct {
	t    *timers
	f    func()
	when int64  // deadline, in nanoseconds since the loop's base
	idx  int32  // position in the heap; -1 when not in it
	gen  uint32 // bumped by Reset and Stop: a popped timer runs only if unchanged
	due  bool   // popped, about to run
}

// AfterFunc runs f on c's loop once d has elapsed (by the engine's clock).
// f must not block, like the Handler's methods. The timer outlives the
// connection: stop it in OnClose if it would touch it.
func (c *Conn) AfterFunc(d time.Duration, f func()) *Timer { return c.l.afterFunc(d, f) }

func (l *loop) afterFunc(d time.Duration, f func()) *Timer {
	t := &Timer{t: &l.timers, f: f, idx: -1}
	t.Reset(d)
	return t
}

// Reset sets t to run d from now, whether or not it ran or was stopped. It
// reports whether t was pending.
func (t *Timer) Reset(d time.Duration) bool {
	ts := t.t
	ts.tmu.Lock()
	defer ts.tmu.Unlock()
	was := t.idx >= 0 || t.due
	t.gen++
	t.due = false
	t.when = ts.now() + int64(max(d, 0))
	if t.idx >= 0 {
		ts.fix(int(t.idx))
	} else {
		ts.push(t)
	}
	ts.rearm(t)
	return was
}

// Stop keeps t from running if it has not started, and reports whether it
// did so.
func (t *Timer) Stop() bool {
	ts := t.t
	ts.tmu.Lock()
	defer ts.tmu.Unlock()
	was := t.idx >= 0 || t.due
	t.gen++
	t.due = false
	if t.idx >= 0 {
		ts.remove(int(t.idx))
	}
	return was
}

var _ clock.Timer = (*Timer)(nil)

// timers is a loop's timer heap and the way it wakes for them.
type timers struct {
	l     *loop
	clock clock.Clock
	fake  bool      // the clock fires the loop's timers (see above)
	base  time.Time // when 0 is

	tmu        sync.Mutex
	heap       []*Timer
	sleepUntil int64       // the deadline the loop sleeps until; a sooner one wakes it
	ctimer     clock.Timer // fake: the clock's timer for heap[0]
	cwhen      int64       // fake: what ctimer is set for
	stopped    bool

	passes int      // loop: passes that ran timers (tests look)
	fired  []*Timer // loop: a pass's due timers
	gens   []uint32 // loop: their generations when popped
}

func (ts *timers) init(l *loop, c clock.Clock) {
	ts.l, ts.clock, ts.base = l, c, c.Now()
	ts.fake = c != clock.Real
	ts.sleepUntil = math.MinInt64
	ts.cwhen = math.MaxInt64
}

func (ts *timers) now() int64 { return int64(ts.clock.Now().Sub(ts.base)) }

// rearm makes sure the loop wakes for t if it is now the earliest; tmu is held.
func (ts *timers) rearm(t *Timer) {
	if t.idx != 0 || ts.stopped {
		return
	}
	if !ts.fake {
		if t.when < ts.sleepUntil {
			ts.l.p.wake()
		}
		return
	}
	if t.when >= ts.cwhen {
		return
	}
	ts.cwhen = t.when
	d := time.Duration(t.when - ts.now())
	if ts.ctimer == nil {
		ts.ctimer = ts.clock.AfterFunc(d, ts.clockFired)
	} else {
		ts.ctimer.Reset(d)
	}
}

// clockFired runs on the goroutine of a fake clock's Advance: it has the
// loop run what is due and waits for it, so Advance returns after.
func (ts *timers) clockFired() {
	ran := make(chan struct{})
	err := ts.l.post(context.Background(), func() {
		ts.tmu.Lock()
		ts.cwhen = math.MaxInt64
		ts.tmu.Unlock()
		ts.l.runTimers()
		ts.tmu.Lock()
		if len(ts.heap) > 0 {
			ts.rearm(ts.heap[0])
		}
		ts.tmu.Unlock()
		close(ran)
	})
	if err != nil {
		return
	}
	select {
	case <-ran:
	case <-ts.l.done:
	}
}

// runTimers runs, on the loop, every timer due now, in deadline order.
func (l *loop) runTimers() {
	ts := &l.timers
	ts.tmu.Lock()
	ts.sleepUntil = math.MinInt64 // awake: nobody need wake us
	now := ts.now()
	if len(ts.heap) == 0 || ts.heap[0].when > now {
		ts.tmu.Unlock()
		return
	}
	ts.passes++
	for len(ts.heap) > 0 && ts.heap[0].when <= now {
		t := ts.heap[0]
		ts.remove(0)
		t.due = true
		ts.fired = append(ts.fired, t)
		ts.gens = append(ts.gens, t.gen)
	}
	ts.tmu.Unlock()
	for i, t := range ts.fired {
		ts.fired[i] = nil
		if ts.take(t, ts.gens[i]) {
			t.f()
		}
	}
	ts.fired, ts.gens = ts.fired[:0], ts.gens[:0]
}

// take reports whether popped timer t may run: not reset nor stopped since.
func (ts *timers) take(t *Timer, gen uint32) bool {
	ts.tmu.Lock()
	defer ts.tmu.Unlock()
	if t.gen != gen || !t.due {
		return false
	}
	t.due = false
	return true
}

// stopAll drops every timer when the loop ends.
func (ts *timers) stopAll() {
	ts.tmu.Lock()
	defer ts.tmu.Unlock()
	ts.stopped = true
	for _, t := range ts.heap {
		t.idx = -1
	}
	ts.heap = nil
	if ts.ctimer != nil {
		ts.ctimer.Stop()
	}
}

// The heap: 4-ary, heap[i]'s children at 4i+1..4i+4; tmu is held.

func (ts *timers) push(t *Timer) {
	if ts.stopped {
		return
	}
	t.idx = int32(len(ts.heap))
	ts.heap = append(ts.heap, t)
	ts.up(len(ts.heap) - 1)
}

func (ts *timers) remove(i int) {
	h := ts.heap
	last := len(h) - 1
	h[i].idx = -1
	if i != last {
		h[i] = h[last]
		h[i].idx = int32(i)
	}
	h[last] = nil
	ts.heap = h[:last]
	if i != last {
		ts.fix(i)
	}
}

func (ts *timers) fix(i int) {
	if !ts.up(i) {
		ts.down(i)
	}
}

func (ts *timers) up(i int) bool {
	h := ts.heap
	t := h[i]
	moved := false
	for i > 0 {
		p := (i - 1) / 4
		if h[p].when <= t.when {
			break
		}
		h[i] = h[p]
		h[i].idx = int32(i)
		i, moved = p, true
	}
	h[i] = t
	t.idx = int32(i)
	return moved
}

func (ts *timers) down(i int) {
	h := ts.heap
	t := h[i]
	for {
		c := 4*i + 1
		if c >= len(h) {
			break
		}
		m := c
		for k := c + 1; k < c+4 && k < len(h); k++ {
			if h[k].when < h[m].when {
				m = k
			}
		}
		if h[m].when >= t.when {
			break
		}
		h[i] = h[m]
		h[i].idx = int32(i)
		i = m
	}
	h[i] = t
	t.idx = int32(i)
}
