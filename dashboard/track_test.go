package dashboard

import (
	"testing"
	"time"
	"unsafe"

	"github.com/tetherws/tether"
)

// TestTrackSmall: every live connection has a track, so it stays small: no
// snapshot of its own (the registry has it), its events in 24 bytes each,
// and a ring that stops growing at History entries rather than at the
// power of two past it.
func TestTrackSmall(t *testing.T) {
	if n := unsafe.Sizeof(track{}); n > 128 {
		t.Errorf("track is %d bytes, past the 128-byte size class", n)
	}
	if n := unsafe.Sizeof(ownEvent{}); n > 24 {
		t.Errorf("a kept event is %d bytes, want 24", n)
	}
	var tr track
	for i := range 150 {
		tr.remember(tether.Event{Kind: tether.EventPong, Time: time.Unix(int64(i), 0), RTT: time.Millisecond}, 100)
		tr.remember(tether.Event{Kind: tether.EventPeerPing, Time: time.Unix(int64(i), 5), Interval: time.Second}, 100)
	}
	if c := cap(tr.hist.own.ev); c != 100 {
		t.Errorf("own ring capacity %d for a history of 100", c)
	}
	if c := cap(tr.hist.peer.at); c != 100 {
		t.Errorf("peer ring capacity %d for a history of 100", c)
	}
}

// TestKeptEventsAsBefore: an event comes out of the ring as the API showed
// it when rings kept whole events: kind, time, RTT in milliseconds, a
// resume's interval in seconds.
func TestKeptEventsAsBefore(t *testing.T) {
	at := time.Date(2025, 6, 7, 5, 31, 37, 123456789, time.UTC)
	var tr track
	tr.remember(tether.Event{Kind: tether.EventPong, Time: at, RTT: 1234567 * time.Nanosecond}, 10)
	tr.remember(tether.Event{Kind: tether.EventResume, Time: at.Add(time.Second), Interval: 1500 * time.Millisecond}, 10)
	tr.remember(tether.Event{Kind: tether.EventTimeout, Time: at.Add(2 * time.Second)}, 10)
	h := tr.history("c1")
	if len(h) != 3 {
		t.Fatalf("history %v", h)
	}
	if e := h[0]; e.Conn != "c1" || e.Kind != "pong" || !e.Time.Equal(at) || e.Time.Location() != time.UTC ||
		e.RTTms == nil || *e.RTTms != 1.234567 {
		t.Errorf("pong came back as %+v", e)
	}
	if e := h[1]; e.Kind != "resume" || e.Interval == nil || *e.Interval != 1.5 {
		t.Errorf("resume came back as %+v", e)
	}
	if e := h[2]; e.Kind != "timeout" || e.RTTms != nil || e.Interval != nil {
		t.Errorf("timeout came back as %+v", e)
	}
}

// TestLostCloseFromStreamedReads: with no page watching, the twice-a-second
// reads go through the registry one connection at a time and keep no list;
// a connection they stop seeing (its close event lost) is taken as closed
// after missingAfter of them, counted in the totals and kept among the
// closed with its role and counters.
func TestLostCloseFromStreamedReads(t *testing.T) {
	r := newRig(t, Options{}, 0)
	c := r.dial(t, -1)
	waitFor(t, "the server connection", func() bool { return r.reg.Len() == 1 })
	s := r.dash.state
	now := time.Now()
	s.mu.Lock()
	s.mergeRegistry(now)
	live := s.live
	// A connection the registry no longer lists, whose close the
	// subscription lost.
	ghost := &track{role: roleServer, last: counts{pings: 7, msgsIn: 3}}
	s.conns.put("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", ghost)
	for i := range missingAfter {
		s.mergeRegistry(now.Add(time.Duration(i) * time.Second))
	}
	var kept *tether.ConnInfo
	if k := s.endedTrack("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"); k != nil && k.info != nil {
		info := *k.info
		kept = &info
	}
	var closed counts
	if p := s.closed["server"]; p != nil {
		closed = *p
	}
	list := s.list
	s.mu.Unlock()
	if live != 1 {
		t.Errorf("a streamed read found %d live connections, want 1", live)
	}
	if list != nil {
		t.Error("a list is kept with no page watching")
	}
	if kept == nil || kept.State != "closed" || kept.Role != "server" || kept.PingsSent != 7 {
		t.Fatalf("the lost connection is not kept as closed with its counters: %+v", kept)
	}
	if closed.pings < 7 || closed.msgsIn < 3 {
		t.Errorf("the lost connection's counts are not in the totals: %+v", closed)
	}
	c.CloseNow()
}
