// Package tethertest helps test code that uses Tether, as net/http/httptest
// does for HTTP: a fake Clock that a test advances by hand, so keepalive,
// close timeouts and Reconnect's backoff run without sleeping and without
// flakiness; Pair, a connected client and server *tether.Conn in memory,
// with a real opening handshake and real framing; and NewServer, a
// WebSocket server on loopback for code that dials a URL.
//
// A typical test of reconnect logic serves with NewServer, dials with
// tether.Reconnect on a Clock, and, at each redial, waits for the backoff
// timer (WaitTimers) and moves the clock past it (Advance): the delays are
// then exact and the test takes no wall-clock time for them.
package tethertest

import (
	"context"
	"time"

	"github.com/tetherws/tether"
	"github.com/tetherws/tether/internal/clock"
)

// Clock is a fake tether.Clock for tests. Its time moves only when Advance
// moves it; timers fire, in order of their due time, inside Advance, on the
// goroutine that calls it, so a test sees their effects (a keepalive ping
// sent, a backoff delay over) when Advance returns. Set it as
// tether.ConnOptions.Clock of the connections, Reconnect loops and pools
// under test. It is safe for concurrent use.
type Clock struct {
	f *clock.Fake
}

// NewClock returns a fake clock set to a fixed instant, 2025-06-07
// 05:31:37 UTC, so that times in a test's output are the same every run.
func NewClock() *Clock { return &Clock{f: clock.NewFake()} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return c.f.Now() }

// AfterFunc schedules f to run when the clock has been advanced by d.
func (c *Clock) AfterFunc(d time.Duration, f func()) tether.Timer { return c.f.AfterFunc(d, f) }

// Advance moves the clock forward by d and runs every timer that falls due
// meanwhile, in order, each with Now set to its due time; timers those
// calls arm within d run too. It returns once they all have returned.
func (c *Clock) Advance(d time.Duration) { c.f.Advance(d) }

// Pending returns the number of timers armed and not yet fired or stopped.
func (c *Clock) Pending() int { return c.f.Pending() }

// WaitTimers blocks until at least n timers are pending, or ctx ends. Code
// under test arms its timers on goroutines of its own (a Reconnect loop
// arms its backoff timer after a failed dial): a test waits here before it
// advances the clock past them, rather than sleeping.
func (c *Clock) WaitTimers(ctx context.Context, n int) error { return c.f.WaitPending(ctx, n) }

var _ tether.Clock = (*Clock)(nil)
