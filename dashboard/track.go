package dashboard

import (
	"slices"
	"time"

	"github.com/tetherws/tether"
)

// event is one thing that happened to a connection, as the API and the page
// see it.
type event struct {
	seq  uint64
	Conn string    `json:"conn"`
	Kind string    `json:"kind"` // open, close, ping, pong, timeout, peer_ping, stall, resume
	Time time.Time `json:"time"`
	// RTTms is a pong's round-trip time.
	RTTms *float64 `json:"rtt_ms,omitempty"`
	// Interval, in seconds: for a peer_ping the time since the peer's
	// previous ping (absent on its first), for a resume how long the
	// application had stopped reading.
	Interval *float64 `json:"interval,omitempty"`
	Code     int      `json:"code,omitempty"`   // close
	Reason   string   `json:"reason,omitempty"` // close
}

// seconds is d for an event's Interval: nil when zero (not measured).
func seconds(d time.Duration) *float64 {
	if d <= 0 {
		return nil
	}
	s := d.Seconds()
	return &s
}

// counts are a connection's cumulative counters, for the metrics.
type counts struct {
	pings, pongs, timeouts int64
	msgsIn, msgsOut        int64
	bytesIn, bytesOut      int64
	peerPings, readStalls  int64
	discarded              int64
}

func (c *counts) add(o counts) {
	c.pings += o.pings
	c.pongs += o.pongs
	c.timeouts += o.timeouts
	c.msgsIn += o.msgsIn
	c.msgsOut += o.msgsOut
	c.bytesIn += o.bytesIn
	c.bytesOut += o.bytesOut
	c.peerPings += o.peerPings
	c.readStalls += o.readStalls
	c.discarded += o.discarded
}

// ring keeps the last n events added, n given at each add.
type ring struct {
	ev   []event
	head int // oldest entry once the ring is full
}

func (r *ring) add(e event, n int) {
	if len(r.ev) < n {
		r.ev = append(r.ev, e)
		return
	}
	r.ev[r.head] = e
	r.head = (r.head + 1) % n
}

// appendTo appends the events to out, oldest first.
func (r *ring) appendTo(out []event) []event {
	out = append(out, r.ev[r.head:]...)
	return append(out, r.ev[:r.head]...)
}

// peerRing keeps the last n pings of a peer, n given at each add, in 12
// bytes each rather than an event's hundred: a server whose ten thousand
// clients ping would otherwise hold a hundred megabytes of them.
type peerRing struct {
	at   []int64  // unix nanos
	iv   []uint32 // microseconds since the previous ping, 0 on the first
	head int
}

func (r *peerRing) add(at time.Time, iv time.Duration, n int) {
	us := uint32(min(max(iv/time.Microsecond, 0), 1<<32-1))
	if len(r.at) < n {
		r.at, r.iv = append(r.at, at.UnixNano()), append(r.iv, us)
		return
	}
	r.at[r.head], r.iv[r.head] = at.UnixNano(), us
	r.head = (r.head + 1) % n
}

// appendTo appends the pings to out as events of connection id, oldest
// first.
func (r *peerRing) appendTo(out []event, id string) []event {
	for k := range len(r.at) {
		i := (r.head + k) % len(r.at)
		out = append(out, event{Conn: id, Kind: "peer_ping", Time: time.Unix(0, r.at[i]).UTC(),
			Interval: seconds(time.Duration(r.iv[i]) * time.Microsecond)})
	}
	return out
}

// track is what the dashboard knows of one connection, live or recently
// closed.
type track struct {
	info    tether.ConnInfo // the last snapshot; the final one once closed
	missing int             // registry reads in a row that did not list it
	ended   time.Time       // when the dashboard saw it close, by its own clock

	// Events counted since the dashboard started: with a close following a
	// timeout at once, the last snapshot may miss the timeout.
	pings, pongs, timeouts, peerPings, stalls int64

	// The connection's own keepalive (pings, pongs, timeouts) and its
	// stalls, and apart from them its peer's pings: a peer pinging every
	// 500 ms against an own interval of 20 s would otherwise push the own
	// pings out of the ring within a minute.
	own  ring
	peer peerRing
}

// remember keeps e in the ring it belongs to, each holding the last n.
func (t *track) remember(e event, n int) {
	if e.Kind != "peer_ping" {
		t.own.add(e, n)
		return
	}
	var iv time.Duration
	if e.Interval != nil {
		iv = time.Duration(*e.Interval * float64(time.Second))
	}
	t.peer.add(e.Time, iv, n)
}

// history returns the remembered events, oldest first.
func (t *track) history() []event {
	out := make([]event, 0, len(t.own.ev)+len(t.peer.at))
	out = t.own.appendTo(out)
	out = t.peer.appendTo(out, t.info.ID)
	slices.SortStableFunc(out, func(a, b event) int { return a.Time.Compare(b.Time) })
	return out
}

func (t *track) counts() counts {
	i := &t.info
	return counts{
		pings: max(i.PingsSent, t.pings), pongs: max(i.PongsReceived, t.pongs),
		timeouts: max(i.PingTimeouts, t.timeouts),
		msgsIn:   i.MessagesIn, msgsOut: i.MessagesOut, bytesIn: i.BytesIn, bytesOut: i.BytesOut,
		peerPings: max(i.PeerPings, t.peerPings), readStalls: max(i.ReadStalls, t.stalls),
		discarded: i.DiscardedMessages,
	}
}

// timedOut reports whether the connection failed a keepalive ping: the
// closed connections the page keeps a lane for.
func (t *track) timedOut() bool { return t.info.PingTimeouts > 0 || t.timeouts > 0 }
