package tether

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/tetherws/tether/internal/clock"
	"github.com/tetherws/tether/internal/wire"
)

// keepalive is the per-connection keepalive state. It costs one runtime timer,
// not a goroutine: the clock runs each step when it falls due.
type keepalive struct {
	mu      sync.Mutex
	timer   clock.Timer
	waiting *pendingPing // the keepalive ping awaiting its pong
	stopped bool
}

// KeepaliveTimeoutReason is the close reason of a connection whose peer did
// not answer a keepalive ping in time.
const KeepaliveTimeoutReason = "keepalive ping timeout"

func (c *Conn) startKeepalive() {
	if c.cfg.pingInterval <= 0 {
		return
	}
	// Spread the first pings so connections opened together do not ping in
	// lockstep: the first comes 80-100% of an interval after opening.
	iv := c.cfg.pingInterval
	first := iv - time.Duration(rand.Int64N(int64(iv)/5+1))
	c.ka.mu.Lock()
	c.ka.timer = c.cfg.clock.AfterFunc(first, c.keepaliveDue)
	c.ka.mu.Unlock()
}

func (c *Conn) stopKeepalive() {
	c.ka.mu.Lock()
	defer c.ka.mu.Unlock()
	c.ka.stopped = true
	if c.ka.timer != nil {
		c.ka.timer.Stop()
	}
}

// schedule arms the keepalive timer; the caller holds c.ka.mu.
func (c *Conn) schedule(d time.Duration, f func()) {
	if c.ka.stopped {
		return
	}
	if c.ka.timer != nil {
		c.ka.timer.Stop()
	}
	c.ka.timer = c.cfg.clock.AfterFunc(max(d, 0), f)
}

// keepaliveDue sends the next keepalive ping, unless in idle mode a frame
// arrived within the last interval.
func (c *Conn) keepaliveDue() {
	iv := c.cfg.pingInterval
	c.ka.mu.Lock()
	if c.ka.stopped {
		c.ka.mu.Unlock()
		return
	}
	now := c.cfg.clock.Now()
	if c.cfg.mode == KeepaliveIdle {
		if idle := now.Sub(time.Unix(0, c.lastRecv.Load())); idle < iv {
			c.schedule(iv-idle, c.keepaliveDue)
			c.ka.mu.Unlock()
			return
		}
	}
	p := c.newPing(true)
	c.ka.waiting = p
	if c.cfg.pingTimeout > 0 {
		c.schedule(c.cfg.pingTimeout, func() { c.keepaliveExpired(p) })
	} else {
		c.schedule(iv, c.keepaliveDue) // keep pinging, never time out
	}
	c.ka.mu.Unlock()

	c.log.Debug("sent keepalive ping", "interval", iv)
	ctx, cancel := context.WithTimeout(context.Background(), max(c.cfg.pingTimeout, iv))
	defer cancel()
	c.writeControl(ctx, wire.OpPing, p.payload[:])
}

// keepaliveAnswered is called when keepalive ping p got its pong (or a later
// pong settled it): the next ping is due one interval after p was sent, so
// the schedule does not drift by the round-trip time.
func (c *Conn) keepaliveAnswered(p *pendingPing, now time.Time) {
	rtt := now.Sub(p.sent)
	c.log.Debug("received keepalive pong", "rtt", rtt)
	c.ka.mu.Lock()
	defer c.ka.mu.Unlock()
	if c.ka.waiting != p {
		return
	}
	c.ka.waiting = nil
	if c.cfg.pingTimeout <= 0 {
		return // the next ping is already scheduled
	}
	next := p.sent.Add(c.cfg.pingInterval)
	if c.cfg.mode == KeepaliveIdle {
		next = now.Add(c.cfg.pingInterval)
	}
	c.schedule(next.Sub(now), c.keepaliveDue)
}

// keepaliveExpired fails the connection if p is still unanswered: the peer is
// presumed dead, so the close frame goes out on a short deadline and TCP is
// dropped without waiting for an answer.
func (c *Conn) keepaliveExpired(p *pendingPing) {
	c.ka.mu.Lock()
	if c.ka.stopped || c.ka.waiting != p {
		c.ka.mu.Unlock()
		return
	}
	c.ka.waiting = nil
	c.ka.mu.Unlock()
	c.stats.timeouts.Add(1)
	c.log.Warn("timed out waiting for keepalive pong", "timeout", c.cfg.pingTimeout)
	c.abort(StatusInternalError, KeepaliveTimeoutReason)
}
