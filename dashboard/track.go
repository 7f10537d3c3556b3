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

// ownEvent is an event of a connection's own keepalive, or a stall, as a
// ring keeps it: 24 bytes where an event takes more than a hundred, since
// every connection keeps up to History of them.
type ownEvent struct {
	at   int64 // unix nanos
	v    int64 // a pong's RTT, a resume's stall, in nanoseconds
	kind ownKind
}

type ownKind uint8

const (
	kindPing ownKind = iota + 1
	kindPong
	kindTimeout
	kindStall
	kindResume
)

var ownKinds = [...]string{kindPing: "ping", kindPong: "pong", kindTimeout: "timeout", kindStall: "stall", kindResume: "resume"}

// ownEventOf is e as a ring keeps it; false for a kind no ring keeps.
func ownEventOf(e tether.Event) (ownEvent, bool) {
	o := ownEvent{at: e.Time.UnixNano()}
	switch e.Kind {
	case tether.EventPing:
		o.kind = kindPing
	case tether.EventPong:
		o.kind, o.v = kindPong, int64(e.RTT)
	case tether.EventTimeout:
		o.kind = kindTimeout
	case tether.EventStall:
		o.kind = kindStall
	case tether.EventResume:
		o.kind, o.v = kindResume, int64(e.Interval)
	default:
		return o, false
	}
	return o, true
}

// event is o as the API shows it, for connection id: what apply made of the
// registry's event.
func (o ownEvent) event(id string) event {
	e := event{Conn: id, Kind: ownKinds[o.kind], Time: time.Unix(0, o.at).UTC()}
	switch o.kind {
	case kindPong:
		ms := float64(o.v) / float64(time.Millisecond)
		e.RTTms = &ms
	case kindResume:
		e.Interval = seconds(time.Duration(o.v))
	}
	return e
}

// ring keeps the last n events added, n given at each add.
type ring struct {
	ev   []ownEvent
	head int // oldest entry once the ring is full
}

func (r *ring) add(e ownEvent, n int) {
	if len(r.ev) < n {
		r.ev = append(grow(r.ev, n), e)
		return
	}
	r.ev[r.head] = e
	r.head = (r.head + 1) % n
}

// grow makes room in a ring's full slice s for one more entry, as append
// would by doubling, but never past n entries, where the ring stops
// growing: append would take 128 for 100.
func grow[E any](s []E, n int) []E {
	if len(s) < cap(s) {
		return s
	}
	out := make([]E, len(s), min(max(2*cap(s), 2), n))
	copy(out, s)
	return out
}

// appendTo appends the events to out, oldest first, as events of
// connection id.
func (r *ring) appendTo(out []event, id string) []event {
	for _, e := range r.ev[r.head:] {
		out = append(out, e.event(id))
	}
	for _, e := range r.ev[:r.head] {
		out = append(out, e.event(id))
	}
	return out
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
		r.at, r.iv = append(grow(r.at, n), at.UnixNano()), append(grow(r.iv, n), us)
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
// closed. A live connection's is small, since every connection has one:
// its counters at the last registry read, for the metrics, and its events
// once it has some. Its snapshot is the registry's to give when asked,
// not kept, until it closes.
type track struct {
	last  counts           // the counters of the last registry read; the final ones once closed
	hist  *history         // its events, made by the first
	info  *tether.ConnInfo // the final snapshot, once closed
	ended int64            // unix nanos the dashboard saw it close, by its own clock

	// Events counted since the dashboard started: with a close following a
	// timeout at once, the last snapshot may miss the timeout.
	pings, pongs, timeouts, peerPings, stalls uint32

	role    role  // from the first registry read; 0 before
	missing uint8 // registry reads in a row that did not list it
	seen    bool  // listed by the registry read being merged
}

// history is a connection's own keepalive events and stalls, and apart
// from them its peer's pings: a peer pinging every 500 ms against an own
// interval of 20 s would otherwise push the own pings out of the ring
// within a minute.
type history struct {
	own  ring
	peer peerRing
}

// role is a connection's role in a byte.
type role uint8

const (
	roleClient role = iota + 1
	roleServer
)

func roleOf(s string) role {
	switch s {
	case "client":
		return roleClient
	case "server":
		return roleServer
	}
	return 0
}

func (r role) String() string {
	switch r {
	case roleClient:
		return "client"
	case roleServer:
		return "server"
	}
	return ""
}

// countsOf returns a snapshot's counters.
func countsOf(i *tether.ConnInfo) counts {
	return counts{
		pings: i.PingsSent, pongs: i.PongsReceived, timeouts: i.PingTimeouts,
		msgsIn: i.MessagesIn, msgsOut: i.MessagesOut, bytesIn: i.BytesIn, bytesOut: i.BytesOut,
		peerPings: i.PeerPings, readStalls: i.ReadStalls, discarded: i.DiscardedMessages,
	}
}

// read takes what the track keeps of a registry snapshot.
func (t *track) read(ci *tether.ConnInfo) {
	t.last, t.missing = countsOf(ci), 0
	if r := roleOf(ci.Role); r != 0 {
		t.role = r
	}
}

// remember keeps e in the ring it belongs to, each holding the last n.
func (t *track) remember(e tether.Event, n int) {
	if t.hist == nil {
		t.hist = &history{}
	}
	if e.Kind == tether.EventPeerPing {
		t.hist.peer.add(e.Time, e.Interval, n)
		return
	}
	if o, ok := ownEventOf(e); ok {
		t.hist.own.add(o, n)
	}
}

// history returns the remembered events of connection id, oldest first.
func (t *track) history(id string) []event {
	if t.hist == nil {
		return []event{}
	}
	h := t.hist
	out := make([]event, 0, len(h.own.ev)+len(h.peer.at))
	out = h.own.appendTo(out, id)
	out = h.peer.appendTo(out, id)
	slices.SortStableFunc(out, func(a, b event) int { return a.Time.Compare(b.Time) })
	return out
}

func (t *track) counts() counts {
	c := t.last
	c.pings = max(c.pings, int64(t.pings))
	c.pongs = max(c.pongs, int64(t.pongs))
	c.timeouts = max(c.timeouts, int64(t.timeouts))
	c.peerPings = max(c.peerPings, int64(t.peerPings))
	c.readStalls = max(c.readStalls, int64(t.stalls))
	return c
}

// lastInfo is what the track can say of connection id when its close event
// was lost: its role and its counters at the last read.
func (t *track) lastInfo(id string) tether.ConnInfo {
	c := t.counts()
	return tether.ConnInfo{ID: id, Role: t.role.String(),
		PingsSent: c.pings, PongsReceived: c.pongs, PingTimeouts: c.timeouts,
		MessagesIn: c.msgsIn, MessagesOut: c.msgsOut, BytesIn: c.bytesIn, BytesOut: c.bytesOut,
		PeerPings: c.peerPings, ReadStalls: c.readStalls, DiscardedMessages: c.discarded}
}

// timedOut reports whether the connection failed a keepalive ping: the
// closed connections the page keeps a lane for.
func (t *track) timedOut() bool { return t.last.timeouts > 0 || t.timeouts > 0 }
