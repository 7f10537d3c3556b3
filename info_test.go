package tether

import "testing"

// TestInfoAddresses: ConnInfo names both ends as the socket does, and keeps
// naming them after the connection is closed.
func TestInfoAddresses(t *testing.T) {
	cc, sc := tcpPair(t, ConnOptions{}, nil)
	for _, c := range []*Conn{cc, sc} {
		for range 2 { // the second from the kept text
			info := c.Info()
			if info.Remote != c.RemoteAddr().String() || info.Local != c.LocalAddr().String() {
				t.Fatalf("info names %s -> %s, the socket %s -> %s", info.Local, info.Remote, c.LocalAddr(), c.RemoteAddr())
			}
		}
	}
	if cc.Info().Remote != sc.Info().Local {
		t.Errorf("client's remote %s is not the server's local %s", cc.Info().Remote, sc.Info().Local)
	}
	want := cc.Info().Remote
	cc.CloseNow()
	if got := cc.Info().Remote; got != want {
		t.Errorf("after close, remote %q, want %q", got, want)
	}
}
