package diagnose

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// synthConn describes one connection's pings for the tracker tests.
type synthConn struct {
	interval, start, end float64 // seconds
	timeoutAt            float64 // the ping at or after this time is the last, and times out
}

// synthPings lays out the pings of several connections as a log shows them:
// jitter under a millisecond, times cut to milliseconds, in time order. It
// returns the input and, for each ping, the connection that sent it.
func synthPings(conns []synthConn, seed uint64) (linkInput, []int) {
	rng := rand.New(rand.NewPCG(seed, 7))
	type p struct {
		t    float64
		conn int
		dead bool
	}
	var ps []p
	for ci, c := range conns {
		for t := c.start + c.interval; t < c.end; t += c.interval {
			jt := math.Floor((t+rng.Float64()*0.0008)*1000) / 1000
			dead := c.timeoutAt > 0 && t >= c.timeoutAt
			ps = append(ps, p{jt, ci, dead})
			if dead {
				break
			}
		}
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].t < ps[j].t })
	in := linkInput{}
	var truth []int
	for _, x := range ps {
		in.ts = append(in.ts, x.t)
		in.timedOut = append(in.timedOut, x.dead)
		truth = append(truth, x.conn)
	}
	return in, truth
}

func TestLinkTimes(t *testing.T) {
	tests := []struct {
		name  string
		conns []synthConn
	}{
		{"one connection", []synthConn{{interval: 20, end: 600}}},
		{"two at one interval, 3 ms apart", []synthConn{{interval: 5, end: 300}, {interval: 5, start: 0.003, end: 300}}},
		{"two in the same millisecond", []synthConn{{interval: 5, end: 300}, {interval: 5, end: 300}}},
		{"the report: 20 s and twice 5 s, opened together", []synthConn{
			{interval: 20, end: 600}, {interval: 5, start: 0.001, end: 600}, {interval: 5, start: 0.002, end: 600}}},
		{"three intervals, random phases", []synthConn{
			{interval: 0.3, start: 0.11, end: 30}, {interval: 0.5, start: 0.07, end: 30}, {interval: 0.7, start: 0.23, end: 30}}},
		{"one after another", []synthConn{{interval: 1, end: 20}, {interval: 1, start: 25, end: 50}}},
		{"late joiner", []synthConn{{interval: 2, end: 100}, {interval: 2, start: 41.3, end: 100}}},
		{"timeout at a bunch", []synthConn{
			{interval: 20, end: 600, timeoutAt: 200}, {interval: 5, start: 0.001, end: 600}, {interval: 5, start: 0.002, end: 600}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for seed := range uint64(5) {
				in, truth := synthPings(tt.conns, seed)
				chains, loose := linkTimes(in, defaultLink)
				checkChains(t, tt.conns, in, truth, chains, loose)
			}
		})
	}
}

// checkChains wants one chain per connection holding at least 95 % of its
// pings, with the connection's interval, and a timed-out ping last.
func checkChains(t *testing.T, conns []synthConn, in linkInput, truth []int, chains [][]int, loose []int) {
	t.Helper()
	if len(chains) != len(conns) {
		t.Fatalf("%d chains (%d loose pings), want %d", len(chains), len(loose), len(conns))
	}
	total := make([]int, len(conns))
	for _, c := range truth {
		total[c]++
	}
	seen := map[int]bool{}
	for _, ch := range chains {
		count := map[int]int{}
		for _, k := range ch {
			count[truth[k]]++
		}
		best := -1
		for c, n := range count {
			if best < 0 || n > count[best] {
				best = c
			}
		}
		if seen[best] {
			t.Fatalf("two chains for connection %d", best)
		}
		seen[best] = true
		if n := count[best]; float64(n) < 0.95*float64(total[best]) || float64(n) < 0.95*float64(len(ch)) {
			t.Errorf("connection %d: chain holds %d of its %d pings among %d", best, n, total[best], len(ch))
		}
		if p := chainPeriod(ch, in.ts); math.Abs(p-conns[best].interval) > 0.05*conns[best].interval {
			t.Errorf("connection %d: period %.4f, want %.4f", best, p, conns[best].interval)
		}
		for i, k := range ch {
			if in.timedOut[k] && i != len(ch)-1 {
				t.Errorf("connection %d: timed-out ping %d of %d inside its chain", best, i, len(ch))
			}
			if in.timedOut[k] && truth[k] != best {
				t.Errorf("the timed-out ping of connection %d went to connection %d's chain", truth[k], best)
			}
		}
	}
}

func TestLinkOrdinal(t *testing.T) {
	// Two connections alternating, each ping answered before the next: with
	// two OPEN lines, two streams, round robin.
	c := &context{}
	line := int32(0)
	next := func() int32 { line++; return line }
	c.opens = append(c.opens, mark{line: next()}, mark{line: next()})
	for range 10 {
		for range 2 {
			p := ping{line: next()}
			p.pong, p.pongLine = true, next()
			c.pings = append(c.pings, p)
		}
	}
	groups := linkOrdinal(c)
	if len(groups) != 2 || len(groups[0]) != 10 || len(groups[1]) != 10 {
		t.Fatalf("groups %v", groups)
	}
	for i, k := range groups[0] {
		if k != 2*i {
			t.Fatalf("group 0 is %v, want the even pings", groups[0])
		}
	}
}

// TestLinkLateStart: a connection's first pings come late (its event loop
// busy with the opening: 306 ms, then 361 ms at a 300 ms interval, a fresh
// run of the timeout fixture) and the tracker starts its chain after them;
// they still join it, the late gap within the lateness the tracker allows.
func TestLinkLateStart(t *testing.T) {
	ts := []float64{0, 0.306, 0.667}
	for i := 1; i <= 12; i++ {
		ts = append(ts, 0.667+0.3*float64(i)+0.001*float64(i%2))
	}
	chains, loose := linkTimes(linkInput{ts: ts, timedOut: make([]bool, len(ts))}, defaultLink)
	if len(chains) != 1 || len(chains[0]) != len(ts) || len(loose) != 0 {
		t.Errorf("chains %v, loose %v: want one chain of all %d pings", chains, loose, len(ts))
	}
}
