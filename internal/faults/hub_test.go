package faults

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherws/tether"
	"github.com/tetherws/tether/hub"
)

// hubEnv is a hub behind a Tether server; members join room "r" directly
// or through a proxy of their own.
type hubEnv struct {
	t    *testing.T
	hub  *hub.Hub
	reg  *tether.Registry
	addr string
	ends chan end // server-side ends of members
	// keepalive of both ends
	interval, timeout time.Duration
}

func newHubEnv(t *testing.T, opts hub.Options, interval, timeout time.Duration) *hubEnv {
	t.Helper()
	opts.Logger = quiet
	e := &hubEnv{t: t, hub: hub.New(&opts), reg: tether.NewRegistry(), ends: make(chan end, 16),
		interval: interval, timeout: timeout}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := tether.Accept(w, r, &tether.AcceptOptions{ConnOptions: e.options(e.reg)})
		if err != nil {
			return
		}
		defer c.CloseNow()
		if err := e.hub.Join("r", c); err != nil {
			return
		}
		var rerr error
		for rerr == nil {
			_, _, rerr = c.Read(context.Background())
		}
		e.ends <- end{rerr, time.Now()}
	}))
	e.addr = srv.Listener.Addr().String()
	t.Cleanup(func() {
		srv.Close()
		e.hub.Close()
	})
	return e
}

func (e *hubEnv) options(reg *tether.Registry) tether.ConnOptions {
	o := connOptions(reg)
	o.PingInterval, o.PingTimeout = e.interval, e.timeout
	return o
}

// member dials the hub at addr (the server's, or a proxy's) with a small
// receive buffer, and counts what it reads in order.
func (e *hubEnv) member(addr string, read bool) (*tether.Conn, *atomic.Int64) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := tether.Dial(ctx, "ws://"+addr+"/", &tether.DialOptions{ConnOptions: e.options(tether.NewRegistry())})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.CloseNow() })
	got := new(atomic.Int64)
	if !read {
		return c, got
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, p, err := c.Read(context.Background())
			if err != nil {
				return
			}
			if want := fmt.Sprint(got.Load()); !strings.HasPrefix(string(p), want+" ") {
				e.t.Errorf("message %d reads %.10q", got.Load(), p)
			}
			got.Add(1)
		}
	}()
	e.t.Cleanup(func() {
		c.CloseNow()
		<-done
	})
	return c, got
}

// TestHubSlowAndStalledConsumers: one member reads at full speed, another
// through a throttled link (slow), or stops reading (stalled): the hub
// closes the laggard with 1013 "slow consumer" from the server's side. A
// member whose link drops everything is failed by keepalive (1011). The
// fast member gets every message, in order, throughout.
func TestHubSlowAndStalledConsumers(t *testing.T) {
	// With the usual keepalive (20 s + 20 s) the queue fills first and the
	// policy acts; with a short one a laggard's pings wait behind its
	// messages and keepalive may fail it before: 1011, also a bounded end.
	const long = 20 * time.Second
	for _, tc := range []struct {
		name              string
		reads             bool
		toxic             func(p *proxy)
		interval, timeout time.Duration
		code              tether.StatusCode
	}{
		{"slow", true, func(p *proxy) { p.add("bw", "bandwidth", "downstream", map[string]any{"rate": 32}) },
			long, long, tether.StatusTryAgainLater},
		// The application stops reading: Tether reads ahead 1 MiB, then the
		// socket fills, and its own keepalive is suspended (stall.go).
		{"stalled", false, func(*proxy) {}, long, long, tether.StatusTryAgainLater},
		// Its link drops everything (the proxy still reads): no back
		// pressure, the hub sees nothing; keepalive fails it.
		{"blackholed", true, func(p *proxy) { p.blackhole("downstream") },
			pingInterval, pingTimeout, tether.StatusInternalError},
	} {
		fault(t, tc.name, func(t *testing.T) {
			e := newHubEnv(t, hub.Options{Queue: 16, WriteTimeout: 5 * time.Second}, tc.interval, tc.timeout)
			start := time.Now()
			fast, fastGot := e.member(e.addr, true)
			p := newProxy(t, e.addr)
			lag, _ := e.member(p.addr(), tc.reads)
			eventually(t, "both joined", func() bool { return e.hub.Len("r") == 2 })
			tc.toxic(p)
			// Paced by the fast member (at most 8 ahead of it), so that it
			// never lags itself, until the laggard is closed; incompressible
			// 16 KiB messages fill its socket buffers and the proxy's.
			pad := make([]byte, 16<<10)
			rand.Read(pad)
			total := int64(0)
			for e.hub.Len("r") == 2 {
				if total > 10_000 {
					t.Fatalf("the %s member was never closed; stats %+v", tc.name, e.hub.Stats())
				}
				msg := append(fmt.Appendf(nil, "%d ", total), pad...)
				if _, err := e.hub.Broadcast("r", tether.Binary, msg); err != nil {
					t.Fatal(err)
				}
				total++
				eventually(t, "the fast member to keep up", func() bool { return fastGot.Load() >= total-8 })
			}
			var sv end
			select {
			case sv = <-e.ends:
			case <-time.After(10 * time.Second):
				t.Fatalf("the %s member was never closed; stats %+v", tc.name, e.hub.Stats())
			}
			var ce *tether.CloseError
			// Blackholed, the member's own keepalive times out at about
			// the same moment as the server's, and the proxy may pass its
			// close on as a reset first: 1006 then, within the same bound
			// (as in TestBlackhole).
			passedOn := tc.code == tether.StatusInternalError && errors.As(sv.err, &ce) && ce.Code == tether.StatusAbnormal
			if !passedOn && (!errors.As(sv.err, &ce) || ce.Code != tc.code) {
				t.Errorf("%s member ended with %v, want %d", tc.name, sv.err, tc.code)
			} else if tc.code == tether.StatusTryAgainLater && ce.Initiator != "local" {
				t.Errorf("%s member: 1013 initiated by %s, want the server", tc.name, ce.Initiator)
			}
			if tc.code == tether.StatusInternalError && sv.at.Sub(start) > detectBound+slack+time.Second {
				t.Errorf("blackholed member failed after %v, bound %v", sv.at.Sub(start), detectBound)
			}
			t.Logf("%s member closed after %d messages (%v)", tc.name, total, sv.at.Sub(start).Round(time.Millisecond))
			eventually(t, "the fast member to read everything", func() bool { return fastGot.Load() == total })
			lag.CloseNow()
			fast.Close(tether.StatusNormal, "")
			eventually(t, "hub empty", func() bool { return e.hub.Len("r") == 0 })
			eventually(t, "registry empty", func() bool { return e.reg.Len() == 0 })
		})
	}
}
