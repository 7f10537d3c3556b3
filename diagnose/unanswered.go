package diagnose

import "sort"

// Unanswered pings among unlabeled lines. A connection whose peer never
// answers logs few pings (python-websockets' legacy keepalive waits for each
// pong: one ping, then its timeout and a 1011 failure) and they may fall in
// the rhythm of another connection opened at the same moment, or fit none.
// Payloads settle it where the log shows frames: a ping no pong ever echoed
// cannot belong to a stream whose other pings were all answered, and a ping
// that timed out is its connection's last. Such pings are taken out of the
// chains and, with the unanswered pings that fit no chain, make streams of
// their own, each ending at its timeout.

// deadPing reports whether ping k is one no answered stream can hold: it
// timed out, or its payload was logged and never echoed.
func (c *context) deadPing(k int) bool {
	p := &c.pings[k]
	return p.timedOut || (p.hash != 0 && !p.pong)
}

// splitUnanswered takes the dead pings out of the chains (a timed-out ping
// anywhere but at its chain's end; an unechoed ping inside a chain whose
// other pings were answered) and groups them, with the dead pings among the
// loose ones, into streams of their own. It returns the chains and the loose
// pings left.
func (c *context) splitUnanswered(chains [][]int, loose []int) ([][]int, []int) {
	var dead, keptLoose []int
	for _, k := range loose {
		if c.deadPing(k) {
			dead = append(dead, k)
		} else {
			keptLoose = append(keptLoose, k)
		}
	}
	out := chains[:0]
	for _, ch := range chains {
		sort.Ints(ch)
		answered := 0
		for _, k := range ch {
			if c.pings[k].pong {
				answered++
			}
		}
		kept := ch[:0]
		for i, k := range ch {
			last := i == len(ch)-1
			p := &c.pings[k]
			unechoed := p.hash != 0 && !p.pong && answered == len(ch)-1
			if !last && (p.timedOut || unechoed) {
				dead = append(dead, k)
				continue
			}
			kept = append(kept, k)
		}
		if len(kept) > 0 {
			out = append(out, kept)
		}
	}
	return append(out, c.deadStreams(dead)...), keptLoose
}

// deadStreams groups dead pings in log order, each group ending at a
// timeout: a connection that keeps pinging while it waits (Tether, python-
// websockets 10+ with a timeout longer than its interval) logs a few
// unanswered pings before the timeout of the first.
func (c *context) deadStreams(dead []int) [][]int {
	sort.Ints(dead)
	var groups [][]int
	var cur []int
	for _, k := range dead {
		cur = append(cur, k)
		if c.pings[k].timedOut {
			groups, cur = append(groups, cur), nil
		}
	}
	if len(cur) > 0 {
		groups = append(groups, cur)
	}
	return groups
}
