package tether

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Finding is something the registry sees across its live connections that
// one connection's records cannot show: the report behind Tether (one
// client, several connections to one endpoint, pinging at different
// intervals), many connections from one client, or an application that has
// stopped reading. The dashboard lists them; the registry's log warns of
// the first two as they appear.
type Finding struct {
	Kind     string `json:"kind"`     // FindingIntervalMismatch, FindingDuplicate or FindingNotReading
	Severity string `json:"severity"` // "warning" or "info"
	Role     string `json:"role"`     // of the connections: "server" or "client"
	Endpoint string `json:"endpoint"` // the request path (server) or the URL's scheme://host/path (client)
	// Remote and UserAgent say which client, for server connections.
	Remote    string   `json:"remote,omitempty"`
	UserAgent string   `json:"user_agent,omitempty"`
	Message   string   `json:"message"`
	Count     int      `json:"count"` // connections concerned; Conns lists at most ten, the newest
	Conns     []string `json:"conns"`
	// Intervals holds, for each of Conns, the keepalive interval the finding
	// is about: the peer's (server) or the connection's own (client); null
	// where not measured yet.
	Intervals []*Seconds `json:"ping_intervals"`
	Hint      string     `json:"hint"`
}

// Finding kinds; the names are those of `tether diagnose`.
const (
	FindingIntervalMismatch = "interval-mismatch"
	FindingDuplicate        = "duplicate-connection"
	FindingNotReading       = "not-reading"
)

// Findings returns what the registry sees now, warnings first.
func (r *Registry) Findings() []Finding {
	servers := map[clientKey][]*conn{}
	clients := map[string][]*conn{}
	var stalled []*conn
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for c := range s.all() {
			switch {
			case c.role.String() == "client":
				k := endpointKey(c.path)
				clients[k] = append(clients[k], c)
			case c.client != noClient:
				k := clientKeyOf(c)
				servers[k] = append(servers[k], c)
			}
			if c.stalledAt.Load() != 0 {
				stalled = append(stalled, c)
			}
		}
		s.mu.Unlock()
	}
	out := []Finding{}
	for k, cs := range servers {
		if f, ok := serverFinding(k, cs); ok {
			out = append(out, f)
		}
	}
	for k, cs := range clients {
		if f, ok := clientFinding(k, cs); ok {
			out = append(out, f)
		}
	}
	if len(stalled) > 0 {
		out = append(out, notReading(stalled))
	}
	slices.SortFunc(out, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(severityRank(a.Severity), severityRank(b.Severity)),
			strings.Compare(a.Endpoint, b.Endpoint), strings.Compare(a.Remote, b.Remote), strings.Compare(a.Kind, b.Kind))
	})
	return out
}

func severityRank(s string) int {
	if s == "warning" {
		return 0
	}
	return 1
}

// serverFinding looks at one client's connections to one path.
func serverFinding(k clientKey, cs []*conn) (Finding, bool) {
	ivs := make([]time.Duration, len(cs))
	var known []time.Duration
	for i, c := range cs {
		if ivs[i] = c.peerKeepalive().Interval; ivs[i] > 0 {
			known = append(known, ivs[i])
		}
	}
	distinct := distinctCadences(known)
	id := k.client.Value()
	f := Finding{Role: "server", Endpoint: k.path, Remote: id.addr(), UserAgent: id.agent, Hint: clientHint}
	switch {
	case len(distinct) > 1:
		f.Kind, f.Severity = FindingIntervalMismatch, "warning"
		f.Message = fmt.Sprintf("%d connections from %s, whose peers ping at %d different intervals (%s): likely several client instances in one process, each with its own keepalive",
			len(cs), k.describe(), len(distinct), cadenceList(known))
	case len(cs) >= manyConns:
		f.Kind, f.Severity = FindingDuplicate, "info"
		f.Message = fmt.Sprintf("%d connections from %s", len(cs), k.describe())
	default:
		return Finding{}, false
	}
	f.list(cs, func(c *conn) time.Duration { return c.peerKeepalive().Interval })
	return f, true
}

// clientFinding looks at this process's connections to one endpoint, as
// the registry's warning at Dial does.
func clientFinding(endpoint string, cs []*conn) (Finding, bool) {
	own := func(c *conn) time.Duration { return c.pingIntervalOrZero() }
	settings := map[time.Duration]bool{}
	fanOut := true
	for _, c := range cs {
		settings[own(c)] = true
		fanOut = fanOut && c.cfg.fanOut
	}
	f := Finding{Role: "client", Endpoint: endpoint,
		Hint: "share one connection or one set of DialOptions, or set DialOptions.FanOut for deliberate fan-out"}
	switch {
	case len(settings) > 1:
		f.Kind, f.Severity = FindingIntervalMismatch, "warning"
		f.Message = fmt.Sprintf("%d client connections to %s with %d different keepalive intervals", len(cs), endpoint, len(settings))
	case len(cs) > 1 && !fanOut:
		f.Kind, f.Severity = FindingDuplicate, "info"
		f.Message = fmt.Sprintf("%d client connections to %s", len(cs), endpoint)
	default:
		return Finding{}, false
	}
	f.list(cs, own)
	return f, true
}

// notReading lists the connections whose application has stopped reading.
func notReading(cs []*conn) Finding {
	f := Finding{Kind: FindingNotReading, Severity: "warning", Role: cs[0].role.String(),
		Message: fmt.Sprintf("%d %s stopped reading because the application does not take its messages; keepalive's ping timeout is suspended meanwhile",
			len(cs), plural(len(cs), "connection", "connections")),
		Hint: "read the connection, serve it with Go or Serve, or call DiscardMessages for connections the application only writes to"}
	f.list(cs, func(*conn) time.Duration { return 0 })
	f.Intervals = nil
	return f
}

// list fills in Count, Conns and Intervals: the newest maxWarnConns.
func (f *Finding) list(cs []*conn, interval func(*conn) time.Duration) {
	sortConns(cs)
	f.Count = len(cs)
	if len(cs) > maxWarnConns {
		cs = cs[len(cs)-maxWarnConns:]
	}
	f.Conns = make([]string, len(cs))
	f.Intervals = make([]*Seconds, len(cs))
	for i, c := range cs {
		f.Conns[i] = c.id.String()
		if d := interval(c); d > 0 {
			s := Seconds(d)
			f.Intervals[i] = &s
		}
	}
}

// cadenceList says which cadences the intervals come at, and how many at
// each: "500ms ×2, 2s ×1".
func cadenceList(ds []time.Duration) string {
	distinct := distinctCadences(slices.Clone(ds))
	parts := make([]string, len(distinct))
	for i, c := range distinct {
		n := 0
		for _, d := range ds {
			if sameCadence(c, d) {
				n++
			}
		}
		parts[i] = fmt.Sprintf("%v ×%d", roundCadence(c), n)
	}
	return strings.Join(parts, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
