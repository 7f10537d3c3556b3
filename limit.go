package tether

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
)

// ConnLimit bounds the WebSocket connections a server holds, in all and
// from one remote IP address. Set it as AcceptOptions.Limit, shared by
// every Accept it should count: past a bound, Accept answers the upgrade
// with 503 Service Unavailable, Retry-After and a plain-text reason, and
// returns a *HandshakeError, before the connection costs more than its
// request. A connection counts from its upgrade until it has ended.
//
// PerHost counts by the TCP peer's address: behind a proxy every client
// shares the proxy's, and behind a NAT many clients share one, so leave it
// 0 (no limit) there or set it with that in mind.
//
// A ConnLimit must not be copied after first use.
type ConnLimit struct {
	// Max is the largest number of connections; 0 means no limit.
	Max int
	// PerHost is the largest number of connections from one remote IP
	// address; 0 means no limit.
	PerHost int

	mu      sync.Mutex
	n       int
	hosts   map[string]*limitSlot // by remote address, with PerHost
	all     *limitSlot            // the slot without PerHost
	refused atomic.Int64
}

// Len returns the number of connections counted now.
func (l *ConnLimit) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// Refused returns how many upgrades the limit has refused.
func (l *ConnLimit) Refused() int64 { return l.refused.Load() }

// take counts a connection from host and returns its slot, unless that
// would pass a bound: it then returns the reason for the refusal.
func (l *ConnLimit) take(host string) (slot *limitSlot, refusal string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	hs := l.hosts[host]
	switch {
	case l.Max > 0 && l.n >= l.Max:
		refusal = "too many connections: the server holds its maximum of " + strconv.Itoa(l.Max)
	case l.PerHost > 0 && hs != nil && hs.n >= l.PerHost:
		refusal = "too many connections from " + host + ": at most " + strconv.Itoa(l.PerHost) + " per address"
	}
	if refusal != "" {
		l.refused.Add(1)
		return nil, refusal
	}
	l.n++
	if l.PerHost <= 0 {
		if l.all == nil {
			l.all = &limitSlot{limit: l}
		}
		return l.all, ""
	}
	if hs == nil {
		if l.hosts == nil {
			l.hosts = map[string]*limitSlot{}
		}
		hs = &limitSlot{limit: l, host: host, perHost: true}
		l.hosts[host] = hs
	}
	hs.n++
	return hs, ""
}

// release uncounts a connection of slot s.
func (l *ConnLimit) release(s *limitSlot) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n--
	if s.perHost {
		if s.n--; s.n <= 0 {
			delete(l.hosts, s.host)
		}
	}
}

// admit counts r's connection in l and returns its slot, or answers it
// with 503 and returns the refusal. A nil l admits everything, with a nil
// slot.
func (l *ConnLimit) admit(w http.ResponseWriter, r *http.Request) (*limitSlot, error) {
	if l == nil {
		return nil, nil
	}
	host, _, splitErr := net.SplitHostPort(r.RemoteAddr)
	if splitErr != nil {
		host = r.RemoteAddr
	}
	slot, refusal := l.take(host)
	if refusal != "" {
		w.Header().Set("Retry-After", "1")
		http.Error(w, refusal, http.StatusServiceUnavailable)
		return nil, &HandshakeError{StatusCode: http.StatusServiceUnavailable, Reason: refusal}
	}
	return slot, nil
}

// limitSlot is where a ConnLimit counts connections: one for all of them,
// or with PerHost one per remote address, shared by its connections, so
// that a connection holds a pointer and nothing of its own. Each
// connection releases its place once: finish runs once.
type limitSlot struct {
	limit   *ConnLimit
	host    string
	perHost bool
	n       int // connections from host, under limit.mu
}

// release gives a connection's place back; nil releases nothing.
func (s *limitSlot) release() {
	if s != nil {
		s.limit.release(s)
	}
}
