//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package poll

import (
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherws/tether/internal/clock"
)

func fakeEngine(t *testing.T) (*loop, *clock.Fake) {
	clk := clock.NewFake()
	e := newEngine(t, Options{Loops: 1, Clock: clk})
	return e.loops[0], clk
}

// checkHeap verifies the 4-ary heap's order and indexes.
func checkHeap(t *testing.T, l *loop) {
	t.Helper()
	l.tmu.Lock()
	defer l.tmu.Unlock()
	for i, x := range l.heap {
		if int(x.idx) != i {
			t.Fatalf("heap[%d].idx = %d", i, x.idx)
		}
		if i > 0 && l.heap[(i-1)/4].when > x.when {
			t.Fatalf("heap out of order at %d", i)
		}
	}
}

// Many timers, stopped and reset at random, each run once at its deadline
// (by the fake clock), never before, while Advance moves time by odd steps.
func TestTimersFakeClock(t *testing.T) {
	l, clk := fakeEngine(t)
	start := clk.Now()
	const n = 2000
	type rec struct {
		tm      *Timer
		due     time.Time // zero: stopped
		firedAt time.Time
		fires   int
	}
	recs := make([]*rec, n)
	for i := range recs {
		r := &rec{}
		d := time.Duration(1+rand.IntN(1000)) * time.Millisecond
		r.due = start.Add(d)
		r.tm = l.afterFunc(d, func() { r.fires++; r.firedAt = clk.Now() })
		recs[i] = r
	}
	checkHeap(t, l)
	for _, r := range recs[:n/4] { // stop a quarter
		if !r.tm.Stop() {
			t.Fatal("Stop of a pending timer returned false")
		}
		r.due = time.Time{}
	}
	for _, r := range recs[n/4 : n/2] { // move a quarter
		d := time.Duration(1+rand.IntN(1000)) * time.Millisecond
		if !r.tm.Reset(d) {
			t.Fatal("Reset of a pending timer returned false")
		}
		r.due = start.Add(d)
	}
	checkHeap(t, l)
	for clk.Now().Sub(start) < 1100*time.Millisecond {
		clk.Advance(time.Duration(rand.IntN(30)) * time.Millisecond)
		now := clk.Now()
		for i, r := range recs {
			switch {
			case r.due.IsZero() && r.fires > 0:
				t.Fatalf("timer %d stopped but ran", i)
			case !r.due.IsZero() && !r.due.After(now) && (r.fires != 1 || !r.firedAt.Equal(r.due)):
				t.Fatalf("timer %d due %v: ran %d times, at %v", i, r.due.Sub(start), r.fires, r.firedAt.Sub(start))
			case r.due.After(now) && r.fires > 0:
				t.Fatalf("timer %d ran early", i)
			}
		}
		checkHeap(t, l)
	}
	if k := len(l.heap); k != 0 {
		t.Fatalf("%d timers left", k)
	}
}

// Timers that fall due together run in one pass of the loop.
func TestTimersSameDeadlineOnePass(t *testing.T) {
	l, clk := fakeEngine(t)
	var ran atomic.Int32
	for range 1000 {
		l.afterFunc(time.Second, func() { ran.Add(1) })
	}
	passes := l.passes
	clk.Advance(999 * time.Millisecond)
	if ran.Load() != 0 {
		t.Fatal("ran early")
	}
	clk.Advance(time.Millisecond)
	if ran.Load() != 1000 || l.passes != passes+1 {
		t.Fatalf("%d timers ran in %d passes", ran.Load(), l.passes-passes)
	}
}

func TestTimerStopReset(t *testing.T) {
	l, clk := fakeEngine(t)
	var ran int
	tm := l.afterFunc(time.Second, func() { ran++ })
	if !tm.Stop() || tm.Stop() {
		t.Fatal("Stop: want true then false")
	}
	clk.Advance(2 * time.Second)
	if ran != 0 {
		t.Fatal("a stopped timer ran")
	}
	if tm.Reset(time.Second) {
		t.Fatal("Reset of a stopped timer returned true")
	}
	if !tm.Reset(3 * time.Second) { // later
		t.Fatal("Reset of a pending timer returned false")
	}
	clk.Advance(2 * time.Second)
	if ran != 0 {
		t.Fatal("ran at the old deadline")
	}
	clk.Advance(time.Second)
	if ran != 1 {
		t.Fatalf("ran %d times", ran)
	}
	tm.Reset(time.Hour)
	tm.Reset(time.Millisecond) // earlier
	clk.Advance(time.Millisecond)
	if ran != 2 {
		t.Fatalf("ran %d times after an earlier Reset", ran)
	}
}

// A timer that re-arms itself from its function, as keepalive does.
func TestTimerRearmsItself(t *testing.T) {
	l, clk := fakeEngine(t)
	var ran int
	var tm *Timer
	tm = l.afterFunc(100*time.Millisecond, func() {
		ran++
		tm.Reset(100 * time.Millisecond)
	})
	clk.Advance(time.Second)
	if ran != 10 {
		t.Fatalf("ran %d times in 10 intervals", ran)
	}
	tm.Stop()
	clk.Advance(time.Second)
	if ran != 10 {
		t.Fatal("ran after Stop")
	}
}

// With the real clock the loop sleeps until the earliest deadline, and a
// Reset to an earlier one from another goroutine wakes it.
func TestTimersRealClock(t *testing.T) {
	e := newEngine(t, Options{Loops: 1})
	l := e.loops[0]
	start := time.Now()
	fired := make(chan time.Duration, 100)
	for i := range 100 {
		d := time.Duration(10+i%40) * time.Millisecond
		l.afterFunc(d, func() {
			if el := time.Since(start); el < d {
				t.Errorf("timer for %v ran after %v", d, el)
			}
			fired <- d
		})
	}
	for range 100 {
		select {
		case <-fired:
		case <-time.After(5 * time.Second):
			t.Fatal("timers did not run")
		}
	}
	woke := make(chan struct{})
	tm := l.afterFunc(time.Hour, func() { close(woke) })
	time.Sleep(20 * time.Millisecond) // the loop sleeps for an hour
	tm.Reset(10 * time.Millisecond)
	select {
	case <-woke:
	case <-time.After(5 * time.Second):
		t.Fatal("an earlier Reset did not wake the loop")
	}
}

// Timers on a connection's loop: the Conn's AfterFunc.
func TestConnAfterFunc(t *testing.T) {
	clk := clock.NewFake()
	e := newEngine(t, Options{Clock: clk})
	_, sv := tcpPair(t)
	c, err := e.Adopt(sv, nil, newRecorder())
	if err != nil {
		t.Fatal(err)
	}
	var ran bool
	c.AfterFunc(20*time.Second, func() { ran = true })
	if got := e.Stats().Loops[0].Timers + e.Stats().Loops[len(e.loops)-1].Timers; got == 0 {
		t.Fatal("Stats counts no timer")
	}
	clk.Advance(20 * time.Second)
	if !ran {
		t.Fatal("did not run")
	}
}
