package dashboard

import (
	"slices"
	"time"

	"github.com/tetherws/tether"
)

// Closed connections stay a while after they end, with their final snapshot
// (close code, reason, initiator, closed_at) and their history: the one
// that failed on a keepalive timeout at 3 a.m. is what the person paged for
// it opens the dashboard to see, after the fact.

const (
	// DefaultKeepClosed is how many recently closed connections the
	// handler keeps unless Options.KeepClosed says otherwise.
	DefaultKeepClosed = 100
	// DefaultKeepClosedFor is how long it keeps them unless
	// Options.KeepClosedFor says otherwise.
	DefaultKeepClosedFor = 10 * time.Minute
	// maxGhosts caps the closed connections a hello sends the history of:
	// the newest that timed out, which the page draws lanes for.
	maxGhosts = 20
)

// closedInfo is a closed connection's final snapshot as the API shows it:
// state "closed", with when it closed (when the snapshot does not say, the
// dashboard's time) and every keepalive timeout counted.
func closedInfo(ci tether.ConnInfo, t *track, now time.Time) tether.ConnInfo {
	ci.State = "closed"
	if ci.ClosedAt == nil {
		at := now.UTC()
		ci.ClosedAt = &at
	}
	ci.PingTimeouts = max(ci.PingTimeouts, int64(t.timeouts))
	return ci
}

// retain keeps the track of closed connection id among the recently
// closed, dropping the oldest beyond s.keep; the caller holds s.mu. A
// connection whose close event was lost is kept with what its track says
// of it (lastInfo).
func (s *state) retain(t *track, id string, now time.Time) {
	if s.keep <= 0 {
		return
	}
	info := t.lastInfo(id)
	if t.info != nil {
		info = *t.info
	}
	info = closedInfo(info, t, now)
	t.info = &info
	t.ended = now.UnixNano()
	if i := slices.IndexFunc(s.ended, func(k *track) bool { return k.info.ID == id }); i >= 0 {
		s.ended = slices.Delete(s.ended, i, i+1) // a redial that reused the ID
	}
	s.ended = append(s.ended, t)
	if n := len(s.ended) - s.keep; n > 0 {
		clear(s.ended[:n])
		s.ended = s.ended[n:]
	}
	s.endVer++
}

// expire drops the closed connections kept longer than s.keepFor; the
// caller holds s.mu.
func (s *state) expire(now time.Time) {
	n := 0
	for n < len(s.ended) && now.Sub(time.Unix(0, s.ended[n].ended)) > s.keepFor {
		n++
	}
	if n > 0 {
		clear(s.ended[:n])
		s.ended = s.ended[n:]
		s.endVer++
	}
}

// endedTrack returns the kept track of a closed connection, or nil; the
// caller holds s.mu.
func (s *state) endedTrack(id string) *track {
	for _, t := range s.ended {
		if t.info.ID == id {
			return t
		}
	}
	return nil
}

// closedList returns the kept closed connections that pass f, the most
// recently closed first; the caller holds s.mu.
func (s *state) closedList(f filter, node string) []connJSON {
	out := []connJSON{}
	for i := len(s.ended) - 1; i >= 0; i-- {
		if ci := s.ended[i].info; f.match(ci, node) {
			out = append(out, connJSON{ConnInfo: *ci, Node: node})
		}
	}
	return out
}

// ghostHistory adds to hist the histories of the newest closed connections
// in list that timed out: those the page keeps a lane for. The caller holds
// s.mu.
func (s *state) ghostHistory(list []connJSON, hist map[string][]event) {
	n := 0
	for _, c := range list {
		if n == maxGhosts {
			return
		}
		if t := s.endedTrack(c.ID); t != nil && t.timedOut() {
			hist[c.ID] = t.history(c.ID)
			n++
		}
	}
}
