package diagnose

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Report is the analysis of one or more logs. Its JSON form is a contract
// (docs/contracts.md, `tether diagnose --json`); the fields after the
// contract's are extensions.
type Report struct {
	// Attribution lists every keepalive and connection line with its
	// stream; filled by Attribute (tether diagnose --lines).
	Attribution []LineAttr `json:"attribution,omitempty"`

	Streams  []Stream  `json:"streams"`
	Findings []Finding `json:"findings"`
	Lines    Counts    `json:"lines"`
	// Unattributed counts unlabeled keepalive pings that fit no stream's
	// rhythm, and peer pings among several unlabeled streams.
	Unattributed     int `json:"unattributed_pings"`
	UnattributedPeer int `json:"unattributed_peer_pings"`
	timed            bool
	a                *Analyzer
}

// Stream is the keepalive traffic of one connection.
type Stream struct {
	Conn     string         `json:"conn"` // "" when the lines carry no ID
	Labeled  bool           `json:"labeled"`
	Source   string         `json:"source"` // "tether" or "python-websockets"
	Role     string         `json:"role"`   // "client", "server" or "" when unknown
	Pings    int            `json:"pings"`
	Pongs    int            `json:"pongs"`
	Timeouts int            `json:"timeouts"`
	Interval *IntervalStats `json:"interval_s"` // null without timestamps
	RTT      *RTTStats      `json:"rtt_ms"`     // null without timestamps
	First    *string        `json:"first"`      // RFC 3339; null without timestamps
	Last     *string        `json:"last"`

	Name       string   `json:"name"`       // Conn, or "unlabeled #N"
	Short      string   `json:"short"`      // ShortID(Conn), or Name: how the text report and findings name it
	Unanswered int      `json:"unanswered"` // pings with no pong, not timed out, not the last
	PeerPings  int      `json:"peer_pings"` // pings the peer sent
	Logger     string   `json:"logger,omitempty"`
	Thread     string   `json:"thread,omitempty"`
	Remote     string   `json:"remote,omitempty"`
	Endpoint   string   `json:"endpoint,omitempty"`
	Declared   *float64 `json:"declared_interval_s,omitempty"` // Tether's interval attribute, or its open's ping_interval

	// PeerInterval is the gaps between the peer's pings (null with fewer
	// than two, or without times): on a server's log, each client's
	// cadence.
	PeerInterval *IntervalStats `json:"peer_interval_s"`
	Local        string         `json:"local,omitempty"` // the connection's own address, when logged
	Peer         *PeerLink      `json:"peer"`            // the other end's stream, when the logs hold both

	// FirstLine and LastLine are the stream's first and last line (keepalive,
	// open, close), numbered within File and LastFile (the log's name, ""
	// for standard input; LastFile only when it differs), so a person can
	// check the stream in the log; --lines lists every line.
	File      string `json:"file,omitempty"`
	FirstLine int    `json:"first_line"`
	LastLine  int    `json:"last_line"`
	LastFile  string `json:"last_file,omitempty"`
	// Confidence is how sure the split of unlabeled lines into this stream
	// is: "labeled" (the lines carry its ID), "high", "medium" or "low",
	// with the reason in ConfidenceWhy.
	Confidence    string `json:"confidence"`
	ConfidenceWhy string `json:"confidence_why,omitempty"`
	// LivedShorter is how long, in seconds, a connection lived that sent no
	// ping because it closed before its declared interval: keepalive on,
	// no ping due. Absent otherwise.
	LivedShorter *float64 `json:"lived_shorter_s,omitempty"`

	marks     []Mark
	pingLines []int32
	rtts      []float64 // ms, in time order
	pingTimes []int64
	firstLine int32 // its first ping or peer ping: the report's order
	lo, hi    int32 // its first and last line of any kind
	ctx       int
	idx       []int     // its pings, indices into its context's
	peerMarks []mark    // the peer's pings it holds
	extra     []lineRef // its other lines: opens, closes, failures, timeouts that matched no ping

	start, end   int64    // the stream's first and last event, open and close included; 0 without times
	sent, recv   []uint64 // payload hashes of its own pings and of the peer's
	keepaliveOff bool     // its connection open said ping_interval=0
}

// IntervalStats are the gaps between a stream's pings, in seconds.
type IntervalStats struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// RTTStats are a stream's ping-to-pong round trips, in milliseconds.
type RTTStats struct {
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

// MarkKind says what a timeline mark is.
type MarkKind uint8

// The marks of a stream's timeline.
const (
	MarkPing       MarkKind = iota // a keepalive ping, answered
	MarkPong                       // its pong
	MarkUnanswered                 // a ping never answered
	MarkTimeout                    // a keepalive timeout
	MarkPeerPing                   // a ping the peer sent
)

// Mark is one event on a stream's timeline. At is Unix nanoseconds, or the
// line number when the log has no timestamps.
type Mark struct {
	At   int64
	Kind MarkKind
	// From is the ping's time for a pong or timeout, so a timeline can join
	// them; 0 otherwise.
	From int64
}

// Marks returns the stream's events in time order, for a timeline.
func (s *Stream) Marks() []Mark { return s.marks }

// NoKeepalive reports whether the logs hold no keepalive traffic at all: no
// ping sent or received, no pong, no timeout. `tether diagnose` says so in
// one sentence and exits with a status of its own.
func (r *Report) NoKeepalive() bool {
	for i := range r.Streams {
		s := &r.Streams[i]
		if s.Pings > 0 || s.PeerPings > 0 || s.Timeouts > 0 {
			return false
		}
	}
	return true
}

// Timed reports whether the report's times are clock times; without
// timestamps, marks are placed by line number.
func (r *Report) Timed() bool { return r.timed }

// Report analyzes what was fed so far.
func (a *Analyzer) Report() *Report {
	rep := &Report{Lines: a.counts, Streams: []Stream{}, Findings: []Finding{}, a: a}
	for ci, c := range a.ctxs {
		for _, s := range a.streams(c, rep) {
			s.ctx = ci
			rep.Streams = append(rep.Streams, s)
		}
	}
	sort.SliceStable(rep.Streams, func(i, j int) bool { return rep.Streams[i].firstLine < rep.Streams[j].firstLine })
	n := 0
	for i := range rep.Streams {
		s := &rep.Streams[i]
		if s.Labeled {
			s.Name, s.Short = s.Conn, ShortID(s.Conn)
		} else {
			n++
			s.Name = fmt.Sprintf("unlabeled #%d", n)
			s.Short = s.Name
		}
		if s.Interval != nil || s.RTT != nil || s.First != nil {
			rep.timed = true
		}
		s.File, s.FirstLine = a.fileLine(s.lo)
		var last string
		if last, s.LastLine = a.fileLine(s.hi); last != s.File {
			s.LastFile = last
		}
		if len(a.files) < 2 {
			s.File, s.LastFile = "", "" // one log: its line numbers say it all
		}
	}
	pairEnds(rep.Streams)
	markLivedShorter(rep.Streams)
	rep.Findings = findings(a, rep)
	return rep
}

// streams turns one context into streams: all of it for a labeled
// connection, the inferred connections for unlabeled lines.
func (a *Analyzer) streams(c *context, rep *Report) []Stream {
	if c.labeled {
		all := make([]int, len(c.pings))
		for i := range all {
			all[i] = i
		}
		s := c.stream(all, c.peer)
		s.Labeled, s.Conn, s.Confidence = true, c.key.conn, SureLabeled
		c.labeledFacts(&s)
		return []Stream{s}
	}
	timed := len(c.pings) > 0 && c.untimed == 0
	var out []Stream
	switch {
	case len(c.pings) == 0 && len(c.peer) > 0:
		// Only the peer's pings: split them by their cadence.
		for _, g := range linkMarks(c.peer, c.untimed == 0) {
			peer := make([]mark, len(g))
			for i, k := range g {
				peer[i] = c.peer[k]
			}
			out = append(out, c.stream(nil, peer))
		}
		c.setConfidence(out, c.untimed == 0, 0)
		return out
	case len(c.pings) == 0:
		return nil
	}
	var groups [][]int
	var loose []int
	if timed {
		in := linkInput{ts: make([]float64, len(c.pings)), timedOut: make([]bool, len(c.pings))}
		for i, p := range c.pings {
			in.ts[i], in.timedOut[i] = float64(p.t)/1e9, p.timedOut
		}
		for _, m := range c.opens {
			in.opens = append(in.opens, float64(m.t)/1e9)
		}
		groups, loose = linkTimes(in, defaultLink)
		groups, loose = c.splitUnanswered(groups, loose)
		rep.Unattributed += len(loose)
	} else {
		groups = linkOrdinal(c)
	}
	peer := c.peer
	if len(groups) > 1 {
		rep.UnattributedPeer += len(c.peer)
		peer = nil
	}
	for _, g := range groups {
		sort.Ints(g)
		out = append(out, c.stream(g, peer))
	}
	c.attachFailures(out)
	c.setConfidence(out, timed, len(loose))
	// Timeouts that matched no ping go to the stream last heard before them.
	for _, m := range c.timeouts {
		best := -1
		for i := range out {
			if out[i].firstLine < m.line && (best < 0 || lastPingLine(&out[i]) > lastPingLine(&out[best])) {
				best = i
			}
		}
		if best >= 0 {
			out[best].Timeouts++
			out[best].marks = append(out[best].marks, Mark{At: at(m.t, m.line, m.hasTime), Kind: MarkTimeout})
			out[best].addLine(m.line, lineTimeout)
		}
	}
	return out
}

func lastPingLine(s *Stream) int32 {
	if len(s.pingLines) == 0 {
		return 0
	}
	return s.pingLines[len(s.pingLines)-1]
}

// labeledFacts adds to a labeled connection's stream what its records say
// of the whole connection: where it went, its keepalive setting, its life.
func (c *context) labeledFacts(s *Stream) {
	switch {
	case len(c.endpoints) > 0:
		s.Endpoint = c.endpoints[0]
	case c.served != "":
		s.Endpoint = c.served
	}
	s.Local = c.local
	declared := c.declared
	if declared <= 0 {
		declared = c.openInterval
	}
	if declared > 0 {
		d := round(float64(declared)/1e9, 3)
		s.Declared = &d
	}
	s.keepaliveOff = c.openInterval == 0
	for _, m := range c.timeouts {
		s.Timeouts++
		s.marks = append(s.marks, Mark{At: at(m.t, m.line, m.hasTime), Kind: MarkTimeout})
	}
	s.addMarks(c.opens, lineOpen)
	s.addMarks(c.closes, lineClose)
	s.addMarks(c.fails, lineFailure)
	s.addMarks(c.timeouts, lineTimeout)
	for _, ms := range [][]mark{c.opens, c.closes} {
		for _, m := range ms {
			switch {
			case !m.hasTime:
			case s.start == 0:
				s.start, s.end = m.t, m.t
			default:
				s.start, s.end = min(s.start, m.t), max(s.end, m.t)
			}
		}
	}
}

// linkMarks splits marks (the peer's pings) by cadence when they have times.
func linkMarks(ms []mark, timed bool) [][]int {
	all := make([]int, len(ms))
	for i := range all {
		all[i] = i
	}
	if !timed {
		return [][]int{all}
	}
	in := linkInput{ts: make([]float64, len(ms)), timedOut: make([]bool, len(ms))}
	for i, m := range ms {
		in.ts[i] = float64(m.t) / 1e9
	}
	groups, loose := linkTimes(in, defaultLink)
	if len(loose) > 0 && len(groups) > 0 {
		groups[0] = append(groups[0], loose...)
	}
	return groups
}

// at is a mark's position: its time, or its line without timestamps.
func at(t int64, line int32, hasTime bool) int64 {
	if hasTime {
		return t
	}
	return int64(line)
}

// stream computes a stream's figures from some of a context's pings (indices,
// in log order) and peer pings.
func (c *context) stream(idx []int, peer []mark) Stream {
	s := Stream{Source: c.key.src.String(), Role: c.role, Logger: c.key.logger, Thread: c.key.thread,
		Remote: c.remote, PeerPings: len(peer), firstLine: math.MaxInt32, lo: math.MaxInt32, idx: idx, peerMarks: peer}
	s.marks = make([]Mark, 0, 2*len(idx)+len(peer)) // a server's log: a million peer pings
	if len(peer) > 0 && peer[0].hash != 0 {
		s.recv = make([]uint64, 0, len(peer))
	}
	var first, last int64
	timed := true
	seen := func(t int64, line int32, hasTime bool) {
		s.firstLine, s.lo, s.hi = min(s.firstLine, line), min(s.lo, line), max(s.hi, line)
		if !hasTime {
			timed = false
			return
		}
		if first == 0 || t < first {
			first = t
		}
		last = max(last, t)
	}
	var gaps []float64
	var rtts []float64
	var prev int64
	for i, k := range idx {
		p := c.pings[k]
		seen(p.t, p.line, p.hasTime)
		s.hi = max(s.hi, p.line2, p.pongLine, p.confirmLine, p.timeoutLine)
		s.Pings++
		s.pingLines = append(s.pingLines, p.line)
		s.pingTimes = append(s.pingTimes, p.t)
		pos := at(p.t, p.line, p.hasTime)
		if p.hasTime && i > 0 && prev != 0 {
			gaps = append(gaps, float64(p.t-prev)/1e9)
		}
		prev = p.t
		if p.hash != 0 {
			s.sent = append(s.sent, p.hash)
		}
		switch {
		case p.pong:
			s.Pongs++
			s.marks = append(s.marks, Mark{At: pos, Kind: MarkPing})
			s.marks = append(s.marks, Mark{At: at(p.pongT, p.pongLine, p.hasTime), Kind: MarkPong, From: pos})
			if p.hasTime && p.pongT >= p.t {
				rtts = append(rtts, float64(p.pongT-p.t)/1e6)
				seen(p.pongT, p.pongLine, true)
			}
		case p.timedOut:
			s.Timeouts++
			s.marks = append(s.marks, Mark{At: pos, Kind: MarkUnanswered})
			s.marks = append(s.marks, Mark{At: at(p.timeoutT, p.line, p.hasTime), Kind: MarkTimeout, From: pos})
			if p.hasTime {
				seen(p.timeoutT, p.line, true)
			}
		default:
			if i < len(idx)-1 {
				s.Unanswered++
			}
			s.marks = append(s.marks, Mark{At: pos, Kind: MarkUnanswered})
		}
	}
	for _, m := range peer {
		seen(m.t, m.line, m.hasTime)
		s.marks = append(s.marks, Mark{At: at(m.t, m.line, m.hasTime), Kind: MarkPeerPing})
		if m.hash != 0 {
			s.recv = append(s.recv, m.hash)
		}
	}
	s.PeerInterval = peerInterval(peer)
	sort.SliceStable(s.marks, func(i, j int) bool { return s.marks[i].At < s.marks[j].At })
	s.rtts = rtts
	if timed && len(gaps) > 0 {
		s.Interval = &IntervalStats{Median: round(medianF(gaps), 3), Min: round(minF(gaps), 3), Max: round(maxF(gaps), 3)}
	}
	if timed && len(rtts) > 0 {
		s.RTT = &RTTStats{Median: round(medianF(rtts), 3), Max: round(maxF(rtts), 3)}
	}
	if timed && first != 0 {
		f, l := stamp(first), stamp(last)
		s.First, s.Last = &f, &l
		s.start, s.end = first, last
	}
	return s
}

func stamp(ns int64) string {
	return time.Unix(0, ns).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}

func minF(v []float64) float64 {
	m := v[0]
	for _, x := range v[1:] {
		m = math.Min(m, x)
	}
	return m
}

func maxF(v []float64) float64 {
	m := v[0]
	for _, x := range v[1:] {
		m = math.Max(m, x)
	}
	return m
}
