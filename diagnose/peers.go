package diagnose

import (
	"cmp"
	"slices"
)

// PeerLink names the stream of a connection's other end, when the logs of
// both ends were read together.
type PeerLink struct {
	Name string `json:"name"` // the other end's stream name
	Conn string `json:"conn"` // its conn ("" when unlabeled)
	// By is how the two were paired: "payloads" (pings logged with the same
	// payload at both ends) or "addresses" (one end's local address is the
	// other's remote).
	By      string `json:"by"`
	Matches int    `json:"matches,omitempty"` // pings seen at both ends
}

// peerInterval measures the gaps between a peer's pings: Tether's since
// attribute where the record has it (exact, whatever the clock resolution
// of the log), else the records' times.
func peerInterval(peer []mark) *IntervalStats {
	var gaps []float64
	for i := 1; i < len(peer); i++ {
		m, prev := peer[i], peer[i-1]
		switch {
		case m.since > 0:
			gaps = append(gaps, float64(m.since)/1e6)
		case m.hasTime && prev.hasTime:
			gaps = append(gaps, float64(m.t-prev.t)/1e9)
		}
	}
	if len(gaps) == 0 {
		return nil
	}
	return &IntervalStats{Median: round(medianF(gaps), 3), Min: round(minF(gaps), 3), Max: round(maxF(gaps), 3)}
}

// pairEnds finds, among the streams, the two ends of one connection: a ping
// one end sent is the ping the other end received, and a client's local
// address is the server's remote. Each stream gets at most one peer.
func pairEnds(ss []Stream) {
	pairByPayload(ss)
	pairByAddress(ss)
}

// pairVotes counts, for each two streams, the pings one sent and the other
// received, by payload. It indexes the smaller side, so that a server's log
// of a million received pings next to a few sent ones stays cheap.
func pairVotes(ss []Stream) map[[2]int]int {
	nSent, nRecv := 0, 0
	for i := range ss {
		nSent, nRecv = nSent+len(ss[i].sent), nRecv+len(ss[i].recv)
	}
	if nSent == 0 || nRecv == 0 {
		return nil
	}
	sent := func(s *Stream) []uint64 { return s.sent }
	recv := func(s *Stream) []uint64 { return s.recv }
	indexed, scanned := recv, sent
	if nSent < nRecv {
		indexed, scanned = sent, recv
	}
	owner := map[uint64]int{} // payload -> stream, -1 when several streams have it
	for i := range ss {
		for _, h := range indexed(&ss[i]) {
			if j, ok := owner[h]; ok && j != i {
				owner[h] = -1
			} else if !ok {
				owner[h] = i
			}
		}
	}
	votes := map[[2]int]int{}
	for i := range ss {
		for _, h := range scanned(&ss[i]) {
			if j, ok := owner[h]; ok && j >= 0 && j != i {
				votes[[2]int{min(i, j), max(i, j)}]++
			}
		}
	}
	return votes
}

// pairByPayload pairs streams by the pings both logged, most shared first.
// Payloads are 4 random bytes, so two pings in common are proof, unless the
// streams are so long that chance would give them that many; one is enough
// when each has only that one ping to give.
func pairByPayload(ss []Stream) {
	type cand struct{ a, b, votes int }
	var cands []cand
	for k, v := range pairVotes(ss) {
		cands = append(cands, cand{k[0], k[1], v})
	}
	slices.SortFunc(cands, func(x, y cand) int {
		return cmp.Or(y.votes-x.votes, x.a-y.a, x.b-y.b)
	})
	for _, c := range cands {
		a, b := &ss[c.a], &ss[c.b]
		if a.Peer != nil || b.Peer != nil || !rolesFit(a, b) {
			continue
		}
		possible := min(len(a.sent), len(b.recv)) + min(len(b.sent), len(a.recv))
		if (c.votes < 2 && possible > 1) || c.votes*10 < possible {
			continue
		}
		link(a, b, "payloads", c.votes)
	}
}

// pairByAddress pairs a stream that logs its own address with the stream
// whose remote it is, when exactly one such stream lived at the same time.
func pairByAddress(ss []Stream) {
	byRemote := map[string][]int{}
	any := false
	for i := range ss {
		if ss[i].Remote != "" {
			byRemote[ss[i].Remote] = append(byRemote[ss[i].Remote], i)
		}
		any = any || ss[i].Local != ""
	}
	if !any {
		return
	}
	for i := range ss {
		a := &ss[i]
		if a.Peer != nil || a.Local == "" {
			continue
		}
		match := -1
		for _, j := range byRemote[a.Local] {
			b := &ss[j]
			if j == i || b.Peer != nil || !rolesFit(a, b) || !overlap(a, b) ||
				(a.Remote != "" && b.Local != "" && b.Local != a.Remote) {
				continue
			}
			if match >= 0 {
				match = -1 // two candidates: a port reused while both lived
				break
			}
			match = j
		}
		if match >= 0 {
			link(a, &ss[match], "addresses", 0)
		}
	}
}

// rolesFit reports whether a and b may be the two ends of one connection:
// a client and a server, as far as their logs tell.
func rolesFit(a, b *Stream) bool {
	return a.Role == "" || b.Role == "" || a.Role != b.Role
}

// overlap reports whether a and b lived at the same time, with some slack
// for two machines' clocks; streams without times may have.
func overlap(a, b *Stream) bool {
	const slack = 5e9
	if a.start == 0 || b.start == 0 {
		return true
	}
	return a.start <= b.end+slack && b.start <= a.end+slack
}

func link(a, b *Stream, by string, matches int) {
	a.Peer = &PeerLink{Name: b.Name, Conn: b.Conn, By: by, Matches: matches}
	b.Peer = &PeerLink{Name: a.Name, Conn: a.Conn, By: by, Matches: matches}
}
