package diagnose

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// The timeline's geometry, in SVG pixels.
const (
	svgWidth  = 1200
	svgLabelW = 360 // the column of stream names
	svgRight  = 24
	svgTop    = 78 // title and legend
	svgLaneH  = 46
	svgAxisH  = 40
)

// laneColors tell the streams apart; red is kept for trouble.
var laneColors = []string{"#2563eb", "#7c3aed", "#0891b2", "#475569", "#4d7c0f", "#be185d", "#4338ca", "#0f766e"}

const (
	pongColor    = "#16a34a"
	troubleColor = "#dc2626"
	peerColor    = "#6b7280"
)

// WriteSVG writes a timeline of the streams: one lane per stream, a tick per
// ping (above the lane's middle) and per pong (below it), unanswered pings
// and timeouts in red, the peer's pings as small circles. Lanes share one
// time axis, so pings of several connections that interleave or bunch line
// up across lanes. Without timestamps the axis is the line number.
//
// A long log is a solid bar at that scale, so when it spans more than a
// hundred of the shortest interval a second panel zooms on a window of a few
// of the longest intervals, where every stream is alive.
func (r *Report) WriteSVG(w io.Writer) error {
	ew := &errWriter{w: w}
	lo, hi := r.span()
	panels := []window{{lo: lo, hi: hi}}
	if z, ok := r.zoom(lo, hi); ok {
		panels = append(panels, z)
	}
	height := svgTop
	for _, p := range panels {
		height += r.panelHeight(p)
	}
	fmt.Fprintf(ew, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`+"\n",
		svgWidth, height, svgWidth, height)
	fmt.Fprintf(ew, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	r.svgHeader(ew)
	y := svgTop
	for _, p := range panels {
		r.svgPanel(ew, p, y)
		y += r.panelHeight(p)
	}
	fmt.Fprintln(ew, `</svg>`)
	return ew.err
}

// window is one panel's range of the time axis, and its title.
type window struct {
	lo, hi int64
	title  string
}

const svgPanelTitleH = 30

func (r *Report) panelHeight(p window) int {
	h := max(len(r.Streams), 1)*svgLaneH + svgAxisH
	if p.title != "" {
		h += svgPanelTitleH
	}
	return h
}

func (r *Report) svgPanel(w io.Writer, p window, y int) {
	if p.title != "" {
		fmt.Fprintf(w, `<text x="16" y="%d" font-size="14" font-weight="bold" fill="#111827">%s</text>`+"\n", y+20, html.EscapeString(p.title))
		y += svgPanelTitleH
	}
	plotW := float64(svgWidth - svgLabelW - svgRight)
	x := func(at int64) float64 {
		if p.hi <= p.lo {
			return svgLabelW + plotW/2
		}
		return svgLabelW + float64(at-p.lo)/float64(p.hi-p.lo)*plotW
	}
	for i := range r.Streams {
		r.svgLane(w, i, float64(y+i*svgLaneH), p, x)
	}
	r.svgAxis(w, p.lo, p.hi, x, y+len(r.Streams)*svgLaneH)
}

// zoom picks the second panel's window: five of the longest intervals,
// from when the last stream started, when the log is long enough to need it.
func (r *Report) zoom(lo, hi int64) (window, bool) {
	if !r.timed {
		return window{}, false
	}
	shortest, longest := math.Inf(1), 0.0
	var start int64
	for i := range r.Streams {
		s := &r.Streams[i]
		if s.Interval != nil {
			shortest = math.Min(shortest, s.Interval.Median)
			longest = math.Max(longest, s.Interval.Median)
		}
		if len(s.marks) > 0 {
			start = max(start, s.marks[0].At)
		}
	}
	if longest == 0 || float64(hi-lo)/1e9 < 100*shortest {
		return window{}, false
	}
	width := int64(5 * longest * 1e9)
	start -= width / 20
	if start+width > hi {
		start = max(lo, hi-width)
	}
	title := fmt.Sprintf("Zoom: %s from %s UTC", duration(float64(width)/1e9), stamp(start)[11:23])
	return window{lo: start, hi: start + width, title: title}, true
}

// duration prints a span of seconds in the largest unit that keeps it whole.
func duration(sec float64) string {
	switch {
	case sec >= 2*3600:
		return fmt.Sprintf("%.0f h", sec/3600)
	case sec >= 120:
		return fmt.Sprintf("%.0f min", sec/60)
	}
	return seconds(sec)
}

// span is the time (or line) range of all marks, padded a little.
func (r *Report) span() (int64, int64) {
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for i := range r.Streams {
		for _, m := range r.Streams[i].marks {
			lo, hi = min(lo, m.At), max(hi, m.At)
		}
	}
	if lo > hi {
		return 0, 1
	}
	pad := (hi - lo) / 100
	return lo - pad, hi + pad
}

func (r *Report) svgHeader(w io.Writer) {
	title := fmt.Sprintf("Keepalive timeline: %d stream%s", len(r.Streams), plurals(len(r.Streams)))
	var kinds []string
	for _, f := range r.Findings {
		kinds = append(kinds, f.Kind)
	}
	if len(kinds) > 0 {
		title += " · " + strings.Join(kinds, ", ")
	}
	if len(title) > 118 {
		title = title[:strings.LastIndex(title[:116], ",")] + ", …"
	}
	fmt.Fprintf(w, `<text x="16" y="26" font-size="17" font-weight="bold" fill="#111827">%s</text>`+"\n", html.EscapeString(title))
	y := 52
	lx := 16
	item := func(draw, label string) {
		fmt.Fprint(w, draw)
		fmt.Fprintf(w, `<text x="%d" y="%d" font-size="12" fill="#374151">%s</text>`+"\n", lx+14, y+4, label)
		lx += 14 + 7*len(label) + 22
	}
	item(fmt.Sprintf(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`, lx+4, y-7, lx+4, y+1, laneColors[0]), "ping sent")
	item(fmt.Sprintf(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`, lx+4, y-1, lx+4, y+7, pongColor), "pong received")
	item(fmt.Sprintf(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`, lx+4, y-7, lx+4, y+1, troubleColor), "ping unanswered")
	item(crossPath(float64(lx+4), float64(y), 5), "keepalive timeout")
	item(fmt.Sprintf(`<circle cx="%d" cy="%d" r="3" fill="none" stroke="%s" stroke-width="1.5"/>`, lx+4, y+2, peerColor), "peer's ping")
}

func crossPath(cx, cy, s float64) string {
	return fmt.Sprintf(`<path d="M%.1f %.1fL%.1f %.1fM%.1f %.1fL%.1f %.1f" stroke="%s" stroke-width="2.5"/>`,
		cx-s, cy-s, cx+s, cy+s, cx-s, cy+s, cx+s, cy-s, troubleColor)
}

func (r *Report) svgLane(w io.Writer, i int, top float64, p window, x func(int64) float64) {
	s := &r.Streams[i]
	mid := top + svgLaneH/2
	color := laneColors[i%len(laneColors)]
	if i%2 == 0 {
		fmt.Fprintf(w, `<rect x="0" y="%.0f" width="%d" height="%d" fill="#f3f4f6"/>`+"\n", top, svgWidth, svgLaneH)
	}
	fmt.Fprintf(w, `<rect x="8" y="%.0f" width="5" height="%d" fill="%s"/>`+"\n", top+6, svgLaneH-12, color)
	name := s.Name
	if len(name) > 36 {
		name = name[:35] + "…"
	}
	fmt.Fprintf(w, `<text x="20" y="%.0f" font-size="13" font-weight="bold" fill="#111827">%s</text>`+"\n", top+19, html.EscapeString(name))
	fmt.Fprintf(w, `<text x="20" y="%.0f" font-size="11" fill="#4b5563">%s</text>`+"\n", top+35, html.EscapeString(laneSummary(s)))
	fmt.Fprintf(w, `<line x1="%d" y1="%.0f" x2="%d" y2="%.0f" stroke="#d1d5db"/>`+"\n", svgLabelW, mid, svgWidth-svgRight, mid)

	// Thin out dense lanes: at most one mark of a kind per pixel column.
	drawn := map[[2]int]bool{}
	once := func(px float64, k MarkKind) bool {
		key := [2]int{int(px), int(k)}
		if drawn[key] {
			return false
		}
		drawn[key] = true
		return true
	}
	for _, m := range s.marks {
		if m.At < p.lo || m.At > p.hi {
			continue
		}
		px := x(m.At)
		if !once(px, m.Kind) {
			continue
		}
		switch m.Kind {
		case MarkPing:
			fmt.Fprintf(w, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="%s" stroke-width="2"/>`+"\n", px, top+7, px, mid, color)
		case MarkPong:
			fmt.Fprintf(w, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="%s" stroke-width="2"/>`+"\n", px, mid, px, top+svgLaneH-7, pongColor)
		case MarkUnanswered:
			fmt.Fprintf(w, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="%s" stroke-width="3"/>`+"\n", px, top+5, px, mid+2, troubleColor)
		case MarkTimeout:
			if m.From != 0 {
				fmt.Fprintf(w, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="%s" stroke-width="1.5" stroke-dasharray="4 3"/>`+"\n", x(max(m.From, p.lo)), mid, px, mid, troubleColor)
			}
			fmt.Fprintln(w, crossPath(px, mid, 6))
		case MarkPeerPing:
			fmt.Fprintf(w, `<circle cx="%.1f" cy="%.0f" r="3" fill="none" stroke="%s" stroke-width="1.5"/>`+"\n", px, mid+11, peerColor)
		}
	}
}

func laneSummary(s *Stream) string {
	parts := []string{strings.TrimSuffix(s.Source, "-websockets")}
	if !s.Labeled {
		parts = append(parts, "no ID")
	}
	if s.Logger != "" && s.Logger != "websockets.client" && s.Logger != "websockets.server" {
		parts = append(parts, s.Logger)
	}
	if s.Interval != nil {
		parts = append(parts, "every "+seconds(s.Interval.Median))
	}
	if s.RTT != nil {
		parts = append(parts, "rtt "+millis(s.RTT.Median))
	}
	parts = append(parts, fmt.Sprintf("%d pings", s.Pings))
	if s.Timeouts > 0 {
		parts = append(parts, fmt.Sprintf("%d timeout%s", s.Timeouts, plurals(s.Timeouts)))
	}
	if s.Pings == 0 && s.PeerPings > 0 {
		parts = append(parts, fmt.Sprintf("%d peer pings", s.PeerPings))
	}
	return strings.Join(parts, " · ")
}

// svgAxis draws the time axis with round steps, as offsets from the start.
func (r *Report) svgAxis(w io.Writer, lo, hi int64, x func(int64) float64, y int) {
	fmt.Fprintf(w, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#6b7280"/>`+"\n", svgLabelW, y, svgWidth-svgRight, y)
	scale, unit := 1e9, "s"
	switch span := float64(hi-lo) / 1e9; {
	case !r.timed:
		scale, unit = 1, ""
	case span >= 3*3600:
		scale, unit = 3600e9, "h"
	case span >= 600:
		scale, unit = 60e9, "min"
	}
	span := float64(hi-lo) / scale
	step := niceStep(span / 8)
	for v := 0.0; v <= span; v += step {
		px := x(lo + int64(v*scale))
		label := "+" + trimFloat(v, step) + " " + unit
		if !r.timed {
			label = fmt.Sprintf("line %.0f", float64(lo)+v)
		}
		fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#6b7280"/>`+"\n", px, y, px, y+5)
		fmt.Fprintf(w, `<text x="%.1f" y="%d" font-size="11" fill="#374151" text-anchor="middle">%s</text>`+"\n", px, y+18, label)
	}
	from := "time from " + stamp(lo)[:23] + " UTC"
	if !r.timed {
		from = "no timestamps: position by line number"
	}
	fmt.Fprintf(w, `<text x="16" y="%d" font-size="11" fill="#374151">%s</text>`+"\n", y+18, html.EscapeString(from))
}

// niceStep rounds v up to 1, 2 or 5 times a power of ten.
func niceStep(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v, step float64) string {
	decimals := 0
	if step < 1 {
		decimals = int(math.Ceil(-math.Log10(step)))
	}
	return fmt.Sprintf("%.*f", decimals, math.Max(v, 0))
}
