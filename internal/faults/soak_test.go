package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherws/tether"
	"github.com/tetherws/tether/hub"
	"github.com/tetherws/tether/hub/natsbroker"
	"github.com/tetherws/tether/internal/natstest"
	"github.com/tetherws/tether/internal/serve"
)

// The soak's keepalive: a dead peer is due within 3 s.
const (
	soakInterval = time.Second
	soakTimeout  = 2 * time.Second
)

// soakFigures is what the soak measured.
type soakFigures struct {
	faults                      map[string]int
	conns, reconnects           atomic.Int64
	received, duplicates, lost  atomic.Int64
	detections, late            atomic.Int64
	failed, gaps                atomic.Int64
	worstDetectNanos, published atomic.Int64
}

// TestSoak runs only under TETHER_SOAK (make soak), for TETHER_SOAK_FOR
// (default 8m): 2,000 subscribers of a JetStream-backed hub, behind 20
// proxies, while faults are injected at random on one proxy at a time
// (blackhole, reset, latency under the ping timeout, throttling) and a
// broadcast with a sequence number goes out 20 times a second. A
// subscriber whose connection dies redials with ?since= its last position.
// At the end every subscriber must have every message once, every dead
// connection must have been noticed within ping interval + timeout, and
// goroutines and descriptors must be back to their baseline.
func TestSoak(t *testing.T) {
	if !soak() {
		t.Skip("make soak runs it (TETHER_SOAK=1)")
	}
	d := 8 * time.Minute
	if v := os.Getenv("TETHER_SOAK_FOR"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	base := takeBaseline(t)
	rssBefore := rssKiB(t)
	fig := &soakFigures{faults: map[string]int{}}
	t.Run("run", func(t *testing.T) { runSoak(t, d, fig) })
	base.back(t)
	debug.FreeOSMemory()
	rssAfter := rssKiB(t)
	if fig.late.Load() > 0 {
		t.Errorf("%d dead connections noticed later than the bound", fig.late.Load())
	}
	if fig.lost.Load() > 0 || fig.duplicates.Load() > 0 || fig.gaps.Load() > 0 {
		t.Errorf("%d messages lost, %d duplicated", fig.lost.Load(), fig.duplicates.Load())
	}
	fmt.Printf("== soak figures (%v)\n", d)
	fmt.Printf("connections opened %d (reconnects %d), messages published %d (broadcasts refused %d), received %d, lost %d, duplicates %d, gaps %d\n",
		fig.conns.Load(), fig.reconnects.Load(), fig.published.Load(), fig.failed.Load(), fig.received.Load(),
		fig.lost.Load(), fig.duplicates.Load(), fig.gaps.Load())
	fmt.Printf("faults injected %v; connections found dead in a blackhole %d, slowest %v, late %d (bound %v)\n",
		fig.faults, fig.detections.Load(), time.Duration(fig.worstDetectNanos.Load()).Round(time.Millisecond),
		fig.late.Load(), soakInterval+soakTimeout)
	fmt.Printf("after: goroutines and descriptors back to baseline; RSS %d MiB before, %d MiB after\n", rssBefore>>10, rssAfter>>10)
}

func runSoak(t *testing.T, d time.Duration, fig *soakFigures) {
	const subscribers, proxies, rate = 2000, 20, 20
	ns := natstest.Start(t, natstest.Options{JetStream: true})
	b := natsbroker.New(natsbroker.Options{URL: ns.ClientURL(), JetStream: true, MemoryStorage: true,
		History: 100_000, Logger: quiet})
	reg := tether.NewRegistry()
	opts := connOptions(reg)
	opts.PingInterval, opts.PingTimeout, opts.CloseTimeout = soakInterval, soakTimeout, time.Second
	s := &serve.Server{Options: tether.AcceptOptions{ConnOptions: opts}, Broadcast: hub.Options{Broker: b, Node: "soak"}}
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	defer func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx, tether.StatusGoingAway, "soak over")
	}()
	// One message before anyone subscribes, so that every subscriber is told
	// a position (in "subscribed") to resume after, even if its first
	// connection dies before its first message.
	if _, err := s.Hub().Broadcast("broadcast", tether.Text, []byte("warm-up")); err != nil {
		t.Fatal(err)
	}
	var ps []*proxy
	for range proxies {
		ps = append(ps, newProxy(t, hs.Listener.Addr().String()))
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	subs := make([]*soakSub, subscribers)
	for i := range subs {
		subs[i] = &soakSub{fig: fig, p: ps[i%proxies]}
		wg.Go(func() { subs[i].run(ctx, t) })
	}
	eventually(t, "every subscriber in", func() bool { return s.Hub().Len("broadcast") == subscribers })

	injected := make(chan struct{})
	go func() {
		defer close(injected)
		injectFaults(ctx, t, ps, fig)
	}()
	tick := time.NewTicker(time.Second / rate)
	end := time.After(d)
	var n int64
publish:
	for {
		select {
		case <-tick.C:
			if _, err := s.Hub().Broadcast("broadcast", tether.Text, fmt.Appendf(nil, "%d", n)); err != nil {
				fig.failed.Add(1) // not published: nobody is owed it
				continue
			}
			n++
		case <-end:
			break publish
		}
	}
	tick.Stop()
	stop()
	<-injected
	fig.published.Store(n)
	// Faults over: every subscriber comes back and catches up.
	wg.Wait()
	for _, sub := range subs {
		sub.finish(t, hs.Listener.Addr().String(), n, fig)
	}
}

// injectFaults applies a random fault to a random proxy every 1-3 s, for
// 0.5-4 s, one at a time, until ctx ends.
func injectFaults(ctx context.Context, t *testing.T, ps []*proxy, fig *soakFigures) {
	kinds := []string{"blackhole", "reset", "latency", "bandwidth"}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second + rand.N(2*time.Second)):
		}
		p := ps[rand.N(len(ps))]
		kind := kinds[rand.N(len(kinds))]
		fig.faults[kind]++
		var names []string
		switch kind {
		case "blackhole":
			p.markFault(time.Now())
			p.blackhole("upstream")
			p.blackhole("downstream")
			names = []string{"blackhole-upstream", "blackhole-downstream"}
		case "reset":
			p.add("reset", "reset_peer", "upstream", map[string]any{"timeout": 0})
			names = []string{"reset"}
		case "latency":
			p.add("latency", "latency", "downstream", map[string]any{"latency": 300, "jitter": 100})
			names = []string{"latency"}
		case "bandwidth":
			p.add("bandwidth", "bandwidth", "downstream", map[string]any{"rate": 64})
			names = []string{"bandwidth"}
		}
		hold := 500*time.Millisecond + rand.N(3500*time.Millisecond)
		if kind == "blackhole" { // long enough that every connection through it must be found dead
			hold = soakInterval + soakTimeout + time.Second + rand.N(2*time.Second)
		}
		time.Sleep(hold)
		for _, name := range names {
			p.remove(name)
		}
		p.markFault(time.Time{})
	}
}

// soakSub is one subscriber: it reads envelopes, checks their positions,
// and redials with ?since= when its connection dies.
type soakSub struct {
	fig  *soakFigures
	p    *proxy
	last uint64 // last position read
	seen int64
}

func (s *soakSub) run(ctx context.Context, t *testing.T) {
	for ctx.Err() == nil {
		c, err := s.dial(s.p.addr())
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		s.read(ctx, c)
		c.CloseNow()
	}
}

func (s *soakSub) dial(addr string) (*tether.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	opts := connOptions(tether.NewRegistry())
	opts.PingInterval, opts.PingTimeout, opts.CloseTimeout = soakInterval, soakTimeout, time.Second
	c, _, err := tether.Dial(ctx, fmt.Sprintf("ws://%s/broadcast?since=%d", addr, s.last),
		&tether.DialOptions{Subprotocols: []string{hub.Subprotocol}, ConnOptions: opts})
	if err == nil {
		if s.fig.conns.Add(1) > 1 && s.last > 0 {
			s.fig.reconnects.Add(1)
		}
	}
	return c, err
}

// read reads until the connection ends or ctx does; a death during a
// blackhole on its proxy is timed against the bound.
func (s *soakSub) read(ctx context.Context, c *tether.Conn) {
	stop := context.AfterFunc(ctx, func() { c.CloseNow() })
	defer stop()
	for {
		_, p, err := c.Read(context.Background())
		if err != nil {
			if at := s.p.faultAt(); !at.IsZero() {
				took := time.Since(at)
				s.fig.detections.Add(1)
				if took > soakInterval+soakTimeout+slack {
					s.fig.late.Add(1)
				}
				for {
					w := s.fig.worstDetectNanos.Load()
					if int64(took) <= w || s.fig.worstDetectNanos.CompareAndSwap(w, int64(took)) {
						break
					}
				}
			}
			return
		}
		s.take(p)
	}
}

// take checks one envelope's position: the next one, never one seen.
func (s *soakSub) take(p []byte) {
	e, err := hub.ParseEnvelope(p)
	switch {
	case err != nil:
		s.fig.lost.Add(1)
		return
	case e.Kind == hub.KindSubscribed:
		if s.last == 0 {
			s.last = e.Seq // the warm-up: resume after it
		}
		return
	case e.Kind == hub.KindGap:
		s.fig.gaps.Add(1) // JetStream kept everything: none is due
		return
	}
	switch {
	case e.Seq <= s.last:
		s.fig.duplicates.Add(1)
	case e.Seq != s.last+1:
		s.fig.lost.Add(int64(e.Seq - s.last - 1))
	}
	if e.Seq > s.last {
		s.last = e.Seq
	}
	s.seen++
	s.fig.received.Add(1)
}

// finish catches the subscriber up through the server directly: it must
// end with every published message.
func (s *soakSub) finish(t *testing.T, addr string, published int64, fig *soakFigures) {
	c, err := s.dial(addr)
	if err != nil {
		t.Errorf("final dial: %v", err)
		return
	}
	defer c.CloseNow()
	for s.seen < published {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, p, err := c.Read(ctx)
		cancel()
		if err != nil {
			break
		}
		s.take(p)
	}
	if s.seen < published {
		fig.lost.Add(published - s.seen)
		t.Errorf("a subscriber has %d of %d messages (last position %d)", s.seen, published, s.last)
	}
}

// rssKiB is the process's resident set.
func rssKiB(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kib int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kib)
			return kib
		}
	}
	return 0
}
