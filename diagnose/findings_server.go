package diagnose

import (
	"fmt"
	"math"
	"net"
	"slices"
	"sort"
	"strings"
)

// What a server's log tells of its clients: each connection's remote
// address and the pings its client sent (Tether's "received ping", python-
// websockets' "< PING"). One client host whose connections ping at several
// intervals is the report behind Tether seen from the server.

// byRole splits streams into those of clients (and of unknown role: custom
// python loggers are mostly clients') and those of servers, whose intervals
// are compared apart.
func byRole(ss []Stream) [][]*Stream {
	var clients, servers []*Stream
	for i := range ss {
		if ss[i].Role == "server" {
			servers = append(servers, &ss[i])
		} else {
			clients = append(clients, &ss[i])
		}
	}
	return [][]*Stream{clients, servers}
}

// intervalGroups groups streams whose intervals lie within 15 % of each
// other, longest first; each group's first stream is its center.
func intervalGroups(ss []*Stream, interval func(*Stream) float64) [][]*Stream {
	sorted := slices.Clone(ss)
	sort.SliceStable(sorted, func(i, j int) bool { return interval(sorted[i]) > interval(sorted[j]) })
	var groups [][]*Stream
	for _, s := range sorted {
		v, g := interval(s), -1
		for i, cand := range groups {
			if c := interval(cand[0]); math.Abs(v-c) <= 0.15*c {
				g = i
			}
		}
		if g < 0 {
			groups = append(groups, nil)
			g = len(groups) - 1
		}
		groups[g] = append(groups[g], s)
	}
	return groups
}

// remoteHost is a remote address's host: "127.0.0.1:53412" -> "127.0.0.1".
// Each connection has its own port; the host is the client machine (or
// the proxy in front of it).
func remoteHost(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

// serverStreamsByHost groups the server connections of the log by their
// client's host, in order of first appearance; keep says which count.
func serverStreamsByHost(ss []Stream, keep func(*Stream) bool) ([]string, map[string][]*Stream) {
	var hosts []string
	by := map[string][]*Stream{}
	for i := range ss {
		s := &ss[i]
		if s.Role != "server" || s.Remote == "" || !keep(s) {
			continue
		}
		h := remoteHost(s.Remote)
		if _, ok := by[h]; !ok {
			hosts = append(hosts, h)
		}
		by[h] = append(by[h], s)
	}
	return hosts, by
}

// peerIntervalMismatch reports, per client host, server connections open
// at the same time whose clients ping at several intervals (one after the
// other, it may be one client restarted with another setting). It returns
// the hosts it reported.
func peerIntervalMismatch(ss []Stream) ([]Finding, map[string]bool) {
	hosts, by := serverStreamsByHost(ss, func(s *Stream) bool { return s.PeerInterval != nil })
	var fs []Finding
	reported := map[string]bool{}
	for _, h := range hosts {
		at := concurrent(by[h])
		groups := intervalGroups(at, func(s *Stream) float64 { return s.PeerInterval.Median })
		if len(groups) < 2 {
			continue
		}
		reported[h] = true
		var desc []string
		for _, g := range groups {
			desc = append(desc, fmt.Sprintf("%s (%s)", seconds(g[0].PeerInterval.Median), ports(g)))
		}
		conns, nm := ids(at...)
		fs = append(fs, Finding{Kind: KindIntervalMismatch, Severity: "warning", Conns: conns, Streams: nm,
			Message: fmt.Sprintf("%d connections from %s%s, open at the same time, ping at %s: one client host whose connections keep alive at different intervals, "+
				"likely several client instances in one process, each with its own configuration (or several clients behind one proxy or NAT).%s",
				len(at), h, paths(at), joinAnd(desc), otherEnds(at)),
			Advice: "Several client instances in one process with different ping intervals is the report behind Tether: a client created per task or per feature, " +
				"each configured on its own. Share one connection where one will do, or give the clients one configuration " +
				"(ping_interval in python-websockets, PingInterval in Tether). Give diagnose the clients' log too: it pairs the two ends of each connection. " +
				"If " + h + " is a proxy or NAT, these are different clients behind it: read their own logs."})
	}
	return fs, reported
}

// remoteDuplicates reports client hosts that held several connections to
// one path of the server at once, unless their intervals were reported
// already. It is only worth knowing: every client behind a proxy or NAT
// shares its address.
func remoteDuplicates(ss []Stream, reported map[string]bool) []Finding {
	hosts, by := serverStreamsByHost(ss, func(*Stream) bool { return true })
	var fs []Finding
	for _, h := range hosts {
		if reported[h] {
			continue
		}
		byPath := map[string][]*Stream{}
		var order []string
		for _, s := range by[h] {
			if _, ok := byPath[s.Endpoint]; !ok {
				order = append(order, s.Endpoint)
			}
			byPath[s.Endpoint] = append(byPath[s.Endpoint], s)
		}
		for _, p := range order {
			at := concurrent(byPath[p])
			if len(at) < 2 {
				continue
			}
			conns, nm := ids(at...)
			fs = append(fs, Finding{Kind: KindDuplicate, Severity: "info", Conns: conns, Streams: nm,
				Message: fmt.Sprintf("%d connections from %s%s at the same time (%s).", len(at), h, paths(at), ports(at)),
				Advice: "One client host holding several connections to one endpoint is often several client instances where one would do " +
					"(a client per request or per task, a reconnect that does not close the old connection). Behind a proxy or NAT it is normal."})
		}
	}
	return fs
}

// concurrent returns the streams that lived at the same time as another, in
// order of their start. Sorted by start, a stream overlaps an earlier one
// when it starts before the latest end so far, and a later one when the
// next starts before its end: O(n log n), for a proxy's thousands.
func concurrent(ss []*Stream) []*Stream {
	var timed []*Stream
	for _, s := range ss {
		if s.start != 0 {
			timed = append(timed, s)
		}
	}
	sort.SliceStable(timed, func(i, j int) bool { return timed[i].start < timed[j].start })
	var out []*Stream
	var latestEnd int64
	for i, s := range timed {
		earlier := i > 0 && s.start <= latestEnd
		later := i+1 < len(timed) && timed[i+1].start <= s.end
		if earlier || later {
			out = append(out, s)
		}
		latestEnd = max(latestEnd, s.end)
	}
	return out
}

// keepaliveMaybeOn reports whether a connection that sent no ping may have
// its keepalive on all the same: Tether's connection open says so, or the
// connection lived less than one interval of the other connections of its
// role and library that do ping.
func keepaliveMaybeOn(s *Stream, all []Stream) bool {
	if s.keepaliveOff {
		return false
	}
	if s.Declared != nil {
		return true
	}
	longest := 0.0
	for i := range all {
		o := &all[i]
		if o.Role == s.Role && o.Source == s.Source && o.Interval != nil {
			longest = max(longest, o.Interval.Median)
		}
	}
	lived := float64(s.end-s.start) / 1e9
	return longest > 0 && s.start != 0 && lived < 1.25*longest
}

// ports names server connections by short ID and their client's port, which
// is what a person greps for in the clients' logs and the server's.
func ports(ss []*Stream) string {
	var ps []string
	for _, s := range ss {
		if _, p, err := net.SplitHostPort(s.Remote); err == nil {
			ps = append(ps, short(s.Name)+" from port "+p)
		} else {
			ps = append(ps, short(s.Name))
		}
	}
	return capList(ps, 4)
}

// paths says where the connections went: " to /echo", " to /a and /b".
func paths(ss []*Stream) string {
	var ps []string
	for _, s := range ss {
		if s.Endpoint != "" && !slices.Contains(ps, s.Endpoint) {
			ps = append(ps, s.Endpoint)
		}
	}
	if len(ps) == 0 {
		return ""
	}
	return " to " + joinAnd(ps)
}

// otherEnds names the client-side streams paired with these connections,
// when the clients' log was read too.
func otherEnds(ss []*Stream) string {
	var ends []string
	for _, s := range ss {
		if s.Peer != nil {
			_, p, _ := net.SplitHostPort(s.Remote)
			ends = append(ends, fmt.Sprintf("port %s is %s", p, short(s.Peer.Name)))
		}
	}
	if len(ends) == 0 {
		return ""
	}
	return " At the clients' end: " + strings.Join(ends, ", ") + "."
}

// joinAnd joins "a", "b" and "c" as "a, b and c".
func joinAnd(v []string) string {
	if len(v) < 2 {
		return strings.Join(v, "")
	}
	return strings.Join(v[:len(v)-1], ", ") + " and " + v[len(v)-1]
}
