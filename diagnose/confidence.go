package diagnose

import "fmt"

// How sure the split of unlabeled lines is. Labeled lines need no
// inference; unlabeled ones are split by cadence and payloads when the log
// has times, by order alone when it has none, and a person reading the
// report should know which streams rest on what.

// The confidence levels.
const (
	SureLabeled = "labeled" // the lines carry the connection's ID
	SureHigh    = "high"
	SureMedium  = "medium"
	SureLow     = "low"
)

// setConfidence rates each stream split from one context's unlabeled lines.
func (c *context) setConfidence(out []Stream, timed bool, loose int) {
	for i := range out {
		out[i].Confidence, out[i].ConfidenceWhy = c.sureness(&out[i], len(out), timed, loose)
	}
}

func (c *context) sureness(s *Stream, n int, timed bool, loose int) (string, string) {
	opens := len(c.opens)
	switch {
	case n == 1 && opens <= 1:
		return SureHigh, "the only connection logging here"
	case n == 1 && timed:
		return SureMedium, fmt.Sprintf("%d connections opened here, but their pings keep one rhythm: one after the other, or one stream where several were", opens)
	case n == 1:
		return SureLow, fmt.Sprintf("%d connections opened here; without timestamps their pings could not be told apart", opens)
	case s.Pings > 0 && s.Pongs == 0 && s.Timeouts > 0:
		return SureHigh, "its ping was never answered and timed out: no answered connection can hold it"
	case !timed && n == opens:
		return SureMedium, fmt.Sprintf("%d connections opened here and %d streams found, but without timestamps each ping went by order alone "+
			"(to the connection whose last ping was answered longest ago)", opens, n)
	case !timed:
		return SureLow, fmt.Sprintf("without timestamps, %d streams from order alone, where %d connections opened", n, opens)
	case loose > 0:
		return SureMedium, fmt.Sprintf("split by the cadence of pings; %d pings here fit no stream", loose)
	}
	return SureHigh, "split by the cadence of pings and their payloads, every ping placed"
}
