// Package clock is the one door through which time enters Tether: keepalive,
// timeouts and backoff ask a Clock for the time and for timers, so tests can
// drive them with a Fake clock instead of sleeping.
package clock

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// Clock tells the time and runs functions later.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has elapsed.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call. It is an alias of an unnamed
// interface, as tether.Timer is, so that a Clock here and the public
// tether.Clock have the same method set and each implements the other.
type Timer = interface {
	// Stop prevents the call if it has not run yet and reports whether it did so.
	Stop() bool
	// Reset schedules the call again, d from now, whether or not it ran.
	Reset(d time.Duration) bool
}

// Real is the wall clock.
var Real Clock = realClock{}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Fake is a manual clock for tests. Timers fire, in order of their due time,
// only when Advance moves the clock past them; each runs synchronously inside
// Advance, so a test sees its effects when Advance returns.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	seq     int
	timers  fakeTimers    // a heap by due time, then arming order
	changed chan struct{} // closed and replaced when timers are added; nil until waited on
}

// NewFake returns a fake clock set to a fixed, arbitrary instant.
func NewFake() *Fake {
	return &Fake{now: time.Date(2025, 6, 7, 5, 31, 37, 0, time.UTC)}
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// AfterFunc schedules fn at Now()+d.
func (f *Fake) AfterFunc(d time.Duration, fn func()) Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	t := &fakeTimer{clock: f, due: f.now.Add(d), seq: f.seq, fn: fn, idx: -1}
	heap.Push(&f.timers, t)
	f.notifyLocked()
	return t
}

// notifyLocked wakes the callers of WaitPending; the caller holds f.mu.
func (f *Fake) notifyLocked() {
	if f.changed != nil {
		close(f.changed)
		f.changed = nil
	}
}

// WaitPending blocks until at least n timers are pending, or ctx ends.
// Code under test arms its timers on goroutines of its own; a test waits
// for them here before it advances the clock past them.
func (f *Fake) WaitPending(ctx context.Context, n int) error {
	for {
		f.mu.Lock()
		if len(f.timers) >= n {
			f.mu.Unlock()
			return nil
		}
		if f.changed == nil {
			f.changed = make(chan struct{})
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Pending returns the number of timers not yet fired or stopped.
func (f *Fake) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// Advance moves the clock forward by d, firing every timer that falls due, in
// order, with Now() set to each timer's due time while it runs.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	end := f.now.Add(d)
	for len(f.timers) > 0 && !f.timers[0].due.After(end) {
		t := heap.Pop(&f.timers).(*fakeTimer)
		if t.due.After(f.now) {
			f.now = t.due
		}
		f.mu.Unlock()
		t.fn()
		f.mu.Lock()
	}
	f.now = end
	f.mu.Unlock()
}

type fakeTimer struct {
	clock *Fake
	due   time.Time
	seq   int
	idx   int // in the heap; -1 when not pending
	fn    func()
}

// fakeTimers is a container/heap of pending timers: with tens of
// thousands of them (one per connection's keepalive), a sort per fired
// timer took minutes.
type fakeTimers []*fakeTimer

func (h fakeTimers) Len() int { return len(h) }
func (h fakeTimers) Less(i, j int) bool {
	if h[i].due.Equal(h[j].due) {
		return h[i].seq < h[j].seq
	}
	return h[i].due.Before(h[j].due)
}
func (h fakeTimers) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *fakeTimers) Push(x any) {
	t := x.(*fakeTimer)
	t.idx = len(*h)
	*h = append(*h, t)
}
func (h *fakeTimers) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.idx = -1
	return t
}

func (t *fakeTimer) Stop() bool {
	f := t.clock
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.remove(t)
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	f := t.clock
	f.mu.Lock()
	defer f.mu.Unlock()
	active := f.remove(t)
	f.seq++
	t.due, t.seq = f.now.Add(d), f.seq
	heap.Push(&f.timers, t)
	f.notifyLocked()
	return active
}

// remove takes t off the pending list; the caller holds f.mu.
func (f *Fake) remove(t *fakeTimer) bool {
	if t.idx < 0 {
		return false
	}
	heap.Remove(&f.timers, t.idx)
	return true
}
