package dashboard

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

// sample is the number of live connections at one moment.
type sample struct {
	T time.Time `json:"t"`
	N int       `json:"n"`
}

// state follows a registry: its connections, their keepalive history, the
// recently closed ones, and the events the page feeds have yet to send.
type state struct {
	reg     *tether.Registry
	sub     *tether.Subscription
	history int
	m       *Metrics
	// node and presence: in cluster mode, this node's name and the other
	// nodes' connections (Options.Presence).
	node     string
	presence func() []hub.Presence
	// keep and keepFor bound the closed connections kept (Options).
	keep    int
	keepFor time.Duration

	mu     sync.Mutex
	conns  trackMap             // live connections
	gone   map[string]time.Time // recently closed IDs
	ended  []*track             // recently closed connections, in closing order
	endVer uint64               // changes whenever ended does
	list   []tether.ConnInfo    // live connections at the last read, oldest first, while a page watches (see keepList)
	live   int                  // how many the last read listed
	remote []connJSON           // the other nodes' connections at the last read
	events []event              // recent events, for the feeds
	seq    uint64               // seq of the last event
	series []sample
	closed map[string]*counts // counters of closed connections, by role
	lost   uint64             // events the subscription dropped
	tick   chan struct{}      // closed and replaced at every tick

	findings findingsCache
	watchers atomic.Int32 // open feeds: findings are worked out at each tick while any is

	done    chan struct{}
	stopped chan struct{}
}

func newState(reg *tether.Registry, history, keep int, keepFor time.Duration, m *Metrics) *state {
	return &state{
		reg:     reg,
		sub:     reg.Subscribe(1024),
		history: history,
		keep:    keep,
		keepFor: keepFor,
		m:       m,
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
	switch e.Kind {
	case tether.EventOpen:
		if t := s.track(e.ConnID); t != nil && found {
			t.read(&info)
		}
	case tether.EventClose:
		ev.Code, ev.Reason = int(e.Code), e.Reason
		s.closeTrack(e, time.Now())
		initiator := e.Initiator
		if initiator == "" {
			initiator = initiatorUnknown
		}
		s.m.closes.WithLabelValues(codeLabel(e.Code), initiator).Inc()
	default:
		t := s.track(e.ConnID)
		if t == nil || !t.count(e, &ev, s.m) {
			return // a late event of a closed connection, or an unknown kind
		}
		t.remember(e, s.history)
	}
	s.append(ev)
}

// count counts a keepalive or stall event in the track and fills in what ev
// says of it; false for a kind the dashboard does not know.
func (t *track) count(e tether.Event, ev *event, m *Metrics) bool {
	switch e.Kind {
	case tether.EventPing:
		t.pings++
	case tether.EventPong:
		ms := float64(e.RTT) / float64(time.Millisecond)
		ev.RTTms = &ms
		t.pongs++
		m.observeRTT(t.role.String(), e.RTT)
	case tether.EventTimeout:
		t.timeouts++
	case tether.EventPeerPing:
		t.peerPings++
		ev.Interval = seconds(e.Interval)
	case tether.EventStall:
		t.stalls++
	case tether.EventResume:
		ev.Interval = seconds(e.Interval)
	default:
		return false
	}
	return true
}

// track returns the connection's track, creating it, or nil once the
// connection has closed.
func (s *state) track(id string) *track {
	if t := s.conns.get(id); t != nil {
		return t
	}
	if _, ok := s.gone[id]; ok {
		return nil
	}
	t := &track{}
	s.conns.put(id, t)
	return t
}

// closeTrack takes a close event: the track gets the final snapshot the
// event carries (its counters and how it ended) and moves to the closed
// ones. A close that comes after the connection was taken as closed (its
// reads missed) still updates what is kept of it.
func (s *state) closeTrack(e tether.Event, now time.Time) {
	t := s.conns.get(e.ConnID)
	if t == nil {
		if k := s.endedTrack(e.ConnID); k != nil && e.Info != nil {
			k.read(e.Info)
			info := closedInfo(*e.Info, k, now)
			k.info = &info
			s.endVer++
			return
		}
		if _, ok := s.gone[e.ConnID]; ok || e.Info == nil {
			return
		}
		t = &track{}
		s.conns.put(e.ConnID, t)
	}
	if e.Info != nil {
		// The final snapshot, with the final counters, not the last poll's.
		t.read(e.Info)
		info := *e.Info
		t.info = &info
	}
	s.forget(e.ConnID, now)
}

// forget drops a closed connection from the live ones, keeping its counters
// in the totals and the connection itself among the recently closed.
func (s *state) forget(id string, now time.Time) {
	t := s.conns.get(id)
	s.conns.remove(id)
	s.gone[id] = now
	if t == nil || t.role == 0 { // never read: nothing to count or show
		return
	}
	c := s.closed[t.role.String()]
	if c == nil {
		c = &counts{}
		s.closed[t.role.String()] = c
	}
	c.add(t.counts())
	s.retain(t, id, now)
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

// merge takes a fresh read of the registry into the tracks and returns the
// live connections it lists; the caller holds s.mu. A connection missing
// from several reads in a row is taken as closed, in case its close event
// was lost.
func (s *state) merge(list []tether.ConnInfo, now time.Time) []tether.ConnInfo {
	live := list[:0]
	for i := range list {
		if s.mergeOne(&list[i]) {
			live = append(live, list[i])
		}
	}
	s.endMerge(len(live), now)
	return live
}

// mergeOne takes one connection of a registry read into its track, and
// reports whether it is live (not closed while the read was under way);
// the caller holds s.mu.
func (s *state) mergeOne(ci *tether.ConnInfo) bool {
	t := s.track(ci.ID)
	if t == nil {
		return false
	}
	t.read(ci)
	t.seen = true
	return true
}

// mergeRegistry is merge straight from the registry, one connection at a
// time, for when no page needs the list: a read of every snapshot at once
// is several hundred bytes a connection, twice a second. The caller holds
// s.mu.
func (s *state) mergeRegistry(now time.Time) {
	n := 0
	s.reg.Range(func(ci tether.ConnInfo) bool {
		if s.mergeOne(&ci) {
			n++
		}
		return true
	})
	s.endMerge(n, now)
}

// endMerge ends a merge that found n live connections: those it did not
// see go missing, and what was kept of closed ones expires. The caller
// holds s.mu.
func (s *state) endMerge(n int, now time.Time) {
	s.live = n
	s.conns.each(func(k trackKey, t *track) {
		if t.seen {
			t.seen = false
			return
		}
		if t.missing++; t.missing >= missingAfter {
			id := k.String()
			s.forget(id, now)
			s.append(event{Conn: id, Kind: "close", Time: now.UTC()})
		}
	})
	for id, at := range s.gone {
		if now.Sub(at) > goneFor {
			delete(s.gone, id)
		}
	}
	s.expire(now)
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
// connection count (the cluster's, in cluster mode) when asked to, works
// out the findings while a page watches, and wakes the feeds.
func (s *state) refresh(now time.Time, sampleCount bool) {
	var list []tether.ConnInfo
	watched := s.watchers.Load() > 0
	if watched {
		list = s.read()
		s.refreshFindings()
	}
	remote := s.readRemote()
	s.mu.Lock()
	defer s.mu.Unlock()
	if watched {
		s.list = s.merge(list, now)
	} else {
		s.list = nil
		s.mergeRegistry(now)
	}
	s.remote = remote
	if sampleCount {
		if len(s.series) >= maxSamples {
			s.series = slices.Delete(s.series, 0, len(s.series)-maxSamples+1)
		}
		s.series = append(s.series, sample{T: now.UTC().Truncate(time.Millisecond), N: s.live + len(s.remote)})
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
	live := s.merge(list, time.Now())
	out := map[string]counts{}
	for role, c := range s.closed {
		sum := out[role]
		sum.add(*c)
		out[role] = sum
	}
	s.conns.each(func(_ trackKey, t *track) {
		if t.role == 0 {
			return // not read from the registry yet
		}
		sum := out[t.role.String()]
		sum.add(t.counts())
		out[t.role.String()] = sum
	})
	return live, out // a fresh slice, which merges leave alone
}

// connection returns the last snapshot of one connection and its history:
// a live one's, or the final one of a recently closed one.
func (s *state) connection(id string) (tether.ConnInfo, []event, bool) {
	info, ok := s.reg.Get(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok {
		if t := s.endedTrack(id); t != nil {
			return *t.info, t.history(id), true
		}
		return tether.ConnInfo{}, nil, false
	}
	if t := s.conns.get(id); t != nil {
		return info, t.history(id), true
	}
	return info, nil, true // opened a moment ago
}
