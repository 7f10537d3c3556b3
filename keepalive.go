package tether

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/tetherws/tether/internal/clock"
	"github.com/tetherws/tether/internal/wire"
)

// keepalive is the per-connection keepalive state. It costs one runtime timer,
// re-armed for each step, not a goroutine. The timer is only ever re-armed
// when it has fired, never pulled earlier: a pong records itself and the
// next step looks at it, because pulling a pending timer earlier makes the
// runtime rescan its whole timer heap, which with tens of thousands of
// connections costs more than the pings themselves (and when pongs come
// late because the process is overloaded, it feeds the overload).
type keepalive struct {
	mu       sync.Mutex
	timer    clock.Timer
	due      int64        // unix nanos the timer is meant to fire; earlier fires are stale
	waiting  *pendingPing // the keepalive ping awaiting its pong, if it can time out
	lastPing int64        // unix nanos the last keepalive ping went out, 0 before the first
	// waitFrom restarts the wait for waiting's pong when a stall of the
	// read loop ends (stall.go): unix nanos, 0 for from when the ping
	// went out. (Times are kept as nanos: three time.Time would cost a
	// connection 48 bytes more.)
	waitFrom    int64
	stopped     bool
	stallWarned bool // this stall was logged
	onLoop      bool // the timer is the event engine's: steps run on the loop
}

// KeepaliveTimeoutReason is the close reason of a connection whose peer did
// not answer a keepalive ping in time.
const KeepaliveTimeoutReason = "keepalive ping timeout"

func (c *conn) startKeepalive() {
	if c.cfg.pingInterval <= 0 {
		return
	}
	// Spread the first pings so connections opened together do not ping in
	// lockstep: the first comes 80-100% of an interval after opening.
	iv := c.cfg.pingInterval
	c.ka.mu.Lock()
	c.arm(iv - time.Duration(rand.Int64N(int64(iv)/5+1)))
	c.ka.mu.Unlock()
}

func (c *conn) stopKeepalive() {
	c.ka.mu.Lock()
	defer c.ka.mu.Unlock()
	c.ka.stopped = true
	if c.ka.timer != nil {
		c.ka.timer.Stop()
	}
}

// arm sets the keepalive timer to fire d from now; the caller holds c.ka.mu.
func (c *conn) arm(d time.Duration) {
	if c.ka.stopped {
		return
	}
	d = max(d, 0)
	c.ka.due = c.cfg.clock.Now().Add(d).UnixNano()
	if c.ka.timer == nil && c.loop() != nil && c.cfg.clock == clock.Real {
		// The event engine's timer: steps run on the connection's loop,
		// with every other ping that falls due then, and no goroutine.
		c.ka.onLoop = true
		c.ka.timer = c.loop().pc.AfterFunc(d, c.keepaliveOnLoop)
	} else if c.ka.timer == nil {
		c.ka.timer = c.cfg.clock.AfterFunc(d, c.keepaliveFire)
	} else {
		c.ka.timer.Reset(d)
	}
}

// keepaliveFire runs when the timer falls due, on a goroutine the runtime
// starts for it, with the smallest stack. It decides in keepaliveStep and
// sends from here, so that the deciding's frames are gone before the write's
// begin: the whole path then fits the new goroutine's stack, which growing
// (a copy, and a free when the goroutine ends) cost more than the rest of
// the ping's user-space work.
func (c *conn) keepaliveFire() {
	if p := c.keepaliveStep(); p != nil {
		c.sendKeepalivePing(p)
	}
}

// keepaliveOnLoop is keepaliveFire on the event engine's loop: the ping
// goes out from there, unless a writer holds the frame lock.
func (c *conn) keepaliveOnLoop() {
	if p := c.keepaliveStep(); p != nil {
		c.loop().sendPing(p)
	}
}

// keepaliveStep is the keepalive's decision. With a ping outstanding it
// either expires it or waits on; otherwise it returns the next ping to send
// when one is due (one interval after the last in fixed mode, one interval
// of silence in idle mode) or re-arms for then.
//
//go:noinline
func (c *conn) keepaliveStep() *pendingPing {
	iv, to := c.cfg.pingInterval, c.cfg.pingTimeout
	c.ka.mu.Lock()
	now := c.cfg.clock.Now()
	if c.ka.stopped || now.UnixNano() < c.ka.due {
		c.ka.mu.Unlock() // stopped, or a stale fire of a timer re-armed since
		return nil
	}
	if p := c.ka.waiting; p != nil {
		from := p.sent
		if c.ka.waitFrom > from.UnixNano() {
			from = time.Unix(0, c.ka.waitFrom)
		}
		if deadline := from.Add(to); now.Before(deadline) {
			// The interval came first: keep waiting, looking again an
			// interval later, when a late pong will have made the next
			// ping due.
			c.arm(min(iv, deadline.Sub(now)))
			c.ka.mu.Unlock()
			return nil
		}
		if c.stalledAt.Load() != 0 {
			// The application stopped reading, so the pong may be
			// waiting unseen behind data: not the peer's fault.
			c.arm(iv)
			warn := !c.ka.stallWarned
			c.ka.stallWarned = true
			c.ka.mu.Unlock()
			if warn {
				c.warnStall(now)
			}
			return nil
		}
		c.ka.waiting = nil
		c.ka.stopped = true
		onLoop := c.ka.onLoop
		c.ka.mu.Unlock()
		if onLoop {
			go c.keepaliveExpired() // it waits for the close frame to go out
		} else {
			c.keepaliveExpired()
		}
		return nil
	}
	next := time.Unix(0, c.ka.lastPing).Add(iv)
	if c.cfg.mode == KeepaliveIdle {
		next = time.Unix(0, c.lastRecv.Load()).Add(iv)
	}
	if now.Before(next) && (c.cfg.mode == KeepaliveIdle || c.ka.lastPing != 0) {
		c.arm(next.Sub(now))
		c.ka.mu.Unlock()
		return nil
	}
	p := c.newPing(true)
	c.ka.lastPing = p.sent.UnixNano()
	c.ka.waitFrom = 0
	if to > 0 {
		c.ka.waiting = p
		c.arm(min(iv, to))
	} else {
		c.arm(iv) // keep pinging, never time out
	}
	c.ka.mu.Unlock()

	if c.log.Enabled(context.Background(), slog.LevelDebug) {
		c.log.Debug("sent keepalive ping", "interval", iv)
	}
	c.publish(Event{Kind: EventPing, Time: p.sent})
	return p
}

// sendKeepalivePing writes keepalive ping p. No deadline: if the write
// blocks on a dead peer, the ping timeout fails the connection and closing
// it unblocks the write.
func (c *conn) sendKeepalivePing(p *pendingPing) {
	if c.writeControl(context.Background(), wire.OpPing, p.payload[:]) == nil {
		c.pingWritten(p)
	}
}

// keepaliveAnswered is called when keepalive ping p got its pong (or a later
// pong settled it). It only records the answer; the timer, already set for
// the next step (at most an interval away), sees it. So a pong later than
// the interval is followed by the next ping at the next interval's end, as
// a ping is skipped while one is outstanding.
func (c *conn) keepaliveAnswered(p *pendingPing, now time.Time) {
	if c.log.Enabled(context.Background(), slog.LevelDebug) {
		c.log.Debug("received keepalive pong", "rtt", now.Sub(p.sent))
	}
	c.publish(Event{Kind: EventPong, Time: now, RTT: now.Sub(p.sent)})
	c.ka.mu.Lock()
	if c.ka.waiting == p {
		c.ka.waiting = nil
	}
	c.ka.mu.Unlock()
}

// keepaliveExpired fails the connection: the peer is presumed dead, so the
// close frame goes out on a short deadline and TCP is dropped without
// waiting for an answer.
func (c *conn) keepaliveExpired() {
	c.stats.rare().timeouts.Add(1)
	c.log.Warn("timed out waiting for keepalive pong", "timeout", c.cfg.pingTimeout)
	c.publish(Event{Kind: EventTimeout, Time: c.cfg.clock.Now()})
	c.abort(StatusInternalError, KeepaliveTimeoutReason)
}

// publish sends a keepalive event to the connection's registry.
func (c *conn) publish(e Event) {
	if r := c.cfg.registry; r != nil {
		e.ConnID = c.id.String()
		r.publish(e)
	}
}
