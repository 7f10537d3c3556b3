package dashboard

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tetherws/tether"
	"github.com/tetherws/tether/hub"
)

const (
	// tickEvery is how often the registry is read and the feeds are pushed.
	tickEvery = 500 * time.Millisecond
	// maxEvents is how many recent events the feeds can catch up from; a
	// feed that falls further behind gets a fresh hello.
	maxEvents = 4096
	// maxSamples is how much connection-count history is kept: 15 minutes
	// at one sample a second.
	maxSamples = 900
	// goneFor is how long a closed connection's ID is remembered, so a
	// snapshot taken just before the close does not bring it back.
	goneFor = time.Minute
	// missingAfter is how many registry reads in a row may miss a tracked
	// connection before it is taken as closed (its close event was lost).
	missingAfter = 3
)

// event is one thing that happened to a connection, as the API and the page
// see it.
type event struct {
	seq    uint64
	Conn   string    `json:"conn"`
	Kind   string    `json:"kind"` // open, close, ping, pong, timeout
	Time   time.Time `json:"time"`
	RTTms  *float64  `json:"rtt_ms,omitempty"` // pong
	Code   int       `json:"code,omitempty"`   // close
	Reason string    `json:"reason,omitempty"` // close
}

// sample is the number of live connections at one moment.
type sample struct {
	T time.Time `json:"t"`
	N int       `json:"n"`
}

// counts are a connection's cumulative counters, for the metrics.
type counts struct {
	pings, pongs, timeouts int64
	msgsIn, msgsOut        int64
	bytesIn, bytesOut      int64
}

func (c *counts) add(o counts) {
	c.pings += o.pings
	c.pongs += o.pongs
	c.timeouts += o.timeouts
	c.msgsIn += o.msgsIn
	c.msgsOut += o.msgsOut
	c.bytesIn += o.bytesIn
	c.bytesOut += o.bytesOut
}

// track is what the dashboard knows of one live connection.
type track struct {
	info    tether.ConnInfo // the last snapshot
	missing int             // registry reads in a row that did not list it

	// Keepalive events counted since the dashboard started: with a close
	// following a timeout at once, the last snapshot may miss the timeout.
	pings, pongs, timeouts int64

	hist []event // ring of the last keepalive events
	head int     // oldest entry once the ring is full
}

func (t *track) remember(e event, n int) {
	if len(t.hist) < n {
		t.hist = append(t.hist, e)
		return
	}
	t.hist[t.head] = e
	t.head = (t.head + 1) % n
}

// history returns the remembered events, oldest first.
func (t *track) history() []event {
	out := make([]event, 0, len(t.hist))
	out = append(out, t.hist[t.head:]...)
	return append(out, t.hist[:t.head]...)
}

func (t *track) counts() counts {
	i := &t.info
	return counts{
		pings: max(i.PingsSent, t.pings), pongs: max(i.PongsReceived, t.pongs),
		timeouts: max(i.PingTimeouts, t.timeouts),
		msgsIn:   i.MessagesIn, msgsOut: i.MessagesOut, bytesIn: i.BytesIn, bytesOut: i.BytesOut,
	}
}

// state follows a registry: its connections, their keepalive history, and
// the events the page feeds have yet to send.
type state struct {
	reg     *tether.Registry
	sub     *tether.Subscription
	history int
	m       *Metrics
	// node and presence: in cluster mode, this node's name and the other
	// nodes' connections (Options.Presence).
	node     string
	presence func() []hub.Presence

	mu     sync.Mutex
	conns  map[string]*track
	gone   map[string]time.Time // recently closed IDs
	list   []tether.ConnInfo    // live connections at the last read, oldest first
	remote []connJSON           // the other nodes' connections at the last read
	events []event              // recent events, for the feeds
	seq    uint64               // seq of the last event
	series []sample
	closed map[string]*counts // counters of closed connections, by role
	lost   uint64             // events the subscription dropped
	tick   chan struct{}      // closed and replaced at every tick

	done    chan struct{}
	stopped chan struct{}
}

func newState(reg *tether.Registry, history int, m *Metrics) *state {
	return &state{
		reg:     reg,
		sub:     reg.Subscribe(1024),
		history: history,
		m:       m,
		conns:   map[string]*track{},
		gone:    map[string]time.Time{},
		closed:  map[string]*counts{},
		tick:    make(chan struct{}),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
}

// run applies the registry's events as they come and reads the registry at
// every tick, until close.
func (s *state) run() {
	defer close(s.stopped)
	t := time.NewTicker(tickEvery)
	defer t.Stop()
	s.refresh(time.Now(), true)
	for n := 1; ; n++ {
		select {
		case e := <-s.sub.C:
			s.apply(e)
		case now := <-t.C:
			s.refresh(now, n%2 == 0)
		case <-s.done:
			return
		}
	}
}

func (s *state) close() {
	close(s.done)
	<-s.stopped
	s.sub.Close()
}

// apply records one registry event.
func (s *state) apply(e tether.Event) {
	var info tether.ConnInfo
	var found bool
	if e.Kind == tether.EventOpen {
		info, found = s.reg.Get(e.ConnID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.Dropped > 0 {
		s.lost += e.Dropped
		s.m.eventsLost.Add(float64(e.Dropped))
	}
	ev := event{Conn: e.ConnID, Kind: e.Kind.String(), Time: e.Time.UTC()}
	t := s.track(e.ConnID)
	switch e.Kind {
	case tether.EventOpen:
		if t != nil && found {
			t.info = info
		}
	case tether.EventPing, tether.EventPong, tether.EventTimeout:
		if t == nil {
			return // a late event of a closed connection
		}
		switch e.Kind {
		case tether.EventPing:
			t.pings++
		case tether.EventPong:
			ms := float64(e.RTT) / float64(time.Millisecond)
			ev.RTTms = &ms
			t.pongs++
			s.m.observeRTT(t.info.Role, e.RTT)
		case tether.EventTimeout:
			t.timeouts++
		}
		t.remember(ev, s.history)
	case tether.EventClose:
		ev.Code, ev.Reason = int(e.Code), e.Reason
		if t := s.conns[e.ConnID]; t != nil && e.Info != nil {
			t.info = *e.Info // the final counters, not the last poll's
		} else if t == nil && e.Info != nil {
			s.conns[e.ConnID] = &track{info: *e.Info}
		}
		s.forget(e.ConnID, ev.Time)
		initiator := e.Initiator
		if initiator == "" {
			initiator = initiatorUnknown
		}
		s.m.closes.WithLabelValues(codeLabel(e.Code), initiator).Inc()
	}
	s.append(ev)
}

// track returns the connection's track, creating it, or nil once the
// connection has closed.
func (s *state) track(id string) *track {
	if t := s.conns[id]; t != nil {
		return t
	}
	if _, ok := s.gone[id]; ok {
		return nil
	}
	t := &track{info: tether.ConnInfo{ID: id}}
	s.conns[id] = t
	return t
}

// forget drops a closed connection, keeping its counters in the totals.
func (s *state) forget(id string, now time.Time) {
	if t := s.conns[id]; t != nil && t.info.Role != "" { // "": never read, nothing counted
		c := s.closed[t.info.Role]
		if c == nil {
			c = &counts{}
			s.closed[t.info.Role] = c
		}
		c.add(t.counts())
	}
	delete(s.conns, id)
	s.gone[id] = now
}

func (s *state) append(e event) {
	s.seq++
	e.seq = s.seq
	if len(s.events) >= maxEvents {
		s.events = slices.Delete(s.events, 0, maxEvents/4)
	}
	s.events = append(s.events, e)
}

// read lists the registry's connections, oldest first.
func (s *state) read() []tether.ConnInfo {
	list := make([]tether.ConnInfo, 0, s.reg.Len()+8)
	s.reg.Range(func(ci tether.ConnInfo) bool {
		list = append(list, ci)
		return true
	})
	slices.SortFunc(list, func(a, b tether.ConnInfo) int {
		if c := a.OpenedAt.Compare(b.OpenedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return list
}

// merge takes a fresh read of the registry into the tracks; the caller
// holds s.mu. A connection missing from several reads in a row is taken as
// closed, in case its close event was lost.
func (s *state) merge(list []tether.ConnInfo, now time.Time) {
	live := list[:0]
	seen := make(map[string]bool, len(list))
	for _, ci := range list {
		t := s.track(ci.ID)
		if t == nil {
			continue // closed while the read was under way
		}
		t.info, t.missing = ci, 0
		seen[ci.ID] = true
		live = append(live, ci)
	}
	s.list = live
	for id, t := range s.conns {
		if seen[id] {
			continue
		}
		if t.missing++; t.missing >= missingAfter {
			s.forget(id, now)
			s.append(event{Conn: id, Kind: "close", Time: now.UTC()})
		}
	}
	for id, at := range s.gone {
		if now.Sub(at) > goneFor {
			delete(s.gone, id)
		}
	}
}

// readRemote returns the other nodes' connections, by node, oldest first
// on each; none outside cluster mode.
func (s *state) readRemote() []connJSON {
	if s.presence == nil {
		return nil
	}
	ps := s.presence()
	out := make([]connJSON, 0, len(ps))
	for _, p := range ps {
		if s.node != "" && p.Node == s.node {
			continue // this node's own, listed from the registry
		}
		out = append(out, connJSON{ConnInfo: p.ConnInfo, Node: p.Node})
	}
	slices.SortFunc(out, func(a, b connJSON) int {
		if c := strings.Compare(a.Node, b.Node); c != 0 {
			return c
		}
		if c := a.OpenedAt.Compare(b.OpenedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// refresh reads the registry and the other nodes' connections, samples the
// connection count (the cluster's, in cluster mode) when asked to, and
// wakes the feeds.
func (s *state) refresh(now time.Time, sampleCount bool) {
	list := s.read()
	remote := s.readRemote()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.merge(list, now)
	s.remote = remote
	if sampleCount {
		if len(s.series) >= maxSamples {
			s.series = slices.Delete(s.series, 0, len(s.series)-maxSamples+1)
		}
		s.series = append(s.series, sample{T: now.UTC().Truncate(time.Millisecond), N: len(s.list) + len(s.remote)})
	}
	close(s.tick)
	s.tick = make(chan struct{})
}

// ticked returns a channel closed at the next tick.
func (s *state) ticked() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tick
}

// totals returns, for the metrics, a fresh read of the registry and the
// cumulative counters by role, closed connections included.
func (s *state) totals() ([]tether.ConnInfo, map[string]counts) {
	list := s.read()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.merge(list, time.Now())
	out := map[string]counts{}
	for role, c := range s.closed {
		sum := out[role]
		sum.add(*c)
		out[role] = sum
	}
	for _, t := range s.conns {
		if t.info.Role == "" {
			continue // not read from the registry yet
		}
		sum := out[t.info.Role]
		sum.add(t.counts())
		out[t.info.Role] = sum
	}
	return slices.Clone(s.list), out
}

// connection returns the last snapshot of one connection and its history.
func (s *state) connection(id string) (tether.ConnInfo, []event, bool) {
	info, ok := s.reg.Get(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok {
		return tether.ConnInfo{}, nil, false
	}
	if t := s.conns[id]; t != nil {
		return info, t.history(), true
	}
	return info, nil, true // opened a moment ago
}
