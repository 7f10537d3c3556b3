package diagnose

import "slices"

// linkOrdinal splits the pings of unlabeled lines that carry no timestamps
// (logging's default format), by order alone. Without time there is no
// cadence; what is left is how many connections are open (the "= connection
// is OPEN" and "CLOSED" lines, else how many pings are in flight at once),
// and that a connection sends its next keepalive ping only after the pong of
// the previous one. Each ping goes to the connection that pinged least
// recently among those whose last ping was answered: round robin, which is
// right when the connections share an interval, the usual case in one
// program.
func linkOrdinal(c *context) [][]int {
	type slot struct {
		pings  []int
		used   int
		dead   bool
		diedAt int32 // the line of its timeout
	}
	var slots []*slot
	fixed := 1 + inFlight(c.pings)
	dead := 0
	for k := range c.pings {
		p := c.pings[k]
		capacity := fixed - dead
		if len(c.opens) > 0 {
			// A connection whose keepalive timed out is open until its
			// CLOSED line: its place is taken, by no one.
			var died []int32
			for _, s := range slots {
				if s.dead {
					died = append(died, s.diedAt)
				}
			}
			capacity = openAt(c, p.line) - stillOpen(c, died, p.line)
		}
		var alive, answered []*slot
		for _, s := range slots {
			if s.dead {
				continue
			}
			alive = append(alive, s)
			if last := c.pings[s.pings[len(s.pings)-1]]; last.pong && last.pongLine < p.line {
				answered = append(answered, s)
			}
		}
		var s *slot
		switch {
		case len(alive) < max(capacity, 1):
			s = &slot{}
			slots = append(slots, s)
		case len(answered) > 0:
			s = leastRecent(answered, func(s *slot) int { return s.used })
		default:
			s = leastRecent(alive, func(s *slot) int { return s.used })
		}
		s.pings = append(s.pings, k)
		s.used = k
		if p.timedOut {
			s.dead, s.diedAt = true, p.timeoutLine
			dead++
		}
	}
	groups := make([][]int, 0, len(slots))
	for _, s := range slots {
		groups = append(groups, s.pings)
	}
	return groups
}

func leastRecent[T any](v []T, used func(T) int) T {
	best := v[0]
	for _, x := range v[1:] {
		if used(x) < used(best) {
			best = x
		}
	}
	return best
}

// openAt counts the connections open at a line: opens minus closes before it.
func openAt(c *context, line int32) int {
	n := 0
	for _, m := range c.opens {
		if m.line < line {
			n++
		}
	}
	for _, m := range c.closes {
		if m.line < line {
			n--
		}
	}
	return n
}

// stillOpen counts the connections that died (timed out) at the given lines
// and whose CLOSED line has not come before line: each close after a death
// is taken as that connection's, the earliest death first.
func stillOpen(c *context, died []int32, line int32) int {
	slices.Sort(died)
	n, d := len(died), 0
	for _, m := range c.closes {
		if m.line >= line {
			break
		}
		if d < len(died) && m.line > died[d] {
			n--
			d++
		}
	}
	return n
}

// inFlight is the most pings answered later than a later ping was sent: how
// many connections had a ping in flight at once, less one.
func inFlight(ps []ping) int {
	most := 0
	for k := range ps {
		n := 0
		for j := max(0, k-64); j < k; j++ {
			if ps[j].pong && ps[j].pongLine > ps[k].line {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}
