//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package poll

import (
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/tetherws/tether/internal/clock"
)

// 2,000 idle adopted connections add no goroutine beyond the loops; their
// keepalive-like timers, all due at once, run in one pass per loop; once
// closed they leave no descriptor behind.
func TestIdleConnsNoGoroutines(t *testing.T) {
	const n = 2000
	fds0 := openFDs(t)
	clk := clock.NewFake()
	e := newEngine(t, Options{Clock: clk})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	g0 := runtime.NumGoroutine()

	clients := make([]net.Conn, 0, n)
	conns := make([]*Conn, 0, n)
	rs := make([]*recorder, 0, n)
	for range n {
		cl, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		sv, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		r := newRecorder()
		c, err := e.Adopt(sv, nil, r)
		if err != nil {
			t.Fatal(err)
		}
		clients, conns, rs = append(clients, cl), append(conns, c), append(rs, r)
	}
	// Each connection is alive: a byte from its peer reaches its handler.
	for i, cl := range clients {
		cl.Write([]byte{byte(i)})
	}
	for _, r := range rs {
		r.waitLen(t, 1)
	}
	time.Sleep(50 * time.Millisecond) // let the runtime's own goroutines settle
	g1 := runtime.NumGoroutine()
	t.Logf("goroutines: %d before, %d with %d idle connections on %d loops", g0, g1, n, len(e.loops))
	if g1 > g0 {
		t.Fatalf("%d goroutines with %d connections, %d without", g1, n, g0)
	}
	if got := e.Stats().Conns(); got != n {
		t.Fatalf("Stats counts %d connections", got)
	}

	// Each connection pings its peer when its timer falls due.
	for _, c := range conns {
		c.AfterFunc(20*time.Second, func() { c.Send([]byte("P")) })
	}
	var passes []int
	for _, l := range e.loops {
		passes = append(passes, l.passes)
	}
	clk.Advance(20 * time.Second)
	for i, l := range e.loops {
		if d := l.passes - passes[i]; d != 1 {
			t.Fatalf("loop %d ran its timers in %d passes", i, d)
		}
	}
	for _, cl := range clients {
		if got := readN(t, cl, 1); got[0] != 'P' {
			t.Fatalf("peer got %q", got)
		}
	}
	if g := runtime.NumGoroutine(); g > g0 {
		t.Fatalf("%d goroutines after the pings, %d before", g, g0)
	}

	for i, c := range conns {
		if i%2 == 0 {
			c.CloseNow()
		} else {
			clients[i].Close()
		}
	}
	for _, r := range rs {
		r.waitClosed(t)
	}
	for _, cl := range clients {
		cl.Close()
	}
	ln.Close()
	if got := e.Stats().Conns(); got != 0 {
		t.Fatalf("Stats counts %d connections after closing", got)
	}
	e.Close()
	if fds := openFDs(t); fds != fds0 {
		t.Fatalf("%d descriptors open after, %d before", fds, fds0)
	}
}
