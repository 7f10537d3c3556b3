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
	hosts   map[string]int
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

// take counts a connection from host, unless that would pass a bound: it
// then returns the reason for the refusal.
func (l *ConnLimit) take(host string) (refusal string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.Max > 0 && l.n >= l.Max:
		refusal = "too many connections: the server holds its maximum of " + strconv.Itoa(l.Max)
	case l.PerHost > 0 && l.hosts[host] >= l.PerHost:
		refusal = "too many connections from " + host + ": at most " + strconv.Itoa(l.PerHost) + " per address"
	}
	if refusal != "" {
		l.refused.Add(1)
		return refusal
	}
	l.n++
	if l.PerHost > 0 {
		if l.hosts == nil {
			l.hosts = map[string]int{}
		}
		l.hosts[host]++
	}
	return ""
}

// release uncounts a connection from host.
func (l *ConnLimit) release(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n--
	if l.PerHost > 0 {
		if l.hosts[host]--; l.hosts[host] <= 0 {
			delete(l.hosts, host)
		}
	}
}

// admit counts r's connection in l, or answers it with 503 and returns the
// refusal. A nil l admits everything.
func (l *ConnLimit) admit(w http.ResponseWriter, r *http.Request) (host string, err error) {
	if l == nil {
		return "", nil
	}
	host, _, splitErr := net.SplitHostPort(r.RemoteAddr)
	if splitErr != nil {
		host = r.RemoteAddr
	}
	if refusal := l.take(host); refusal != "" {
		w.Header().Set("Retry-After", "1")
		http.Error(w, refusal, http.StatusServiceUnavailable)
		return "", &HandshakeError{StatusCode: http.StatusServiceUnavailable, Reason: refusal}
	}
	return host, nil
}

// limitSlot is a connection's place in a ConnLimit, given back once.
type limitSlot struct {
	limit *ConnLimit
	host  string
	once  sync.Once
}

func (s *limitSlot) release() {
	if s != nil {
		s.once.Do(func() { s.limit.release(s.host) })
	}
}
