package hub

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tetherws/tether"
)

// memBroker is a Recoverer in memory: one history for the whole cluster,
// delivery in the history's order. slow makes History take its time, so
// that live messages arrive while a subscriber is being replayed to.
type memBroker struct {
	h    *Hub
	mu   sync.Mutex
	msgs []Message // position i+1
	keep int       // messages kept per room; older ones are forgotten
	slow time.Duration
}

func (b *memBroker) Start(h *Hub) error { b.h = h; return nil }
func (b *memBroker) Close() error       { return nil }

func (b *memBroker) Publish(_ context.Context, m Message) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock() // delivery in order, under the lock
	m.Seq = uint64(len(b.msgs) + 1)
	for i := len(b.msgs) - 1; i >= 0; i-- {
		if b.msgs[i].Room == m.Room {
			m.Prev = b.msgs[i].Seq
			break
		}
	}
	b.msgs = append(b.msgs, m)
	b.h.Deliver(m)
	return 0, nil
}

func (b *memBroker) kept(room string) []Message {
	var all []Message
	for _, m := range b.msgs {
		if m.Room == room {
			all = append(all, m)
		}
	}
	if b.keep > 0 && len(all) > b.keep {
		all = all[len(all)-b.keep:]
	}
	return all
}

func (b *memBroker) History(_ context.Context, room string, since uint64) ([]Message, *Gap, error) {
	time.Sleep(b.slow)
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Message
	for _, m := range b.kept(room) {
		if m.Seq > since {
			out = append(out, m)
		}
	}
	if len(out) > 0 && out[0].Prev != since {
		return out, &Gap{Room: room, Since: since, Next: out[0].Seq}, nil
	}
	return out, nil, nil
}

func (b *memBroker) Position(_ context.Context, room string) (uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.kept(room)
	if len(k) == 0 {
		return 0, nil
	}
	return k[len(k)-1].Seq, nil
}

// envelopes reads n envelopes from c.
func envelopes(t *testing.T, c *tether.Conn, n int) []Envelope {
	t.Helper()
	var out []Envelope
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, p, err := c.Read(ctx)
		cancel()
		if err != nil {
			t.Fatalf("after %d envelopes: %v", len(out), err)
		}
		e, err := ParseEnvelope(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// subServer serves subscribers: /ROOM?since=N.
func subServer(t *testing.T, b *memBroker) (*Hub, func(room string, since uint64) *tether.Conn) {
	t.Helper()
	opts := &Options{Logger: discard, Node: "n1"}
	if b != nil {
		opts.Broker = b
	}
	s := newHubServer(t, opts, time.Second)
	return s.hub, func(room string, since uint64) *tether.Conn {
		return s.dialSub(room, since)
	}
}

// TestResumeDuringLiveTraffic: messages keep coming while a subscriber is
// given the ones it missed; it gets every message once, in order.
func TestResumeDuringLiveTraffic(t *testing.T) {
	b := &memBroker{slow: 50 * time.Millisecond}
	h, dial := subServer(t, b)
	for i := range 10 {
		h.Broadcast("r", tether.Text, fmt.Appendf(nil, "m%d", i))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // live traffic: m10...
		for i := 10; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			h.Broadcast("r", tether.Text, fmt.Appendf(nil, "m%d", i))
			time.Sleep(time.Millisecond)
		}
	})
	c := dial("r", 4) // had m0..m3
	es := envelopes(t, c, 41)
	close(stop)
	wg.Wait()
	if es[0].Kind != KindSubscribed || es[0].Seq != 4 {
		t.Fatalf("first %+v, want subscribed at 4", es[0])
	}
	for i, e := range es[1:] {
		if want := fmt.Sprintf("m%d", i+4); e.Kind != KindMessage || string(e.Data) != want || e.Seq != uint64(i+5) || e.Node != "n1" {
			t.Fatalf("envelope %d: %+v (%q), want %s at %d", i+1, e, e.Data, want, i+5)
		}
	}
}

// TestFreshSubscriberAndGap: a fresh subscriber starts at the room's last
// message and gets no history; one that resumes beyond what is kept gets
// a gap, then what is kept.
func TestFreshSubscriberAndGap(t *testing.T) {
	b := &memBroker{keep: 5}
	h, dial := subServer(t, b)
	for i := range 20 {
		h.Broadcast("r", tether.Text, fmt.Appendf(nil, "m%d", i))
	}
	fresh := dial("r", 0)
	if e := envelopes(t, fresh, 1)[0]; e.Kind != KindSubscribed || e.Seq != 20 {
		t.Fatalf("fresh subscriber: %+v, want subscribed at 20", e)
	}
	h.Broadcast("r", tether.Text, []byte("m20"))
	if e := envelopes(t, fresh, 1)[0]; string(e.Data) != "m20" || e.Seq != 21 {
		t.Fatalf("fresh subscriber's first message %+v", e)
	}
	late := dial("r", 3)
	es := envelopes(t, late, 7)
	if es[1].Kind != KindGap || es[1].Since != 3 || es[1].Next != 17 {
		t.Fatalf("got %+v, want a gap after 3 up to 17", es[1])
	}
	for i, e := range es[2:] {
		if e.Seq != uint64(17+i) {
			t.Fatalf("kept message %d at %d, want %d", i, e.Seq, 17+i)
		}
	}
}

// TestSubscribeWithoutHistory: on a hub alone, a subscriber gets envelopes
// without positions, and a resume gets a gap.
func TestSubscribeWithoutHistory(t *testing.T) {
	h, dial := subServer(t, nil)
	c := dial("r", 0)
	envelopes(t, c, 1)
	h.Broadcast("r", tether.Binary, []byte{1, 2})
	if e := envelopes(t, c, 1)[0]; e.Seq != 0 || e.Type != tether.Binary || string(e.Data) != "\x01\x02" {
		t.Fatalf("got %+v", e)
	}
	r := dial("r", 9)
	if es := envelopes(t, r, 2); es[1].Kind != KindGap || es[1].Next != 0 {
		t.Fatalf("got %+v, want a gap with next unknown", es[1])
	}
}

func TestParseEnvelope(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind string
		err  bool
	}{
		{`{"type":"message","room":"r","seq":3,"data":"hi"}`, KindMessage, false},
		{`{"type":"message","room":"r","binary":true,"data":"AQI="}`, KindMessage, false},
		{`{"type":"message","room":"r","binary":true,"data":"!!"}`, "", true},
		{`{"type":"future","room":"r"}`, "future", false},
		{`{"room":"r"}`, "", true},
		{`not json`, "", true},
	} {
		e, err := ParseEnvelope([]byte(tc.in))
		if (err != nil) != tc.err || e.Kind != tc.kind {
			t.Errorf("%s: %+v, %v", tc.in, e, err)
		}
	}
}
