package tether

import (
	"time"

	"github.com/tetherws/tether/internal/clock"
)

// Clock is where connections, Reconnect loops and pools take the time and
// their timers: keepalive pings and timeouts, the close timeout, backoff
// delays and health checks. ConnOptions.Clock replaces the wall clock with
// one, so that a test drives all of them by hand instead of sleeping; the
// package tethertest has a fake one. A Clock must be safe for concurrent
// use.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has elapsed (or, for a
	// fake clock, once the clock has been advanced by d) and returns a
	// Timer that cancels or re-arms the call. *time.Timer is one.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending Clock.AfterFunc call; *time.Timer implements it. It is
// an alias of an unnamed interface so that any type with these methods is
// one, whichever package declares it.
type Timer = interface {
	// Stop prevents the call if it has not run yet and reports whether it
	// did so.
	Stop() bool
	// Reset schedules the call again, d from now, whether or not it ran,
	// and reports whether it was still pending.
	Reset(d time.Duration) bool
}

// The internal clocks, the wall clock Tether uses by default and the fake one
// its tests use, are Clocks: the two interfaces have the same method set.
var (
	_ Clock = clock.Real
	_ Clock = (*clock.Fake)(nil)
)
