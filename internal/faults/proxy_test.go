package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

var proxySerial atomic.Int64

// proxy is one Toxiproxy proxy in front of an upstream address.
type proxy struct {
	t *testing.T
	p *toxiproxy.Proxy
	// fault is when a fault that kills connections began (unix nanos), 0
	// when none is on: the soak times detections against it.
	fault atomic.Int64
}

func (p *proxy) markFault(at time.Time) {
	if at.IsZero() {
		p.fault.Store(0)
	} else {
		p.fault.Store(at.UnixNano())
	}
}

func (p *proxy) faultAt() time.Time {
	if n := p.fault.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// newProxy starts a proxy on a free loopback port in front of upstream and
// stops it, closing its connections, when the test ends.
func newProxy(t *testing.T, upstream string) *proxy {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, fmt.Sprintf("p%d", proxySerial.Add(1)), "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return &proxy{t: t, p: p}
}

// addr is where clients connect.
func (p *proxy) addr() string { return p.p.Listen }

// add adds a toxic on stream ("upstream": client to server, "downstream":
// server to client) with its attributes.
func (p *proxy) add(name, typ, stream string, attrs map[string]any) {
	p.t.Helper()
	b, _ := json.Marshal(map[string]any{"name": name, "type": typ, "stream": stream, "attributes": attrs})
	if _, err := p.p.Toxics.AddToxicJson(strings.NewReader(string(b))); err != nil {
		p.t.Fatalf("toxic %s: %v", name, err)
	}
}

// remove takes a toxic away.
func (p *proxy) remove(name string) {
	p.t.Helper()
	if err := p.p.Toxics.RemoveToxic(context.Background(), name); err != nil {
		p.t.Fatalf("remove toxic %s: %v", name, err)
	}
}

// blackhole drops everything on stream, holding the connection open.
func (p *proxy) blackhole(stream string) {
	p.add("blackhole-"+stream, "timeout", stream, map[string]any{"timeout": 0})
}

// baseline is what the process holds before a case: goroutines and open
// descriptors.
type baseline struct {
	goroutines, fds int
}

func takeBaseline(t *testing.T) baseline {
	t.Helper()
	return baseline{countGoroutines(), openFDs(t)}
}

// countGoroutines counts the goroutines but Toxiproxy's (see
// toxiproxyLeaks).
func countGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if g != "" && !strings.Contains(g, "Shopify/toxiproxy") {
			count++
		}
	}
	return count
}

// openFDs counts this process's open descriptors (Linux).
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// back waits until goroutines and descriptors are back to b (give or
// take a few for the runtime and the test's own), failing after 10 s.
func (b baseline) back(t *testing.T) {
	t.Helper()
	const slack = 2
	deadline := time.Now().Add(10 * time.Second)
	for {
		g, f := countGoroutines(), openFDs(t)
		if g <= b.goroutines+slack && f <= b.fds+slack {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not back to baseline: %d goroutines (was %d), %d descriptors (was %d)", g, b.goroutines, f, b.fds)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
