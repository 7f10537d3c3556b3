//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package main

import (
	"net"
	"testing"
)

// TestReusePort: with --reuseport a second listener takes the same port
// (several tether serve processes share it); without, it is refused.
func TestReusePort(t *testing.T) {
	st := serveTLS{reusePort: true}
	a, _, err := st.listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	addr := a.Addr().String()
	b, _, err := st.listen(addr)
	if err != nil {
		t.Fatalf("second listener with --reuseport on %s: %v", addr, err)
	}
	defer b.Close()
	if _, _, err := (serveTLS{}).listen(addr); err == nil {
		t.Fatalf("a listener without --reuseport took %s too", addr)
	}
	// Both accept: the kernel spreads connections among them.
	for _, ln := range []net.Listener{a, b} {
		go func(ln net.Listener) {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}(ln)
	}
	for range 4 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
}
