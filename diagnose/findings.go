package diagnose

import (
	"fmt"
	"math"
	"strings"
)

// Finding is something wrong, or worth knowing, about the keepalive in a
// log, with what to do about it.
type Finding struct {
	Kind     string   `json:"kind"`
	Severity string   `json:"severity"` // "error", "warning" or "info"
	Message  string   `json:"message"`
	Conns    []string `json:"conns"` // the streams' conn ("" for unlabeled ones)
	Streams  []string `json:"streams"`
	Advice   string   `json:"advice"`
}

// The finding kinds.
const (
	KindIntervalMismatch = "interval-mismatch"
	KindUnlabeled        = "unlabeled-stream"
	KindPingTimeout      = "ping-timeout"
	KindNoTimestamps     = "no-timestamps"
	KindDuplicate        = "duplicate-connection"
	KindRTTGrowing       = "rtt-growing"
	KindBunched          = "pings-bunched"
	KindPeerPingsOnly    = "peer-pings-only"
	KindNoKeepalive      = "no-keepalive"
)

func findings(a *Analyzer, r *Report) []Finding {
	fs := []Finding{}
	add := func(f *Finding) {
		if f != nil {
			fs = append(fs, *f)
		}
	}
	if r.NoKeepalive() {
		return append(fs, Finding{Kind: KindNoKeepalive, Severity: "info", Conns: []string{}, Streams: []string{},
			Message: noKeepaliveSentence(r.Lines), Advice: noKeepaliveAdvice})
	}
	fs = append(fs, timeoutFindings(r.Streams)...)
	for _, ss := range byRole(r.Streams) {
		add(intervalMismatch(ss))
	}
	peerMismatches, hosts := peerIntervalMismatch(r.Streams)
	fs = append(fs, peerMismatches...)
	add(unlabeled(r))
	fs = append(fs, duplicates(a, r.Streams)...)
	fs = append(fs, remoteDuplicates(r.Streams, hosts)...)
	for i := range r.Streams {
		add(rttGrowing(&r.Streams[i]))
	}
	fs = append(fs, bunched(r.Streams)...)
	for i := range r.Streams {
		add(peerOnly(&r.Streams[i], r.Streams))
	}
	if r.Lines.Untimed > 0 {
		add(&Finding{Kind: KindNoTimestamps, Severity: "info",
			Message: fmt.Sprintf("%d keepalive lines carry no timestamp, so intervals and round trips cannot be measured and unlabeled lines are split by order alone.", r.Lines.Untimed),
			Advice:  `Log with times: logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s %(message)s").`,
			Conns:   []string{}, Streams: []string{}})
	}
	return fs
}

const noKeepaliveAdvice = `Log at debug level: python-websockets logs its keepalive on the "websockets" logger at DEBUG, Tether its pings and pongs at debug (--log-level debug). If keepalive is off at both ends (ping_interval=None, PingInterval < 0), a dead peer goes unnoticed until the next write.`

// noKeepaliveSentence is the whole text report of a log without keepalive
// traffic: there is nothing else to say, and "no findings" would read as
// "all is well".
func noKeepaliveSentence(c Counts) string {
	return fmt.Sprintf("No keepalive traffic in these %d lines (%d about connections, %d other lines of known sources, %d of no known source): "+
		"no ping, pong or keepalive timeout, so there is nothing to diagnose.", c.Lines, c.Keepalive, c.Parsed-c.Keepalive, c.Skipped)
}

func ids(ss ...*Stream) ([]string, []string) {
	conns, names := []string{}, []string{}
	for _, s := range ss {
		conns, names = append(conns, s.Conn), append(names, s.Name)
	}
	return conns, names
}

func timeoutFinding(s *Stream) *Finding {
	if s.Timeouts == 0 && s.Unanswered == 0 {
		return nil
	}
	var parts []string
	if s.Timeouts > 0 {
		when := ""
		for _, m := range s.marks {
			if m.Kind == MarkTimeout && s.First != nil {
				when = " at " + stamp(m.At)[11:23]
				break
			}
		}
		parts = append(parts, fmt.Sprintf("%s keepalive timeout%s%s after %d %s", plural(s.Timeouts, "a", "%d"), plurals(s.Timeouts), when, s.Pings, plural(s.Pings, "ping", "pings")))
	}
	if s.Unanswered > 0 {
		parts = append(parts, fmt.Sprintf("%d pings never answered", s.Unanswered))
	}
	conns, names := ids(s)
	return &Finding{Kind: KindPingTimeout, Severity: "error", Conns: conns, Streams: names,
		Message: fmt.Sprintf("%s: %s: the peer stopped answering.", short(s.Name), strings.Join(parts, ", ")),
		Advice: "Check the peer at that time: a blocked event loop or a busy process does not answer pings, " +
			"a proxy or load balancer may have dropped the idle connection, or the network path went down. " +
			"If the peer is only slow, raise ping_timeout (python-websockets) or PingTimeout (Tether) above its worst pause."}
}

// intervalMismatch groups the intervals of streams of one role (within 15 %
// of each other); more than one group in one log is the report behind
// Tether. A server's own keepalive is never compared with its clients'.
func intervalMismatch(ss []*Stream) *Finding {
	var timed []*Stream
	for _, s := range ss {
		if s.Interval != nil && s.Pings >= 2 {
			timed = append(timed, s)
		}
	}
	groups := intervalGroups(timed, func(s *Stream) float64 { return s.Interval.Median })
	if len(groups) < 2 {
		return nil
	}
	var desc []string
	var all []*Stream
	for _, g := range groups {
		desc = append(desc, fmt.Sprintf("%s (%s)", seconds(g[0].Interval.Median), names(g)))
		all = append(all, g...)
	}
	conns, nm := ids(all...)
	if all[0].Role == "server" {
		return &Finding{Kind: KindIntervalMismatch, Severity: "warning", Conns: conns, Streams: nm,
			Message: fmt.Sprintf("%d keepalive intervals among the server connections of one log: %s. A server pings every connection at the interval its configuration sets; several intervals are several configurations, or several servers logging to one file.",
				len(groups), strings.Join(desc, ", ")),
			Advice: "Check which listener or endpoint sets which PingInterval (Tether) or ping_interval (python-websockets), and whether several server processes write this log."}
	}
	return &Finding{Kind: KindIntervalMismatch, Severity: "warning", Conns: conns, Streams: nm,
		Message: fmt.Sprintf("%d keepalive intervals in one log: %s. A connection pings at one interval; several intervals are several connections, possibly from different client instances logging to the same logger.",
			len(groups), strings.Join(desc, ", ")),
		Advice: "Find where each connection is opened and with which ping_interval (python-websockets) or PingInterval (Tether). " +
			"If you configured one interval, the others are connections you did not expect: another client instance, a library that opens its own, or a reconnect that keeps the old connection."}
}

func names(ss []*Stream) string {
	var n []string
	for _, s := range ss {
		n = append(n, short(s.Name))
	}
	return capList(n, 6)
}

// capList joins items with commas, the first most of them and "and N more":
// a finding about a proxy's thousand connections stays a paragraph. The
// JSON's conns and streams list them all.
func capList(items []string, most int) string {
	if len(items) > most {
		return strings.Join(items[:most-1], ", ") + fmt.Sprintf(" and %d more", len(items)-most+1)
	}
	return strings.Join(items, ", ")
}

// short names a stream in prose: a labeled connection by ShortID, an
// unlabeled stream by its name.
func short(name string) string {
	if strings.HasPrefix(name, "unlabeled") {
		return name
	}
	return ShortID(name)
}

// sureness counts streams per confidence: "high for 2, low for 1".
func sureness(ss []*Stream) string {
	var parts []string
	for _, level := range []string{SureHigh, SureMedium, SureLow} {
		n := 0
		for _, s := range ss {
			if s.Confidence == level {
				n++
			}
		}
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s for %d", level, n))
		}
	}
	return joinAnd(parts)
}

func unlabeled(r *Report) *Finding {
	var ss []*Stream
	for i := range r.Streams {
		if !r.Streams[i].Labeled {
			ss = append(ss, &r.Streams[i])
		}
	}
	if len(ss) == 0 {
		return nil
	}
	pings := 0
	for _, s := range ss {
		pings += s.Pings + s.PeerPings
	}
	how := "by the cadence of their pings and the payloads of their pings and pongs"
	if !r.timed {
		how = "by order alone (no timestamps)"
	}
	msg := fmt.Sprintf("%d keepalive pings carry no connection ID; they were split into %d stream%s (%s) %s, which a person cannot check from the log.",
		pings, len(ss), plurals(len(ss)), names(ss), how)
	if r.Unattributed > 0 {
		msg += fmt.Sprintf(" %d pings fit no stream.", r.Unattributed)
	}
	msg += " How sure each split is: " + sureness(ss) + " (--json: confidence_why)."
	conns, nm := ids(ss...)
	return &Finding{Kind: KindUnlabeled, Severity: "warning", Conns: conns, Streams: nm, Message: msg,
		Advice: "Label every connection's lines. python-websockets: pass logger=LoggerAdapter(...) whose process() prefixes websocket.id, " +
			"as its logging guide shows. Tether records always carry conn."}
}

// duplicates reports endpoints that several client connections of the log
// went to.
func duplicates(a *Analyzer, ss []Stream) []Finding {
	type dest struct {
		labeled   []*Stream
		unlabeled int
	}
	byEndpoint := map[string]*dest{}
	var order []string
	get := func(ep string) *dest {
		d, ok := byEndpoint[ep]
		if !ok {
			d = &dest{}
			byEndpoint[ep] = d
			order = append(order, ep)
		}
		return d
	}
	for ci, c := range a.ctxs {
		for _, ep := range c.endpoints {
			d := get(ep)
			if !c.labeled {
				d.unlabeled++
				continue
			}
			for i := range ss {
				if ss[i].ctx == ci {
					d.labeled = append(d.labeled, &ss[i])
				}
			}
		}
	}
	var fs []Finding
	for _, ep := range order {
		d := byEndpoint[ep]
		n := len(d.labeled) + d.unlabeled
		if n < 2 {
			continue
		}
		conns, nm := ids(d.labeled...)
		who := names(d.labeled)
		if d.unlabeled > 0 {
			for range d.unlabeled {
				conns = append(conns, "")
			}
			if who != "" {
				who += " and "
			}
			who += fmt.Sprintf("%d unlabeled", d.unlabeled)
		}
		fs = append(fs, Finding{Kind: KindDuplicate, Severity: "warning", Conns: conns, Streams: nm,
			Message: fmt.Sprintf("%d client connections to %s in one log: %s.", n, ep, who),
			Advice: "If the program should hold one connection there, look for a second client instance " +
				"(a client created per request or per task, a reconnect loop that does not close the old connection)."})
	}
	return fs
}

// rttGrowing compares the round trips of a stream's last quarter with its
// first quarter.
func rttGrowing(s *Stream) *Finding {
	n := len(s.rtts)
	if n < 8 {
		return nil
	}
	q := n / 4
	early, late := medianF(s.rtts[:q]), medianF(s.rtts[n-q:])
	if late < 3*early || late-early < 20 {
		return nil
	}
	conns, nm := ids(s)
	return &Finding{Kind: KindRTTGrowing, Severity: "warning", Conns: conns, Streams: nm,
		Message: fmt.Sprintf("%s: the round trip grew from %.1f ms to %.1f ms over the log.", short(s.Name), early, late),
		Advice: "A growing round trip is a queue filling up: the peer (or this side) reads too slowly, a send buffer backs up, " +
			"or the event loop is busy. Look at message rates and handler time; it often ends in a ping timeout."}
}

// bunched reports streams whose pings come within a few milliseconds of
// each other most periods: connections opened together with one interval,
// often several instances of one client. Streams that bunch pairwise are
// told as one group. A server pings its connections on one timer setting,
// so its own streams are left out, and past maxBunchCompare streams the
// pairwise comparison is skipped: that many clients in one log are a
// proxy's, where bunching says nothing.
func bunched(ss []Stream) []Finding {
	var cand []*Stream
	for i := range ss {
		if s := &ss[i]; s.Role != "server" && s.Interval != nil && s.Pings >= 3 {
			cand = append(cand, s)
		}
	}
	if len(cand) > maxBunchCompare {
		return nil
	}
	group := make([]int, len(cand)) // union-find
	for i := range group {
		group[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		if group[i] != i {
			group[i] = find(group[i])
		}
		return group[i]
	}
	for i, a := range cand {
		for j := i + 1; j < len(cand); j++ {
			b := cand[j]
			if math.Abs(a.Interval.Median-b.Interval.Median) > 0.15*a.Interval.Median ||
				closeShare(a.pingTimes, b.pingTimes, bunchWindow(a)) < 0.5 {
				continue
			}
			group[find(j)] = find(i)
		}
	}
	members := map[int][]*Stream{}
	var roots []int
	for i := range cand {
		r := find(i)
		if _, ok := members[r]; !ok {
			roots = append(roots, r)
		}
		members[r] = append(members[r], cand[i])
	}
	var fs []Finding
	for _, r := range roots {
		g := members[r]
		if len(g) < 2 {
			continue
		}
		who := fmt.Sprintf("%d connections (%s)", len(g), names(g))
		if len(g) == 2 {
			who = short(g[0].Name) + " and " + short(g[1].Name)
		}
		conns, nm := ids(g...)
		fs = append(fs, Finding{Kind: KindBunched, Severity: "info", Conns: conns, Streams: nm,
			Message: fmt.Sprintf("%s ping within %d ms of each other every %s: they were opened together with the same interval.",
				who, bunchWindow(g[0])/1e6, seconds(g[0].Interval.Median)),
			Advice: "Connections opened together with one setting are usually several instances of one client; check that each is meant to exist."})
	}
	return fs
}

const maxBunchCompare = 500

// bunchWindow is how close two pings are to count as one bunch: 10 ms and
// a thousandth of the interval, in nanoseconds.
func bunchWindow(s *Stream) int64 {
	return int64((0.01 + 0.001*s.Interval.Median) * 1e9)
}

// closeShare is the share of a's times within window of one of b's.
func closeShare(a, b []int64, window int64) float64 {
	n, j := 0, 0
	for _, t := range a {
		for j < len(b) && b[j] < t-window {
			j++
		}
		if j < len(b) && b[j] <= t+window {
			n++
		}
	}
	return float64(n) / float64(len(a))
}

func peerOnly(s *Stream, all []Stream) *Finding {
	if s.Pings > 0 || s.PeerPings == 0 || keepaliveMaybeOn(s, all) {
		return nil
	}
	conns, nm := ids(s)
	return &Finding{Kind: KindPeerPingsOnly, Severity: "info", Conns: conns, Streams: nm,
		Message: fmt.Sprintf("%s answers %d pings from its peer but sends none of its own: its keepalive is off.", short(s.Name), s.PeerPings),
		Advice: "Fine while the peer keeps the connection alive. To notice a dead peer from this side, turn keepalive on " +
			"(ping_interval in python-websockets, PingInterval in Tether)."}
}

func seconds(v float64) string {
	switch {
	case v >= 10:
		return fmt.Sprintf("%.0f s", v)
	case v >= 1:
		return fmt.Sprintf("%.1f s", v)
	}
	return fmt.Sprintf("%.0f ms", v*1000)
}

func plurals(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// plural writes 1 as one, other counts with format.
func plural(n int, one, format string) string {
	if n == 1 {
		return one
	}
	return fmt.Sprintf(format, n)
}
