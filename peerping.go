package tether

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// peerWindow is how many of the peer's recent ping intervals a connection
// keeps to measure its cadence.
const peerWindow = 16

// peerPings is what a connection knows of its peer's keepalive: the pings
// the peer sent, and the intervals between the last few. It is made at the
// peer's first ping, so a connection whose peer never pings (browsers, most
// Go libraries) pays a pointer; after that a ping costs no allocation.
type peerPings struct {
	mu    sync.Mutex
	count int64
	last  int64              // unix nanos of the last ping
	ivs   [peerWindow]uint32 // recent intervals in microseconds, a ring
	n     int                // intervals in ivs
	next  int                // where the next interval goes

	reported time.Duration // the cadence last given to the registry
}

// PeerKeepalive is what a connection measured of its peer's keepalive pings:
// how many came, and the cadence they came at over the last few.
type PeerKeepalive struct {
	Pings int64     // pings received
	Last  time.Time // when the last came; zero before the first
	// Interval is the median of the last intervals between two pings, Min
	// and Max their range; all zero before the second ping.
	Interval, Min, Max time.Duration
}

// peerPinged records a ping from the peer received at now (unix nanos) and
// returns the time since the previous one (zero for the first). With track
// it also returns the peer's cadence when it has moved since last reported
// (zero otherwise), for the registry (clients.go), under the same lock. It
// runs on the read loop.
func (c *conn) peerPinged(now int64, track bool) (since, moved time.Duration) {
	pp := c.peer.Load()
	if pp == nil {
		pp = &peerPings{}
		c.peer.Store(pp) // only the read loop stores
	}
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if pp.count > 0 {
		since = time.Duration(max(now-pp.last, 0))
		pp.ivs[pp.next] = uint32(min(since/time.Microsecond, 1<<32-1))
		pp.next = (pp.next + 1) % peerWindow
		pp.n = min(pp.n+1, peerWindow)
	}
	pp.count++
	pp.last = now
	if track && pp.n > 0 {
		if iv, _, _ := cadenceOf(pp.ivs, pp.n); iv > 0 && !sameCadence(pp.reported, iv) {
			pp.reported, moved = iv, iv
		}
	}
	return since, moved
}

// cadenceOf returns the median, minimum and maximum of the first n
// intervals of ivs (a copy: sorting it leaves the ring alone).
func cadenceOf(ivs [peerWindow]uint32, n int) (med, lo, hi time.Duration) {
	s := ivs[:n]
	slices.Sort(s)
	us := func(v uint32) time.Duration { return time.Duration(v) * time.Microsecond }
	if n%2 == 1 {
		med = us(s[n/2])
	} else {
		med = (us(s[n/2-1]) + us(s[n/2])) / 2
	}
	return med, us(s[0]), us(s[n-1])
}

// peerKeepalive returns what the connection measured of its peer's pings.
func (c *conn) peerKeepalive() PeerKeepalive {
	pp := c.peer.Load()
	if pp == nil {
		return PeerKeepalive{}
	}
	pp.mu.Lock()
	ivs, n := pp.ivs, pp.n
	pk := PeerKeepalive{Pings: pp.count, Last: unixTime(pp.last)}
	pp.mu.Unlock()
	if n > 0 {
		pk.Interval, pk.Min, pk.Max = cadenceOf(ivs, n)
	}
	return pk
}

// PeerKeepalive returns what the connection measured of its peer's
// keepalive: the peer's pings and the cadence they come at. A server sees
// there how often each client pings, which its own settings do not say.
func (c *Conn) PeerKeepalive() PeerKeepalive { return c.peerKeepalive() }

// receivedPing records and logs a ping from the peer; the pong is queued by
// the caller.
func (c *conn) receivedPing(p []byte) {
	now := c.lastRecv.Load() // the frame's arrival, read once per frame
	r := c.cfg.registry
	since, moved := c.peerPinged(now, r != nil && c.client != noClient)
	if c.log.Enabled(context.Background(), slog.LevelDebug) {
		if since > 0 {
			c.log.Debug("received ping", "payload", hexPayload(p), "since", since)
		} else {
			c.log.Debug("received ping", "payload", hexPayload(p))
		}
	}
	if r != nil && r.hasSubscribers() {
		c.publish(Event{Kind: EventPeerPing, Time: time.Unix(0, now), Interval: since})
	}
	if moved > 0 {
		r.peerCadence(c, moved)
	}
}
