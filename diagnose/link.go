package diagnose

import (
	"math"
	"sort"
)

// Stream inference for lines without a connection ID.
//
// Every keepalive implementation diagnose reads sends one ping per interval
// per connection, on a timer of its own: legacy python-websockets sleeps the
// interval after each pong, its newer asyncio implementation and Tether ping
// one interval after the last ping. So the pings of one connection form a
// chain t, t+P, t+2P... with a few milliseconds of jitter, and the pings of
// several connections in one log are several such chains interleaved, often
// in bunches (connections opened together with one interval ping a few
// milliseconds apart every period).
//
// linkTimes follows the chains as a tracker does targets: a confirmed chain
// predicts its next ping; the pings near a prediction are shared out among
// the chains that predict them, in order and by smallest error, looking a
// little ahead so a ping that arrives a few milliseconds later can still go
// to the chain it fits best. A ping no chain predicts waits in a pool; three
// pooled pings evenly spaced (t, t+g, t+2g within tolerance, each the same
// rank in its bunch) start a new chain. After the pass, pooled pings that fit
// a chain's gaps or ends join it, chains that follow each other at a similar
// period without an open or a timeout between them are joined, and a
// timed-out ping found inside a chain trades places with a ping at the same
// time in a chain that ended there (the connection that timed out is the one
// whose pings stop).

// linkParams tune the tracker; defaultLink suits keepalive intervals from
// 50 ms up.
type linkParams struct {
	minPeriod float64 // seconds: shorter gaps never make a chain
	relTol    float64 // a ping fits a prediction within relTol*period+absTol
	absTol    float64
	relLate   float64 // or as much later: a busy event loop delays pings, never hastens them
	rankGap   float64 // seconds: pings closer than this are one bunch
}

var defaultLink = linkParams{minPeriod: 0.05, relTol: 0.1, absTol: 0.003, relLate: 0.25, rankGap: 0.005}

func (lp linkParams) tol(period float64) float64 { return lp.relTol*period + lp.absTol }

// fit is how far t is from chain c's next ping, in tolerances: at most 1
// when it fits.
func (lp linkParams) fit(c *chain, t float64) float64 {
	d := t - c.pred()
	if d >= 0 {
		return d / (lp.relLate*c.period + lp.absTol)
	}
	return -d / lp.tol(c.period)
}

type chain struct {
	pings  []int // indices into ts, in time order
	gaps   []float64
	period float64
	last   float64
}

func (c *chain) pred() float64 { return c.last + c.period }

func (c *chain) add(k int, t float64) {
	if len(c.pings) > 0 {
		c.gaps = append(c.gaps, t-c.last)
		if len(c.gaps) > 5 {
			c.gaps = c.gaps[1:]
		}
		c.period = medianF(c.gaps)
	}
	c.pings = append(c.pings, k)
	c.last = t
}

// linkInput is what the tracker knows of a context's pings.
type linkInput struct {
	ts       []float64 // seconds
	timedOut []bool
	opens    []float64 // times connections opened: chains never join across one
}

// linkTimes splits pings into chains; it returns the chains (indices into
// in.ts) and the pings that fit none.
func linkTimes(in linkInput, lp linkParams) (chains [][]int, loose []int) {
	n := len(in.ts)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	ts := in.ts
	sort.SliceStable(order, func(a, b int) bool { return ts[order[a]] < ts[order[b]] })
	// rank: how many pings of the same bunch came before (0 for the first).
	rank := make([]int, n)
	for p, lo := 0, 0; p < n; p++ {
		for ts[order[p]]-ts[order[lo]] > lp.rankGap {
			lo++
		}
		rank[order[p]] = p - lo
	}
	assigned := make([]bool, n)
	var cs, active []*chain
	var pool []int
	for pos, k := range order {
		if assigned[k] {
			continue
		}
		t := ts[k]
		live := active[:0]
		for _, c := range active {
			if t <= c.last+2.5*c.period+lp.tol(c.period) {
				live = append(live, c)
			}
		}
		active = live
		if c := jointMatch(active, order, pos, assigned, ts, lp); c != nil {
			c.add(k, t)
			assigned[k] = true
			continue
		}
		if i, j, ok := bootstrap(pool, ts, rank, k, lp); ok {
			c := &chain{}
			c.add(pool[i], ts[pool[i]])
			c.add(pool[j], ts[pool[j]])
			c.add(k, t)
			assigned[pool[i]], assigned[pool[j]], assigned[k] = true, true, true
			pool = append(pool[:j], pool[j+1:]...)
			pool = append(pool[:i], pool[i+1:]...)
			cs = append(cs, c)
			active = append(active, c)
			continue
		}
		pool = append(pool, k)
		if len(pool) > 48 {
			pool = pool[1:] // stays loose
		}
	}
	for _, c := range cs {
		chains = append(chains, c.pings)
	}
	for _, k := range order {
		if !assigned[k] {
			loose = append(loose, k)
		}
	}
	chains, loose = attachLoose(chains, loose, ts, lp)
	chains = joinChains(chains, in, lp)
	repairTimeouts(chains, in, lp)
	return chains, loose
}

// jointMatch shares the pings near order[pos] among the chains predicting
// them and returns the chain that gets order[pos]. The sharing keeps order:
// chains sorted by prediction take pings sorted by time, so a bunch of pings
// logged within one millisecond goes to the bunch's chains in the order they
// pinged last time (a connection that pinged first pings first again, the
// timers all being set one interval after the last ping or pong); among
// order-keeping matchings the one with the smallest error wins.
func jointMatch(cs []*chain, order []int, pos int, assigned []bool, ts []float64, lp linkParams) *chain {
	t := ts[order[pos]]
	w := 0.0
	for _, c := range cs {
		if lp.fit(c, t) <= 1 {
			w = math.Max(w, lp.relLate*c.period+lp.absTol)
		}
	}
	if w == 0 {
		return nil
	}
	look := []int{order[pos]}
	for q := pos + 1; q < len(order) && len(look) < 16 && ts[order[q]] <= t+2*w; q++ {
		if !assigned[order[q]] {
			look = append(look, order[q])
		}
	}
	var near []*chain
	for _, c := range cs {
		for _, k := range look {
			if lp.fit(c, ts[k]) <= 1 {
				near = append(near, c)
				break
			}
		}
	}
	sort.SliceStable(near, func(a, b int) bool { return predLess(near[a], near[b], lp) })
	// dp[i][j]: the least cost of matching the first i chains with the first
	// j pings, in order; leaving a chain or a ping out costs 1, a match its
	// error in tolerances (at most 1).
	m, n := len(near), len(look)
	dp := make([][]float64, m+1)
	for i := range dp {
		dp[i] = make([]float64, n+1)
		for j := range dp[i] {
			switch {
			case i == 0:
				dp[i][j] = float64(j)
			case j == 0:
				dp[i][j] = float64(i)
			default:
				dp[i][j] = math.Min(dp[i-1][j], dp[i][j-1]) + 1
				if e := lp.fit(near[i-1], ts[look[j-1]]); e <= 1 {
					dp[i][j] = math.Min(dp[i][j], dp[i-1][j-1]+e)
				}
			}
		}
	}
	// Walk back to the match of look[0], the ping being decided.
	for i, j := m, n; i > 0 && j > 0; {
		e := lp.fit(near[i-1], ts[look[j-1]])
		switch {
		case e <= 1 && dp[i][j] == dp[i-1][j-1]+e:
			if j == 1 {
				return near[i-1]
			}
			i, j = i-1, j-1
		case dp[i][j] == dp[i-1][j]+1:
			i--
		default:
			j--
		}
	}
	return nil
}

// predLess orders chains by their next ping. Chains at one interval whose
// predictions fall within the log's clock resolution keep the order in
// which they pinged last.
func predLess(a, b *chain, lp linkParams) bool {
	pa, pb := a.pred(), b.pred()
	sameInterval := math.Abs(a.period-b.period) <= 0.05*math.Max(a.period, b.period)
	if sameInterval && math.Abs(pa-pb) <= 2*lp.absTol {
		return a.pings[len(a.pings)-1] < b.pings[len(b.pings)-1]
	}
	return pa < pb
}

// bootstrap looks in the pool for two pings that, with ping k, are evenly
// spaced; it returns their positions in the pool. Timestamps cut to the
// millisecond blur which ping of a bunch is whose, so among spacings within
// tolerance the one that keeps each ping's rank in its bunch wins: the
// connection that pings first in a bunch pings first in the next.
func bootstrap(pool []int, ts []float64, rank []int, k int, lp linkParams) (int, int, bool) {
	t := ts[k]
	bi, bj, best := -1, -1, math.Inf(1)
	for j := len(pool) - 1; j >= 0; j-- {
		g2 := t - ts[pool[j]]
		if g2 < lp.minPeriod {
			continue
		}
		tol := lp.tol(g2)
		for i := j - 1; i >= 0; i-- {
			g1 := ts[pool[j]] - ts[pool[i]]
			if g1 < lp.minPeriod {
				continue
			}
			if g1 > g2+tol {
				break
			}
			e := math.Abs(g2 - g1)
			if e > tol {
				continue
			}
			if rank[pool[i]] != rank[pool[j]] {
				e += lp.rankGap
			}
			if rank[pool[j]] != rank[k] {
				e += lp.rankGap
			}
			if e < best {
				bi, bj, best = i, j, e
			}
		}
	}
	return bi, bj, bi >= 0
}

// attachLoose puts each loose ping into the chain whose rhythm it fits:
// between two pings two periods apart, or one period before or after the
// chain. A gap may run late as the tracker allows (a connection's first
// pings often do, its event loop busy with the opening), early only by the
// tolerance. Attaching one ping before a chain's start may let the one
// before it fit, so passes repeat while pings attach.
func attachLoose(chains [][]int, loose []int, ts []float64, lp linkParams) ([][]int, []int) {
	if len(chains) == 0 {
		if len(loose) > 0 {
			return [][]int{loose}, nil // nothing to tell them apart by
		}
		return nil, nil
	}
	for pass := 0; pass < 4 && len(loose) > 0; pass++ {
		var left []int
		for _, k := range loose {
			if !attachOne(chains, k, ts, lp) {
				left = append(left, k)
			}
		}
		if len(left) == len(loose) {
			break
		}
		loose = left
	}
	return chains, loose
}

// attachOne puts ping k into the chain it fits best, if any.
func attachOne(chains [][]int, k int, ts []float64, lp linkParams) bool {
	t := ts[k]
	best, bestErr, bestAt := -1, math.Inf(1), 0
	for ci, ch := range chains {
		if len(ch) < 2 {
			continue
		}
		p := chainPeriod(ch, ts)
		at := sort.Search(len(ch), func(i int) bool { return ts[ch[i]] > t })
		var e float64
		switch {
		case at == 0:
			e = gapErr(ts[ch[0]]-t, p, lp)
		case at == len(ch):
			e = gapErr(t-ts[ch[at-1]], p, lp)
		default:
			e = math.Max(gapErr(t-ts[ch[at-1]], p, lp), gapErr(ts[ch[at]]-t, p, lp))
		}
		if e <= 1 && e < bestErr {
			best, bestErr, bestAt = ci, e, at
		}
	}
	if best < 0 {
		return false
	}
	ch := append(chains[best], 0)
	copy(ch[bestAt+1:], ch[bestAt:])
	ch[bestAt] = k
	chains[best] = ch
	return true
}

// gapErr is how far a gap is from the period, in tolerances: late by up to
// relLate of the period, early by up to relTol.
func gapErr(gap, period float64, lp linkParams) float64 {
	if gap >= period {
		return (gap - period) / (lp.relLate*period + lp.absTol)
	}
	return (period - gap) / lp.tol(period)
}

// joinChains joins a chain to one that ended before it began when their
// periods agree and the gap between them is a few periods: one connection
// whose rhythm hiccuped. A timeout or an open between them keeps them apart.
// When several chains ended and several began at once, they are joined in
// order: the first to end with the first to begin.
func joinChains(chains [][]int, in linkInput, lp linkParams) [][]int {
	ts := in.ts
	sort.SliceStable(chains, func(a, b int) bool { return ts[chains[a][0]] < ts[chains[b][0]] })
	var out [][]int
	var periods []float64
	for _, y := range chains {
		py := chainPeriod(y, ts)
		best, bestErr := -1, math.Inf(1)
		for xi, x := range out {
			end, px := x[len(x)-1], periods[xi]
			gap := ts[y[0]] - ts[end]
			if len(x) < 2 || len(y) < 2 || gap <= 0 || gap > 3.5*px || in.timedOut[end] ||
				math.Abs(px-py) > 0.15*math.Max(px, py) || openBetween(in.opens, ts[end], ts[y[0]]) {
				continue
			}
			// How far the gap is from a whole number of periods, to the
			// millisecond; ties go to the chain that ended first.
			e := math.Round(math.Abs(gap-math.Max(1, math.Round(gap/px))*px)*1000) + float64(end)/float64(len(ts)+1)
			if e < bestErr {
				best, bestErr = xi, e
			}
		}
		if best >= 0 {
			out[best] = append(out[best], y...)
			periods[best] = chainPeriod(out[best], ts)
			continue
		}
		out = append(out, y)
		periods = append(periods, py)
	}
	return out
}

func openBetween(opens []float64, from, to float64) bool {
	for _, o := range opens {
		if o > from && o < to {
			return true
		}
	}
	return false
}

// repairTimeouts moves a timed-out ping that landed inside a chain (a
// connection does not ping again after its keepalive timed out) to the chain
// that ends at the same moment, taking that chain's last ping in exchange.
func repairTimeouts(chains [][]int, in linkInput, lp linkParams) {
	ts := in.ts
	for a, x := range chains {
		for i := 0; i < len(x)-1; i++ {
			k := x[i]
			if !in.timedOut[k] {
				continue
			}
			tol := lp.tol(chainPeriod(x, ts))
			for b, y := range chains {
				last := y[len(y)-1]
				if b == a || in.timedOut[last] || math.Abs(ts[last]-ts[k]) > tol {
					continue
				}
				x[i], y[len(y)-1] = last, k
				chains[a], chains[b] = x, y
				break
			}
		}
	}
}

// chainPeriod is the median gap of a chain.
func chainPeriod(ch []int, ts []float64) float64 {
	if len(ch) < 2 {
		return 0
	}
	gaps := make([]float64, 0, len(ch)-1)
	for i := 1; i < len(ch); i++ {
		gaps = append(gaps, ts[ch[i]]-ts[ch[i-1]])
	}
	return medianF(gaps)
}

func medianF(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
