package diagnose

import "fmt"

// Connections whose keepalive is on but which closed before their first
// ping was due show no ping of their own. That is no sign of keepalive off,
// which their connection open (Tether's ping_interval) says is on: the
// report says they lived shorter than their ping interval, and no finding
// says otherwise (keepaliveMaybeOn keeps peer-pings-only away). It is not a
// finding of its own: nothing is wrong, and a server's log holds many.

// markLivedShorter notes, on each stream that sent no ping, whether it
// lived less than the ping interval its connection open declared.
func markLivedShorter(ss []Stream) {
	for i := range ss {
		s := &ss[i]
		if s.Pings > 0 || s.Declared == nil || s.keepaliveOff || s.start == 0 {
			continue
		}
		if lived := float64(s.end-s.start) / 1e9; lived < *s.Declared {
			l := round(lived, 3)
			s.LivedShorter = &l
		}
	}
}

// livedText is the stream table's note: "lived 9.5 s, under its 20 s ping
// interval".
func livedText(s *Stream) string {
	if s.LivedShorter == nil {
		return ""
	}
	return fmt.Sprintf("lived %s, under its %s ping interval", seconds(*s.LivedShorter), seconds(*s.Declared))
}
