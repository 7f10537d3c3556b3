package tether

import (
	"sync/atomic"
	"time"
)

// EventKind says what happened to a connection.
type EventKind int

// Registry events.
const (
	EventOpen     EventKind = iota + 1 // a connection registered
	EventClose                         // a connection ended
	EventPing                          // a keepalive ping went out
	EventPong                          // a keepalive pong came back (RTT set)
	EventTimeout                       // a keepalive ping timed out
	EventPeerPing                      // the peer sent a ping (Interval set after its first)
	EventStall                         // the application stopped reading: keepalive's timeout suspended
	EventResume                        // the application reads again (Interval: how long it stalled)
)

func (k EventKind) String() string {
	switch k {
	case EventOpen:
		return "open"
	case EventClose:
		return "close"
	case EventPing:
		return "ping"
	case EventPong:
		return "pong"
	case EventTimeout:
		return "timeout"
	case EventPeerPing:
		return "peer_ping"
	case EventStall:
		return "stall"
	case EventResume:
		return "resume"
	}
	return "unknown"
}

// Event is one thing that happened to a registered connection.
type Event struct {
	Kind      EventKind
	ConnID    string
	Time      time.Time
	RTT       time.Duration // EventPong
	Interval  time.Duration // EventPeerPing: since the peer's previous ping; EventResume: the stall
	Code      StatusCode    // EventClose
	Reason    string        // EventClose
	Initiator string        // EventClose: "local" or "peer"
	// Info is the connection's snapshot, on EventOpen and EventClose (the
	// final counters).
	Info *ConnInfo
	// Dropped is how many events this subscriber lost, because it was slow,
	// just before this one.
	Dropped uint64
}

// Subscription receives a registry's events on C. A subscriber that does not
// keep up loses events rather than slowing any connection down; the next
// event it gets says how many it lost, and Dropped counts them all.
type Subscription struct {
	C       <-chan Event
	c       chan Event
	r       *Registry
	dropped atomic.Uint64
	pending atomic.Uint64 // lost since the last delivered event
}

// Subscribe returns a subscription buffering up to buffer events.
func (r *Registry) Subscribe(buffer int) *Subscription {
	s := &Subscription{c: make(chan Event, max(buffer, 1)), r: r}
	s.C = s.c
	r.subsMu.Lock()
	defer r.subsMu.Unlock()
	var list []*Subscription
	if p := r.subs.Load(); p != nil {
		list = append(list, *p...)
	}
	list = append(list, s)
	r.subs.Store(&list)
	return s
}

// Dropped returns how many events the subscriber has lost in all.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription and closes C.
func (s *Subscription) Close() {
	r := s.r
	r.subsMu.Lock()
	defer r.subsMu.Unlock()
	p := r.subs.Load()
	if p == nil {
		return
	}
	var list []*Subscription
	found := false
	for _, x := range *p {
		if x == s {
			found = true
			continue
		}
		list = append(list, x)
	}
	if !found {
		return
	}
	r.subs.Store(&list)
	close(s.c)
}

// publish offers e to every subscriber without ever blocking. Delivery to a
// subscription happens under subsMu so Close cannot race with a send.
func (r *Registry) publish(e Event) {
	p := r.subs.Load()
	if p == nil || len(*p) == 0 {
		return
	}
	r.subsMu.Lock()
	defer r.subsMu.Unlock()
	for _, s := range *r.subs.Load() {
		ev := e
		ev.Dropped = s.pending.Load()
		select {
		case s.c <- ev:
			s.pending.Store(0)
		default:
			s.pending.Add(1)
			s.dropped.Add(1)
		}
	}
}
