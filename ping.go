package tether

import (
	"context"
	"encoding/binary"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/tetherws/tether/internal/wire"
)

// pendingPing is a ping waiting for its pong.
type pendingPing struct {
	payload   [4]byte
	sent      time.Time
	done      chan time.Duration // receives the RTT; buffered
	keepalive bool
}

// Ping sends a ping and waits for the matching pong; it returns the round-trip
// time. A pong also settles every earlier ping still waiting (section 5.5.3
// lets a peer answer only the latest). Cancelling ctx abandons the wait.
func (c *Conn) Ping(ctx context.Context) (time.Duration, error) {
	if c.isDone() {
		return 0, c.err
	}
	p := c.newPing(false)
	if err := c.writeControl(ctx, wire.OpPing, p.payload[:]); err != nil {
		c.forgetPing(p)
		return 0, err
	}
	c.pingWritten(p)
	if err := ctx.Err(); err != nil {
		// Cancelled while the frame went out: the caller gave up, so say
		// so even if the pong is already back (a select would pick either).
		c.forgetPing(p)
		return 0, err
	}
	select {
	case rtt := <-p.done:
		return rtt, nil
	case <-c.doneChan():
		return 0, c.err
	case <-ctx.Done():
		c.forgetPing(p)
		return 0, ctx.Err()
	}
}

// newPing registers a ping with a random payload not already pending.
func (c *conn) newPing(keepalive bool) *pendingPing {
	p := &pendingPing{keepalive: keepalive}
	if !keepalive {
		p.done = make(chan time.Duration, 1)
	}
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	for {
		binary.BigEndian.PutUint32(p.payload[:], rand.Uint32())
		if c.findPing(p.payload[:]) < 0 {
			break
		}
	}
	p.sent = c.cfg.clock.Now()
	c.pings = append(c.pings, p)
	return p
}

// pingWritten counts a ping once it is on the wire.
func (c *conn) pingWritten(p *pendingPing) {
	c.stats.pingsSent.Add(1)
	c.stats.lastPingAt.Store(p.sent.UnixNano())
}

func (c *conn) findPing(payload []byte) int {
	for i, p := range c.pings {
		if string(p.payload[:]) == string(payload) {
			return i
		}
	}
	return -1
}

func (c *conn) forgetPing(p *pendingPing) {
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	for i, q := range c.pings {
		if q == p {
			c.pings = slices.Delete(c.pings, i, i+1) // clears the slot left behind
			return
		}
	}
}

// handlePong settles the ping the pong answers and every earlier one. An
// unsolicited pong is allowed (section 5.5.3) and ignored, or handed to
// the relay when there is one.
func (c *conn) handlePong(payload []byte) {
	now := c.cfg.clock.Now()
	c.pingMu.Lock()
	i := c.findPing(payload)
	if i < 0 {
		c.pingMu.Unlock()
		if c.cfg.relay != nil {
			c.relayControl(ControlPong, payload)
			return
		}
		if c.log.Enabled(context.Background(), slog.LevelDebug) {
			c.log.Debug("received unsolicited pong", "payload", hexPayload(payload))
		}
		return
	}
	var buf [4]*pendingPing
	settled := append(buf[:0], c.pings[:i+1]...)
	// Delete clears the slots left behind: the array stays for the next
	// ping, and would otherwise keep this one (48 B) until then.
	c.pings = slices.Delete(c.pings, 0, i+1)
	c.pingMu.Unlock()

	rtt := now.Sub(settled[i].sent)
	c.stats.rtt.Store(int64(rtt))
	c.stats.lastPongAt.Store(now.UnixNano())
	// Keepalive takes the answer, then the count goes up, then Ping's
	// callers wake: whoever sees the count sees the RTT and no timeout
	// can fire for a ping counted as answered, and a Ping that returned
	// has been counted.
	for _, p := range settled {
		if p.keepalive {
			c.keepaliveAnswered(p, now)
		}
	}
	c.stats.pongsRcvd.Add(1)
	for _, p := range settled {
		if p.done != nil {
			p.done <- now.Sub(p.sent)
		}
	}
}
