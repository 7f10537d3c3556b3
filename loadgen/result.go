package loadgen

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// Result is what a run measured. It is also the JSON that `tether bench
// --json` prints and that split runs merge.
type Result struct {
	Mode        Mode     `json:"mode"`
	URLs        []string `json:"urls"`
	Procs       int      `json:"procs"`
	Conns       int      `json:"conns"`     // connections asked for
	Connected   int      `json:"connected"` // connections opened
	Size        int      `json:"size"`
	Text        bool     `json:"text"`
	Rate        float64  `json:"rate,omitempty"`
	Compression bool     `json:"compression"`
	Extensions  string   `json:"extensions,omitempty"` // as negotiated
	ConnectS    float64  `json:"connect_s"`            // time to open every connection
	WarmupS     float64  `json:"warmup_s"`
	WindowS     float64  `json:"window_s"` // the measured window
	// Messages counts, in the window, echo replies (echo), handshakes
	// (handshake) or broadcasts every subscriber received (broadcast).
	Messages int64 `json:"messages"`
	// Bytes is the payload carried one way in the window (broadcast: to
	// all subscribers).
	Bytes int64 `json:"bytes"`
	// Latency: per echo (echo), per opening handshake (handshake), per
	// delivery to one subscriber (broadcast).
	Latency   *Histogram  `json:"latency"`
	LatencyUS Percentiles `json:"latency_us"`
	// ToLastS is, per broadcast, the time until the last subscriber had it.
	ToLastS []float64 `json:"to_last_s,omitempty"`
	// Pings the servers sent, all answered; PingsInWindow those that came
	// in the measured window.
	Pings         int64            `json:"pings"`
	PingsInWindow int64            `json:"pings_in_window"`
	Errors        map[string]int64 `json:"errors"`
}

// Percentiles summarize a histogram, in microseconds.
type Percentiles struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
}

func percentiles(h *Histogram) Percentiles {
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	return Percentiles{Count: h.Count(), Mean: us(h.Mean()), P50: us(h.Quantile(0.5)), P90: us(h.Quantile(0.9)),
		P99: us(h.Quantile(0.99)), P999: us(h.Quantile(0.999)), Max: us(h.Max())}
}

func (r *run) result() *Result {
	res := &Result{
		Mode: r.cfg.Mode, URLs: r.cfg.URLs, Procs: 1, Conns: r.cfg.Conns, Connected: r.connected,
		Size: r.cfg.Size, Text: r.cfg.Text, Rate: r.cfg.Rate, Compression: r.cfg.Compression,
		ConnectS: r.connectT.Seconds(), WarmupS: r.cfg.Warmup.Seconds(), WindowS: r.window.Seconds(),
		Messages: r.done.Load(), Latency: r.lat.merged(), ToLastS: r.toLast,
		Pings: r.pings.Load(), PingsInWindow: r.windowPings.Load(), Errors: r.errs.snapshot(),
	}
	if e := r.ext.Load(); e != nil {
		res.Extensions = *e
	}
	switch r.cfg.Mode {
	case Echo:
		res.Bytes = res.Messages * int64(r.cfg.Size)
	case Broadcast:
		res.Bytes = res.Latency.Count() * int64(r.cfg.Size)
	}
	res.LatencyUS = percentiles(res.Latency)
	return res
}

// PerSecond is Messages per second of the window.
func (r *Result) PerSecond() float64 {
	if r.WindowS <= 0 {
		return 0
	}
	return float64(r.Messages) / r.WindowS
}

// MBPerSecond is the payload rate one way, in MB (10^6 bytes) per second.
func (r *Result) MBPerSecond() float64 {
	if r.WindowS <= 0 {
		return 0
	}
	return float64(r.Bytes) / r.WindowS / 1e6
}

// ErrorCount is the number of errors of every kind.
func (r *Result) ErrorCount() int64 {
	var n int64
	for _, v := range r.Errors {
		n += v
	}
	return n
}

// Merge combines the results of one run split over processes: counts add
// up, histograms merge, the window is the longest of them.
func Merge(parts ...*Result) *Result {
	if len(parts) == 0 {
		return nil
	}
	out := *parts[0]
	out.Procs, out.Conns, out.Connected = 0, 0, 0
	out.Messages, out.Bytes, out.Pings, out.PingsInWindow = 0, 0, 0, 0
	out.Latency = NewHistogram()
	out.Errors = map[string]int64{}
	out.ToLastS = nil
	for _, p := range parts {
		out.Procs += max(p.Procs, 1)
		out.Conns += p.Conns
		out.Connected += p.Connected
		out.Messages += p.Messages
		out.Bytes += p.Bytes
		out.Pings += p.Pings
		out.PingsInWindow += p.PingsInWindow
		out.Latency.Merge(p.Latency)
		out.ToLastS = append(out.ToLastS, p.ToLastS...)
		out.ConnectS = max(out.ConnectS, p.ConnectS)
		out.WindowS = max(out.WindowS, p.WindowS)
		if out.Extensions == "" {
			out.Extensions = p.Extensions
		}
		for k, v := range p.Errors {
			out.Errors[k] += v
		}
	}
	out.LatencyUS = percentiles(out.Latency)
	return &out
}

// WriteSummary prints the result for a person.
func (r *Result) WriteSummary(w io.Writer) {
	fmt.Fprintf(w, "tether bench: %s\n", r.describe())
	split := ""
	if r.Procs > 1 {
		split = fmt.Sprintf(" (split over %d client processes)", r.Procs)
	}
	fmt.Fprintf(w, "  connections  %d of %d opened in %s%s\n", r.Connected, r.Conns, round(r.ConnectS), split)
	if r.Extensions != "" {
		fmt.Fprintf(w, "  extensions   %s\n", r.Extensions)
	}
	win := round(r.WindowS)
	switch r.Mode {
	case Echo:
		fmt.Fprintf(w, "  messages     %d echoed in %s: %s msg/s, %.2f MB/s each way\n", r.Messages, win, grouped(r.PerSecond()), r.MBPerSecond())
	case Handshake:
		fmt.Fprintf(w, "  handshakes   %d in %s: %s/s\n", r.Messages, win, grouped(r.PerSecond()))
	case Broadcast:
		fmt.Fprintf(w, "  broadcasts   %d in %s, %d deliveries, %.2f MB/s delivered\n", r.Messages, win, r.Latency.Count(), r.MBPerSecond())
		if len(r.ToLastS) > 0 {
			s := slices.Sorted(slices.Values(r.ToLastS))
			fmt.Fprintf(w, "  to the last  median %s  min %s  max %s\n", dur(s[len(s)/2]), dur(s[0]), dur(s[len(s)-1]))
		}
	case Idle:
		fmt.Fprintf(w, "  held         %d connections for %s\n", r.Connected, win)
	}
	if r.Latency != nil && r.Latency.Count() > 0 {
		l := r.LatencyUS
		fmt.Fprintf(w, "  latency      p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (mean %s)\n",
			us(l.P50), us(l.P90), us(l.P99), us(l.P999), us(l.Max), us(l.Mean))
	}
	if r.Pings > 0 {
		fmt.Fprintf(w, "  pings        %d from the server, answered; %s/s in the window\n", r.Pings, grouped(float64(r.PingsInWindow)/max(r.WindowS, 1e-9)))
	}
	fmt.Fprintf(w, "  errors       %s\n", formatErrors(r.Errors))
}

func (r *Result) describe() string {
	var parts []string
	parts = append(parts, strings.Join(r.URLs, " "), string(r.Mode))
	switch r.Mode {
	case Handshake:
		parts = append(parts, fmt.Sprintf("%d at a time", r.Conns))
	case Broadcast:
		parts = append(parts, fmt.Sprintf("%d subscribers", r.Conns))
	default:
		parts = append(parts, fmt.Sprintf("%d connections", r.Conns))
	}
	if r.Mode == Echo || r.Mode == Broadcast {
		typ := "binary"
		if r.Text {
			typ = "text"
		}
		load := "closed loop"
		if r.Rate > 0 {
			load = fmt.Sprintf("%s msg/s", grouped(r.Rate))
		}
		parts = append(parts, fmt.Sprintf("%d B %s", r.Size, typ), load)
	}
	comp := "compression off"
	if r.Compression {
		comp = "compression offered"
	}
	parts = append(parts, comp)
	return strings.Join(parts, ", ")
}

// formatErrors lists errors by kind, most frequent first.
func formatErrors(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := slices.Collect(maps.Keys(m))
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %d", k, m[k])
	}
	return b.String()
}

func round(s float64) string { return time.Duration(s * 1e9).Round(time.Millisecond).String() }

func dur(s float64) string { return us(s * 1e6) }

// us formats microseconds with a unit that suits them.
func us(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fs", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.2fms", v/1e3)
	}
	return fmt.Sprintf("%.1fus", v)
}

// grouped formats a rate with thousands separators.
func grouped(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}
