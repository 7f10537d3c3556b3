package diagnose

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
)

// Line attribution: every keepalive and connection line diagnose read, with
// the stream it went to, so a person can check a stream against the log
// (tether diagnose --lines). Lines are numbered across all the logs fed to
// an Analyzer as they are read, and given back as a log's name and the
// line's number in it.

// lineKind says what a line told of its stream.
type lineKind uint8

const (
	linePing        lineKind = iota + 1 // a keepalive ping: its keepalive line, or its frame when that comes first
	linePingFrame                       // the ping's other line: its frame, or "% sent keepalive ping" after it
	linePong                            // the first line of its pong: the frame, or Tether's keepalive pong
	linePongConfirm                     // "% received keepalive pong" after the frame: "pong confirmed"
	lineTimeout                         // timed out waiting for keepalive pong
	linePeerPing                        // a ping the peer sent
	lineOpen                            // the connection opened
	lineClose                           // the connection closed
	lineFailure                         // failing connection with code 1011
)

func (k lineKind) String() string {
	return [...]string{"", "ping", "ping frame", "pong", "pong confirmed", "timeout", "peer ping", "open", "close", "1011 failure"}[k]
}

// lineRef is one line of a stream; line is numbered across all logs.
type lineRef struct {
	line int32
	kind lineKind
}

// fileStart is one fed log: its name and how many lines came before it.
type fileStart struct {
	name   string
	before int32
}

// fileLine turns a line numbered across the logs into its log's name and
// its number there; 0 for no line.
func (a *Analyzer) fileLine(line int32) (string, int) {
	if line <= 0 || line == 1<<31-1 {
		return "", 0
	}
	i := sort.Search(len(a.files), func(i int) bool { return a.files[i].before >= line }) - 1
	if i < 0 {
		return "", int(line)
	}
	return a.files[i].name, int(line - a.files[i].before)
}

// addLine notes a line of the stream beyond its pings and peer pings.
func (s *Stream) addLine(line int32, k lineKind) {
	if line <= 0 {
		return
	}
	s.extra = append(s.extra, lineRef{line, k})
	s.lo, s.hi = min(s.lo, line), max(s.hi, line)
}

func (s *Stream) addMarks(ms []mark, k lineKind) {
	for _, m := range ms {
		s.addLine(m.line, k)
	}
}

// attachFailures gives each 1011 failure line of unlabeled lines to the
// stream whose ping timed out just before it (python-websockets logs the
// timeout, then the failure).
func (c *context) attachFailures(out []Stream) {
	for _, m := range c.fails {
		for i := range out {
			for _, k := range out[i].idx {
				if tl := c.pings[k].timeoutLine; tl > 0 && tl <= m.line && m.line-tl <= 3 {
					out[i].addLine(m.line, lineFailure)
				}
			}
		}
	}
}

// LineAttr is one line of the logs with the stream diagnose gave it.
type LineAttr struct {
	File   string `json:"file,omitempty"`
	Line   int    `json:"line"`
	What   string `json:"what"`   // ping, ping frame, pong, timeout, peer ping, open, close, 1011 failure
	Stream string `json:"stream"` // the stream's short name; "" when no stream could be told
	Conn   string `json:"conn"`   // the stream's conn, "" when unlabeled or not told
}

// Attribute fills r.Attribution: every keepalive and connection line, in
// log order. Lines of unlabeled connections that no stream could be told
// for (their opens and closes when several connections share a logger, a
// ping that fits no rhythm) have an empty Stream.
func (r *Report) Attribute() {
	a := r.a
	owner := map[int32]int{} // line -> stream index
	kinds := map[int32]lineKind{}
	put := func(line int32, k lineKind, si int) {
		if line > 0 {
			owner[line], kinds[line] = si, k
		}
	}
	for si := range r.Streams {
		s := &r.Streams[si]
		c := a.ctxs[s.ctx]
		for _, k := range s.idx {
			p := &c.pings[k]
			put(p.line, linePing, si)
			put(p.line2, linePingFrame, si)
			put(p.pongLine, linePong, si)
			if p.confirmLine != p.pongLine {
				put(p.confirmLine, linePongConfirm, si)
			}
			put(p.timeoutLine, lineTimeout, si)
		}
		for _, m := range s.peerMarks {
			put(m.line, linePeerPing, si)
		}
		for _, l := range s.extra {
			put(l.line, l.kind, si)
		}
	}
	r.unattributedLines(owner, kinds)
	lines := make([]int32, 0, len(kinds))
	for l := range kinds {
		lines = append(lines, l)
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i] < lines[j] })
	r.Attribution = make([]LineAttr, 0, len(lines))
	for _, l := range lines {
		file, n := a.fileLine(l)
		la := LineAttr{File: file, Line: n, What: kinds[l].String()}
		if len(a.files) < 2 {
			la.File = "" // one log: its line numbers say it all
		}
		if si, ok := owner[l]; ok && si >= 0 {
			la.Stream, la.Conn = r.Streams[si].Short, r.Streams[si].Conn
		}
		r.Attribution = append(r.Attribution, la)
	}
}

// unattributedLines adds the lines of every context that no stream holds,
// owned by -1; a context that became exactly one stream owns them all.
func (r *Report) unattributedLines(owner map[int32]int, kinds map[int32]lineKind) {
	only := map[int]int{} // context -> its one stream, -1 when several
	for si := range r.Streams {
		if _, ok := only[r.Streams[si].ctx]; ok {
			only[r.Streams[si].ctx] = -1
		} else {
			only[r.Streams[si].ctx] = si
		}
	}
	for ci, c := range r.a.ctxs {
		si, ok := only[ci]
		if !ok {
			si = -1
		}
		add := func(line int32, k lineKind) {
			if _, done := kinds[line]; line > 0 && !done {
				owner[line], kinds[line] = si, k
			}
		}
		for k := range c.pings {
			p := &c.pings[k]
			add(p.line, linePing)
			add(p.line2, linePingFrame)
			add(p.pongLine, linePong)
			add(p.confirmLine, linePongConfirm)
			add(p.timeoutLine, lineTimeout)
		}
		for _, set := range []struct {
			ms []mark
			k  lineKind
		}{{c.peer, linePeerPing}, {c.opens, lineOpen}, {c.closes, lineClose}, {c.fails, lineFailure}, {c.timeouts, lineTimeout}} {
			for _, m := range set.ms {
				add(m.line, set.k)
			}
		}
	}
}

// WriteLines writes the attribution for a person and for grep: one line per
// log line, "file:line", the stream's short name ("?" when it could not be
// told) and what the line is.
func (r *Report) WriteLines(w io.Writer) error {
	if r.Attribution == nil {
		r.Attribute()
	}
	ew := &errWriter{w: w}
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LINE\tSTREAM\tWHAT")
	for _, la := range r.Attribution {
		at := fmt.Sprint(la.Line)
		if la.File != "" {
			at = la.File + ":" + at
		}
		name := la.Stream
		if name == "" {
			name = "?"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", at, name, la.What)
	}
	tw.Flush()
	return ew.err
}
