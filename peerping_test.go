package tether

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tetherws/tether/internal/wire"
)

// TestPeerPingCadence: a connection counts the peer's pings and measures
// the cadence they come at; the "received ping" record says how long since
// the previous one, and the JSON snapshot carries it all.
func TestPeerPingCadence(t *testing.T) {
	logger, rec := newLogRecorder()
	c, peer, fc := kaClient(t, ConnOptions{PingInterval: -1, Logger: logger, Registry: NoRegistry})
	if pk := c.PeerKeepalive(); pk.Pings != 0 || pk.Interval != 0 {
		t.Fatalf("before any ping: %+v", pk)
	}
	var info ConnInfo
	decode := func() {
		b, err := json.Marshal(c.Info())
		if err != nil {
			t.Fatal(err)
		}
		info = ConnInfo{}
		if err := json.Unmarshal(b, &info); err != nil {
			t.Fatal(err)
		}
	}
	steps := []time.Duration{0, 500 * time.Millisecond, 500 * time.Millisecond, 600 * time.Millisecond, 400 * time.Millisecond}
	for i, d := range steps {
		fc.Advance(d)
		peer.writeFrame(wire.OpPing, []byte{byte(i)})
		if h, _ := peer.readFrame(); h.Opcode != wire.OpPong {
			t.Fatalf("got %v, want the pong", h.Opcode)
		}
		if i == 0 {
			decode()
			if info.PeerPings != 1 || info.PeerPingInterval != nil || info.LastPeerPingAt == nil {
				t.Fatalf("after one ping: pings %d, interval %v, last %v; want 1, null, set", info.PeerPings, info.PeerPingInterval, info.LastPeerPingAt)
			}
		}
	}
	pk := c.PeerKeepalive()
	if pk.Pings != 5 || pk.Interval != 500*time.Millisecond || pk.Min != 400*time.Millisecond || pk.Max != 600*time.Millisecond {
		t.Fatalf("peer keepalive %+v, want 5 pings, median 500ms, 400ms-600ms", pk)
	}
	if !pk.Last.Equal(fc.Now()) {
		t.Fatalf("last ping at %v, want %v", pk.Last, fc.Now())
	}
	if st := c.Stats(); st.Peer != pk {
		t.Fatalf("Stats().Peer = %+v, want %+v", st.Peer, pk)
	}
	decode()
	if info.PeerPingInterval == nil || time.Duration(*info.PeerPingInterval) != 500*time.Millisecond ||
		time.Duration(*info.PeerPingIntervalMin) != 400*time.Millisecond || time.Duration(*info.PeerPingIntervalMax) != 600*time.Millisecond {
		t.Fatalf("JSON peer interval %v (%v-%v)", info.PeerPingInterval, info.PeerPingIntervalMin, info.PeerPingIntervalMax)
	}
	recs := rec.with("received ping")
	if len(recs) != 5 {
		t.Fatalf("%d received ping records, want 5", len(recs))
	}
	if _, ok := recs[0].Attrs["since"]; ok {
		t.Fatal("the first received ping has a since")
	}
	if got := recs[3].Attrs["since"].Duration(); got != 600*time.Millisecond {
		t.Fatalf("fourth ping's since = %v, want 600ms", got)
	}
}

// TestPeerPingWindow: the cadence follows the recent pings, so a peer that
// changes its interval is seen at the new one once the window has passed.
func TestPeerPingWindow(t *testing.T) {
	c, peer, fc := kaClient(t, ConnOptions{PingInterval: -1, Logger: discard, Registry: NoRegistry})
	ping := func(n int, every time.Duration) {
		for range n {
			fc.Advance(every)
			peer.writeFrame(wire.OpPing, nil)
			peer.readFrame()
		}
	}
	ping(10, 20*time.Second)
	ping(peerWindow+1, time.Second)
	if pk := c.PeerKeepalive(); pk.Interval != time.Second || pk.Max != time.Second {
		t.Fatalf("after the change: %+v, want 1s throughout", pk)
	}
}

// TestPeerPingNoAllocation: after the first, a peer's ping costs the
// connection no allocation (logging at debug is off).
func TestPeerPingNoAllocation(t *testing.T) {
	c, _, _ := kaClient(t, ConnOptions{PingInterval: -1, Logger: discard, Registry: NoRegistry})
	c.receivedPing([]byte{1, 2, 3, 4})
	if n := testing.AllocsPerRun(100, func() { c.receivedPing([]byte{1, 2, 3, 4}) }); n != 0 {
		t.Fatalf("%v allocations per ping", n)
	}
}
