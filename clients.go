package tether

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
	"unique"
)

// The report behind Tether, seen from the server: one client process holds
// several connections to one endpoint, pinging at different intervals, and
// its keepalive lines interleave. A server cannot see the client's process,
// but it sees where connections come from (the remote host, and where
// present the X-Forwarded-For address and the User-Agent) and how often
// each peer pings (peerping.go). The registry groups server connections by
// client and endpoint, and warns when one group's peers ping at different
// cadences or when a client holds more connections to one endpoint than a
// client usually does.

// clientID is who opened a server connection, as far as its request says.
type clientID struct {
	host      string // the remote address without its port
	forwarded string // the first X-Forwarded-For address, if any
	agent     string // the User-Agent
}

// clientOf identifies the client of request r arriving on nc. Connections
// from one client share the interned value.
func clientOf(r *http.Request, nc net.Conn) unique.Handle[clientID] {
	id := clientID{agent: r.UserAgent()}
	id.host = addrString(nc.RemoteAddr())
	if h, _, err := net.SplitHostPort(id.host); err == nil {
		id.host = h
	}
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		first, _, _ := strings.Cut(xff, ",")
		id.forwarded = strings.TrimSpace(first)
	}
	return unique.Make(id)
}

// addr is the client's address: the forwarded one when a proxy gave it.
func (id clientID) addr() string {
	if id.forwarded != "" {
		return id.forwarded
	}
	return id.host
}

// String is the client as a person reads it: "127.0.0.1 (Python/3.11
// websockets/10.4)", with "via" the proxy when forwarded.
func (id clientID) String() string {
	s := id.addr()
	if id.forwarded != "" {
		s += " via " + id.host
	}
	if id.agent != "" {
		s += " (" + id.agent + ")"
	}
	return s
}

// manyConns is how many connections one client holds to one endpoint
// before the registry warns: a browser with two tabs holds two.
const manyConns = 3

// clientKey groups server connections: one client, one path.
type clientKey struct {
	client unique.Handle[clientID]
	path   string // without the query
}

// noClient is the client of a connection not opened by Accept (tests).
var noClient unique.Handle[clientID]

func clientKeyOf(c *conn) clientKey {
	p, _, _ := strings.Cut(c.path, "?")
	return clientKey{client: c.client, path: p}
}

// clientGroup is the live server connections of one clientKey.
type clientGroup struct {
	n       int
	cadence map[*conn]time.Duration // the peers' ping intervals, once measured
	warned  int                     // distinct cadences at the last warning
}

// addClient counts a server connection in its group and warns when its
// client holds many: at manyConns, then at every power of two.
func (r *Registry) addClient(c *conn) {
	k := clientKeyOf(c)
	r.epMu.Lock()
	g := r.clients[k]
	if g == nil {
		g = &clientGroup{}
		r.clients[k] = g
	}
	g.n++
	n := g.n
	r.epMu.Unlock()
	if n == manyConns || n > manyConns && n&(n-1) == 0 {
		r.warnClient(k, "several connections from one client to one endpoint", n, nil)
	}
}

func (r *Registry) removeClient(c *conn) {
	k := clientKeyOf(c)
	r.epMu.Lock()
	defer r.epMu.Unlock()
	g := r.clients[k]
	if g == nil {
		return
	}
	if g.cadence != nil {
		delete(g.cadence, c)
		g.warned = min(g.warned, len(cadences(g.cadence)))
	}
	if g.n--; g.n <= 0 {
		delete(r.clients, k)
	}
}

// peerCadence takes a server connection's peer ping interval iv into its
// group once measured or moved (peerPinged tells), and warns when a new
// cadence appears in a group: the report's situation.
func (r *Registry) peerCadence(c *conn, iv time.Duration) {
	k := clientKeyOf(c)
	r.epMu.Lock()
	g := r.clients[k]
	if g == nil { // closed meanwhile
		r.epMu.Unlock()
		return
	}
	if g.cadence == nil {
		g.cadence = map[*conn]time.Duration{}
	}
	g.cadence[c] = iv
	distinct := len(cadences(g.cadence))
	warn := distinct > 1 && distinct > g.warned
	if warn {
		g.warned = distinct
	}
	n := g.n
	r.epMu.Unlock()
	if warn {
		r.warnClient(k, "connections from one client to one endpoint whose peers ping at different intervals", n, c)
	}
}

// warnClient logs a group's warning, with its connections and their peers'
// intervals (up to maxWarnConns, the newest, which include c).
func (r *Registry) warnClient(k clientKey, msg string, n int, c *conn) {
	conns := r.groupConns(k)
	if len(conns) > maxWarnConns {
		conns = conns[len(conns)-maxWarnConns:]
	}
	ids := make([]string, len(conns))
	ivs := make([]string, len(conns))
	for i, gc := range conns {
		ids[i] = gc.id.String()
		ivs[i] = "none"
		if pk := gc.peerKeepalive(); pk.Interval > 0 {
			ivs[i] = roundCadence(pk.Interval).String()
		}
	}
	id := k.client.Value()
	attrs := []any{"endpoint", k.path, "remote", id.addr(), "count", n, "conns", ids, "peer_ping_intervals", ivs}
	if id.agent != "" {
		attrs = append(attrs, "user_agent", id.agent)
	}
	if id.forwarded != "" {
		attrs = append(attrs, "via", id.host)
	}
	attrs = append(attrs, "hint", clientHint)
	r.logger().Log(context.Background(), slog.LevelWarn, msg, attrs...)
}

const clientHint = "one client process may hold several client instances (each with its own keepalive) where it means to share one: check the client's code, or its ping settings if deliberate"

// groupConns lists the live server connections of one group, oldest first.
func (r *Registry) groupConns(k clientKey) []*conn {
	var out []*conn
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for c := range s.all() {
			if c.role.String() == "server" && clientKeyOf(c) == k {
				out = append(out, c)
			}
		}
		s.mu.Unlock()
	}
	sortConns(out)
	return out
}

// sameCadence reports whether two ping intervals are one cadence measured
// twice: within 10 % and 10 ms (a fixed schedule's jitter is far less; an
// idle-mode pinger's intervals vary more, and count as one cadence only
// when they stay close).
func sameCadence(a, b time.Duration) bool {
	if a > b {
		a, b = b, a
	}
	return b-a <= a/10+10*time.Millisecond
}

// cadences returns the distinct cadences among the intervals, shortest
// first.
func cadences(m map[*conn]time.Duration) []time.Duration {
	ds := make([]time.Duration, 0, len(m))
	for _, d := range m {
		ds = append(ds, d)
	}
	return distinctCadences(ds)
}

func distinctCadences(ds []time.Duration) []time.Duration {
	slices.Sort(ds)
	var out []time.Duration
	for _, d := range ds {
		if len(out) == 0 || !sameCadence(out[len(out)-1], d) {
			out = append(out, d)
		}
	}
	return out
}

// roundCadence rounds an interval for people: to 10 ms under 10 s, to
// 100 ms above.
func roundCadence(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}

// describe is a group for a finding's message: "127.0.0.1 (UA) to /echo".
func (k clientKey) describe() string {
	return fmt.Sprintf("%s to %s", k.client.Value(), k.path)
}
