package diagnose

import (
	"fmt"
	"sort"
	"time"
)

// Incidents: keepalive timeouts of several connections to one endpoint at
// one moment are one event, a stall of the server or of the network between,
// and read as one finding. A stall of D seconds times out every connection
// whose ping was in flight during it, each one ping interval apart at most,
// so timeouts of one endpoint are grouped while each comes within one
// interval (at least a second) of the one before.

// timeoutAt is one stream's first keepalive timeout.
type timeoutAt struct {
	s  *Stream
	at int64 // Unix nanoseconds
}

// incidentKey is where a stream's connection went: its endpoint (a client's
// URL, a server's path with the side), else its source and logger, which is
// all unlabeled python-websockets lines tell.
func incidentKey(s *Stream) string {
	switch {
	case s.Endpoint != "" && s.Role == "server":
		return "server " + s.Endpoint
	case s.Endpoint != "":
		return s.Endpoint
	}
	return s.Source + " " + s.Logger
}

// firstTimeout is the time of a stream's first timeout; ok is false without
// timestamps.
func firstTimeout(s *Stream) (int64, bool) {
	if s.First == nil {
		return 0, false
	}
	for _, m := range s.marks {
		if m.Kind == MarkTimeout {
			return m.At, true
		}
	}
	return 0, false
}

// timeoutFindings reports the streams with timeouts or unanswered pings:
// one finding per incident (several connections to one endpoint timing out
// together), one per stream otherwise.
func timeoutFindings(ss []Stream) []Finding {
	byKey := map[string][]timeoutAt{}
	var keys []string
	var fs []Finding
	for i := range ss {
		s := &ss[i]
		if s.Timeouts == 0 && s.Unanswered == 0 {
			continue
		}
		at, ok := firstTimeout(s)
		if !ok {
			fs = append(fs, *timeoutFinding(s))
			continue
		}
		k := incidentKey(s)
		if _, seen := byKey[k]; !seen {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], timeoutAt{s, at})
	}
	for _, k := range keys {
		for _, group := range clusterTimeouts(byKey[k]) {
			if len(group) == 1 {
				fs = append(fs, *timeoutFinding(group[0].s))
				continue
			}
			fs = append(fs, incidentFinding(group, survivors(ss, k, group)))
		}
	}
	return fs
}

// clusterTimeouts groups timeouts in time order while each comes within one
// ping interval (at least a second) of the one before.
func clusterTimeouts(ts []timeoutAt) [][]timeoutAt {
	sort.SliceStable(ts, func(i, j int) bool { return ts[i].at < ts[j].at })
	var groups [][]timeoutAt
	for i, t := range ts {
		if i > 0 {
			prev := ts[i-1]
			window := max(int64(time.Second), pingPeriod(prev.s), pingPeriod(t.s))
			if t.at-prev.at <= window {
				groups[len(groups)-1] = append(groups[len(groups)-1], t)
				continue
			}
		}
		groups = append(groups, []timeoutAt{t})
	}
	return groups
}

// pingPeriod is a stream's ping interval in nanoseconds, measured or
// declared; 0 when unknown.
func pingPeriod(s *Stream) int64 {
	switch {
	case s.Interval != nil:
		return int64(s.Interval.Median * 1e9)
	case s.Declared != nil:
		return int64(*s.Declared * 1e9)
	}
	return 0
}

// survivors counts the other streams of the same endpoint that were alive
// during the incident and did not time out: a stall of the server spares
// none of its connections.
func survivors(ss []Stream, key string, group []timeoutAt) int {
	in := map[*Stream]bool{}
	for _, t := range group {
		in[t.s] = true
	}
	from, to := group[0].at, group[len(group)-1].at
	n := 0
	for i := range ss {
		s := &ss[i]
		if in[s] || s.Timeouts > 0 || s.Pings == 0 || s.start == 0 || incidentKey(s) != key {
			continue
		}
		if s.start <= from && s.end >= to {
			n++
		}
	}
	return n
}

func incidentFinding(group []timeoutAt, spared int) Finding {
	var streams []*Stream
	for _, t := range group {
		streams = append(streams, t.s)
	}
	s0 := group[0].s
	where := "to " + s0.Endpoint
	switch {
	case s0.Endpoint != "" && s0.Role == "server":
		where = "of this server on " + s0.Endpoint
	case s0.Endpoint == "" && s0.Logger != "":
		where = "logged by " + s0.Logger
	case s0.Endpoint == "":
		where = "in this log"
	}
	spread := time.Duration(group[len(group)-1].at - group[0].at)
	msg := fmt.Sprintf("%d connections %s timed out within %s of each other at %s (%s)",
		len(group), where, roundSpread(spread), stamp(group[0].at)[11:23], names(streams))
	if spared == 0 {
		msg += ", every one there that was alive then: a stall of the server or of the network between, not of the clients."
	} else {
		msg += fmt.Sprintf(", while %d other%s there kept being answered: look at what these share (a proxy, a route, a worker of the server) before the server itself.",
			spared, plurals(spared))
	}
	conns, nm := ids(streams...)
	return Finding{Kind: KindPingTimeout, Severity: "error", Conns: conns, Streams: nm, Message: msg,
		Advice: "Look at the server (and anything between: proxy, load balancer, network) at that moment: a blocked event loop, " +
			"a garbage-collection or swap pause, a full CPU, a restart, a dropped route. The clients only noticed it; " +
			"raising their ping timeout above the worst pause hides it without fixing it."}
}

// roundSpread prints how far apart the timeouts were: "51 ms", "1.2 s".
func roundSpread(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}
