package diagnose

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes the report as one JSON object (docs/contracts.md).
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for a person: one line per stream, then the
// findings with what to do about each.
func (r *Report) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	c := r.Lines
	if r.NoKeepalive() {
		wrap(ew, noKeepaliveSentence(c), "", 100)
		wrap(ew, "What to do: "+noKeepaliveAdvice, "", 100)
		return ew.err
	}
	fmt.Fprintf(ew, "%d lines: %d keepalive and connection lines, %d other lines of known sources, %d skipped\n",
		c.Lines, c.Keepalive, c.Parsed-c.Keepalive, c.Skipped)
	fmt.Fprintf(ew, "\n%d stream%s:\n", len(r.Streams), plurals(len(r.Streams)))
	r.writeStreams(ew)
	if r.Unattributed > 0 || r.UnattributedPeer > 0 {
		fmt.Fprintf(ew, "  (%d unlabeled pings fit no stream; %d pings from peers could not be given to one)\n", r.Unattributed, r.UnattributedPeer)
	}
	r.writePairs(ew)
	if len(r.Findings) == 0 {
		fmt.Fprintln(ew, "\nNo findings: every stream pings at one interval and every ping was answered.")
		return ew.err
	}
	fmt.Fprintf(ew, "\n%d finding%s:\n", len(r.Findings), plurals(len(r.Findings)))
	r.writeFindings(ew)
	return ew.err
}

// The text report stays a screen or two long whatever the log: a proxy's
// log holds thousands of connections. It lists at most maxRows streams (those
// with timeouts first) and tells at most maxPerKind findings of a kind in
// full, the advice once; --json has everything.
const (
	maxRows    = 10
	maxPerKind = 2
)

// writeFindings writes the findings grouped by kind, in the order of each
// kind's first finding.
func (r *Report) writeFindings(w io.Writer) {
	var kinds []string
	byKind := map[string][]Finding{}
	for _, f := range r.Findings {
		if _, ok := byKind[f.Kind]; !ok {
			kinds = append(kinds, f.Kind)
		}
		byKind[f.Kind] = append(byKind[f.Kind], f)
	}
	for _, k := range kinds {
		fs := byKind[k]
		for i, f := range fs[:min(len(fs), maxPerKind)] {
			fmt.Fprintf(w, "\n  %s %s\n", strings.ToUpper(f.Severity), f.Kind)
			wrap(w, f.Message, "    ", 100)
			if len(fs) <= maxPerKind || i == maxPerKind-1 {
				if more := len(fs) - maxPerKind; more > 0 {
					fmt.Fprintf(w, "    ...and %d more %s finding%s like these (--json lists them all).\n", more, k, plurals(more))
				}
				wrap(w, "What to do: "+f.Advice, "    ", 100)
			}
		}
	}
}

// shownStreams picks the streams the text lists: those with timeouts or
// unanswered pings first, then the others, in report order; it returns
// their indices and how many were left out.
func (r *Report) shownStreams() ([]int, int) {
	var shown []int
	for pass := 0; pass < 2 && len(shown) < maxRows; pass++ {
		for i := range r.Streams {
			s := &r.Streams[i]
			trouble := s.Timeouts > 0 || s.Unanswered > 0
			if trouble == (pass == 0) && len(shown) < maxRows {
				shown = append(shown, i)
			}
		}
	}
	sort.Ints(shown)
	return shown, len(r.Streams) - len(shown)
}

// writeStreams writes one row per stream; the peers' pings get columns of
// their own when any stream has some (a server's log: its clients' cadence).
func (r *Report) writeStreams(w io.Writer) {
	peers, inferred := false, false
	for i := range r.Streams {
		peers = peers || r.Streams[i].PeerPings > 0
		inferred = inferred || !r.Streams[i].Labeled
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := "  STREAM\tLINES\tSOURCE\tROLE\tPINGS\tPONGS\tTIMEOUTS\tINTERVAL\tRTT"
	if inferred {
		head = "  STREAM\tSURE\tLINES\tSOURCE\tROLE\tPINGS\tPONGS\tTIMEOUTS\tINTERVAL\tRTT"
	}
	if peers {
		head += "\tPEER PINGS\tPEER INTERVAL"
	}
	fmt.Fprintln(tw, head+"\tWHERE")
	shown, hidden := r.shownStreams()
	for _, i := range shown {
		s := &r.Streams[i]
		fmt.Fprintf(tw, "  %s", short(s.Name))
		if inferred {
			fmt.Fprintf(tw, "\t%s", s.Confidence)
		}
		fmt.Fprintf(tw, "\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s", linesText(s), s.Source, dash(s.Role),
			s.Pings, s.Pongs, s.Timeouts, intervalText(s), rttText(s))
		if peers {
			fmt.Fprintf(tw, "\t%d\t%s", s.PeerPings, statsText(s.PeerInterval))
		}
		fmt.Fprintf(tw, "\t%s\n", whereText(s, !peers))
	}
	tw.Flush()
	if hidden > 0 {
		fmt.Fprintf(w, "  ...and %d more stream%s (--json lists them all, --lines gives every line its stream).\n", hidden, plurals(hidden))
	}
}

// writePairs lists the connections whose two ends are both in the logs.
func (r *Report) writePairs(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	n := 0
	for i := range r.Streams {
		s := &r.Streams[i]
		if s.Peer == nil || s.Peer.Name < s.Name {
			continue // each pair once
		}
		if n == 0 {
			fmt.Fprintln(tw, "\nBoth ends in these logs:")
		}
		n++
		if n > maxRows {
			continue
		}
		how := "by their addresses"
		if s.Peer.By == "payloads" {
			how = fmt.Sprintf("%d ping%s logged at both ends", s.Peer.Matches, plurals(s.Peer.Matches))
		}
		other := r.Streams[streamIndex(r, s.Peer.Name)]
		fmt.Fprintf(tw, "  %s (%s)\t<->\t%s (%s)\t%s\n", short(s.Name), endText(s), short(other.Name), endText(&other), how)
	}
	tw.Flush()
	if n > maxRows {
		fmt.Fprintf(w, "  ...and %d more pairs (--json: each stream's peer).\n", n-maxRows)
	}
}

// endText is a stream's side of a pair: its role, and its address.
func endText(s *Stream) string {
	t := dash(s.Role)
	if s.Role == "server" && s.Remote != "" {
		t += ", from " + s.Remote
	}
	return t
}

func streamIndex(r *Report, name string) int {
	for i := range r.Streams {
		if r.Streams[i].Name == name {
			return i
		}
	}
	return -1
}

// linesText is a stream's first and last line, "17-240", with the log's
// name when it has one ("server.log:17-240") and the last log's when the
// stream goes on in another.
func linesText(s *Stream) string {
	if s.FirstLine == 0 {
		return "-"
	}
	t := fmt.Sprintf("%d-%d", s.FirstLine, s.LastLine)
	if s.LastFile != "" {
		t = fmt.Sprintf("%d-%s:%d", s.FirstLine, filepath.Base(s.LastFile), s.LastLine)
	}
	if s.File != "" {
		t = filepath.Base(s.File) + ":" + t
	}
	return t
}

func statsText(iv *IntervalStats) string {
	if iv == nil {
		return "-"
	}
	return fmt.Sprintf("%.3fs (%.3f-%.3f)", iv.Median, iv.Min, iv.Max)
}

func intervalText(s *Stream) string {
	if s.Interval == nil {
		if s.Pings > 0 && s.First == nil {
			return "no times"
		}
		return "-"
	}
	iv := s.Interval
	t := statsText(iv)
	if s.Declared != nil && *s.Declared > 0 && (iv.Median > *s.Declared*1.15 || iv.Median < *s.Declared*0.85) {
		t += fmt.Sprintf(" set %gs", *s.Declared)
	}
	return t
}

func rttText(s *Stream) string {
	if s.RTT == nil {
		return "-"
	}
	return millis(s.RTT.Median) + " / " + millis(s.RTT.Max)
}

// whereText says where a stream's connection went (a server's: where from,
// to which path), its logger and thread, and what else the row lacks.
func whereText(s *Stream, peerPings bool) string {
	var parts []string
	switch {
	case s.Role == "server" && s.Remote != "" && s.Endpoint != "":
		parts = append(parts, "from "+s.Remote+" to "+s.Endpoint)
	case s.Endpoint != "":
		parts = append(parts, s.Endpoint)
	case s.Remote != "":
		parts = append(parts, s.Remote)
	}
	if s.Logger != "" {
		parts = append(parts, "logger "+s.Logger)
	}
	if s.Thread != "" && s.Thread != "MainThread" {
		parts = append(parts, "thread "+s.Thread)
	}
	if peerPings && s.PeerPings > 0 {
		parts = append(parts, fmt.Sprintf("%d peer pings", s.PeerPings))
	}
	if s.Unanswered > 0 {
		parts = append(parts, fmt.Sprintf("%d unanswered", s.Unanswered))
	}
	if l := livedText(s); l != "" {
		parts = append(parts, l)
	}
	return strings.Join(parts, ", ")
}

// millis prints a round trip; 0 is below the log's clock resolution.
func millis(v float64) string {
	if v == 0 {
		return "<1 ms"
	}
	return fmt.Sprintf("%.1f ms", v)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// wrap writes text in lines of at most width characters, each indented.
func wrap(w io.Writer, text, indent string, width int) {
	line := indent
	for _, word := range strings.Fields(text) {
		if len(line) > len(indent) && len(line)+1+len(word) > width {
			fmt.Fprintln(w, line)
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += word
	}
	if len(line) > len(indent) {
		fmt.Fprintln(w, line)
	}
}

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return len(p), nil
	}
	_, e.err = e.w.Write(p)
	return len(p), nil
}
