package faults

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/tetherws/tether"
)

// TestBlackhole: traffic dropped in one direction or both, the connection
// held open (a cable cut, a dead NAT entry). The side that stops hearing
// pongs fails the connection with 1011 within ping interval + ping
// timeout; the other side too, by its own keepalive, by the 1011 close
// frame when that can still reach it, or (1006) by the proxy passing on
// the close of the first side's socket, which a real blackhole would not.
func TestBlackhole(t *testing.T) {
	for _, tc := range []struct{ streams []string }{
		{[]string{"downstream"}}, // server to client lost
		{[]string{"upstream"}},   // client to server lost
		{[]string{"upstream", "downstream"}},
	} {
		name := "both"
		if len(tc.streams) == 1 {
			name = tc.streams[0]
		}
		fault(t, name, func(t *testing.T) {
			e := newEnv(t)
			msgs := e.readClient()
			e.roundTrip(msgs, []byte("before"), 5*time.Second)
			at := time.Now()
			for _, s := range tc.streams {
				e.proxy.blackhole(s)
			}
			sv := e.waitEnd("server", e.serverEnd, at, detectBound+slack)
			cl := e.waitEnd("client", e.clientEnd, at, detectBound+slack)
			checkDetected(t, sv.err, cl.err)
			e.registriesEmpty()
		})
	}
}

// TestHalfOpen: the peer's process hangs, its kernel still acknowledging
// (the half-open connection TCP alone never notices): the connection is
// failed with 1011 within interval + timeout, in both roles.
func TestHalfOpen(t *testing.T) {
	fault(t, "server", func(t *testing.T) {
		hung := newHungClient(t)
		at := hung.opened
		en := hung.waitServerEnd(detectBound + slack)
		checkClose(t, "server", en.err, tether.StatusInternalError, "local")
		if d := en.at.Sub(at); d > detectBound+slack {
			t.Errorf("detected after %v, bound %v", d, detectBound)
		} else {
			t.Logf("detected after %v", d.Round(time.Millisecond))
		}
	})
	fault(t, "client", func(t *testing.T) {
		c, opened := dialHungServer(t)
		_, _, err := c.Read(context.Background())
		checkClose(t, "client", err, tether.StatusInternalError, "local")
		if d := time.Since(opened); d > detectBound+slack {
			t.Errorf("detected after %v, bound %v", d, detectBound)
		} else {
			t.Logf("detected after %v", d.Round(time.Millisecond))
		}
	})
}

// TestLatency: latency under the ping timeout (round trip 200 ms, timeout
// 500 ms) costs nothing: the connection stays open through several
// keepalive periods and echoes. Latency over it (round trip 1.4 s) is a
// dead peer for keepalive: 1011 within interval + timeout.
func TestLatency(t *testing.T) {
	fault(t, "below-timeout", func(t *testing.T) {
		e := newEnv(t)
		msgs := e.readClient()
		e.proxy.add("lat-up", "latency", "upstream", map[string]any{"latency": 100})
		e.proxy.add("lat-down", "latency", "downstream", map[string]any{"latency": 100})
		stop := time.Now().Add(8 * pingInterval)
		for time.Now().Before(stop) {
			e.roundTrip(msgs, []byte("still here"), 2*time.Second)
			time.Sleep(pingInterval / 2)
		}
		if st := e.client.Stats(); st.PingTimeouts != 0 || st.PongsReceived == 0 {
			t.Errorf("client keepalive: %d timeouts, %d pongs", st.PingTimeouts, st.PongsReceived)
		}
		e.proxy.remove("lat-up")
		e.proxy.remove("lat-down")
		e.roundTrip(msgs, []byte("after"), 2*time.Second)
		e.client.Close(tether.StatusNormal, "")
		e.registriesEmpty()
	})
	fault(t, "above-timeout", func(t *testing.T) {
		e := newEnv(t)
		e.readClient()
		at := time.Now()
		e.proxy.add("lat-up", "latency", "upstream", map[string]any{"latency": 700})
		e.proxy.add("lat-down", "latency", "downstream", map[string]any{"latency": 700})
		sv := e.waitEnd("server", e.serverEnd, at, detectBound+slack)
		cl := e.waitEnd("client", e.clientEnd, at, detectBound+slack)
		checkDetected(t, sv.err, cl.err)
		e.registriesEmpty()
	})
}

// TestBandwidth: a link throttled to 256 KB/s each way carries 16 KiB
// messages (about 60 ms each, well under the ping timeout even on a loaded
// machine) intact, pings and pongs queued behind them, with no keepalive
// timeout.
func TestBandwidth(t *testing.T) {
	fault(t, "256KBps", func(t *testing.T) {
		e := newEnv(t)
		msgs := e.readClient()
		e.proxy.add("bw-up", "bandwidth", "upstream", map[string]any{"rate": 256})
		e.proxy.add("bw-down", "bandwidth", "downstream", map[string]any{"rate": 256})
		p := make([]byte, 16<<10)
		for range 24 {
			rand.Read(p)
			e.roundTrip(msgs, p, 5*time.Second)
		}
		if st := e.client.Stats(); st.PingTimeouts != 0 {
			t.Errorf("client: %d ping timeouts", st.PingTimeouts)
		}
		if st := e.server.Stats(); st.PingTimeouts != 0 {
			t.Errorf("server: %d ping timeouts", st.PingTimeouts)
		}
		e.client.Close(tether.StatusNormal, "")
		e.registriesEmpty()
	})
}

// TestSlicing: the proxy forwards one byte per write, both ways: frames
// and handshakes split at every byte still echo byte-identical. The link
// is then slow (about 100 KB/s here), and a ping waits behind a 100 KB
// message for longer than the usual ping timeout: keepalive counts pongs
// only, so this case gives it 10 s (docs/reliability.md).
func TestSlicing(t *testing.T) {
	fault(t, "1-byte", func(t *testing.T) {
		e := newEnvKeepalive(t, pingInterval, 10*time.Second)
		msgs := e.readClient()
		e.proxy.add("slice-up", "slicer", "upstream", map[string]any{"average_size": 1, "size_variation": 0, "delay": 0})
		e.proxy.add("slice-down", "slicer", "downstream", map[string]any{"average_size": 1, "size_variation": 0, "delay": 0})
		for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 100_000} {
			p := make([]byte, n)
			rand.Read(p)
			e.roundTrip(msgs, p, 10*time.Second)
		}
		e.client.Close(tether.StatusNormal, "")
		e.registriesEmpty()
	})
}

// TestResetMidFrame: the connection is reset (RST) while a 1 MiB message
// crawls through a throttled link, again and again: both ends end with
// 1006 at once, and nothing is left behind.
func TestResetMidFrame(t *testing.T) {
	n := 20
	if soak() {
		n = 200
	}
	fault(t, "reset", func(t *testing.T) {
		for i := range n {
			resetOnce(t, i)
		}
	})
}

func resetOnce(t *testing.T, i int) {
	e := newEnv(t)
	e.readClient()
	e.proxy.add("bw", "bandwidth", "upstream", map[string]any{"rate": 1024})
	p := make([]byte, 1<<20)
	wrote := make(chan error, 1)
	go func() { wrote <- e.client.Write(context.Background(), tether.Binary, p) }()
	time.Sleep(time.Duration(50+i%5*30) * time.Millisecond) // somewhere in the frame
	at := time.Now()
	e.proxy.add("reset", "reset_peer", "upstream", map[string]any{"timeout": 0})
	sv := e.waitEnd("server", e.serverEnd, at, time.Second)
	cl := e.waitEnd("client", e.clientEnd, at, time.Second)
	checkClose(t, "server", sv.err, tether.StatusAbnormal, "")
	checkClose(t, "client", cl.err, tether.StatusAbnormal, "")
	<-wrote // it may have gone whole into the socket buffers before the reset
	e.registriesEmpty()
	e.proxy.p.Stop()
}

// TestCloseNeverAnswered: the peer reads the close frame but never answers
// it. Close gives up after CloseTimeout with an error, and the connection
// is gone from the registry, in both roles.
func TestCloseNeverAnswered(t *testing.T) {
	fault(t, "server", func(t *testing.T) {
		closed := make(chan error, 1)
		var took time.Duration
		srv := newServer(t, func(c *tether.Conn) error {
			start := time.Now()
			err := c.Close(tether.StatusNormal, "bye")
			took = time.Since(start)
			closed <- err
			return err
		})
		nc, _ := rawHandshake(t, srv.addr)
		go io.Copy(io.Discard, nc) // reads, never answers
		select {
		case err := <-closed:
			if err == nil {
				t.Error("Close reported an answered handshake")
			}
		case <-time.After(closeTimeout + 5*time.Second):
			t.Fatal("Close never returned")
		}
		if took < closeTimeout || took > closeTimeout+slack {
			t.Errorf("Close took %v, want about CloseTimeout (%v)", took, closeTimeout)
		}
		t.Logf("Close gave up after %v", took.Round(time.Millisecond))
		eventually(t, "registry empty", func() bool { return srv.reg.Len() == 0 })
		nc.Close()
	})
	fault(t, "client", func(t *testing.T) {
		c, _ := dialHungServer(t)
		start := time.Now()
		if err := c.Close(tether.StatusNormal, "bye"); err == nil {
			t.Error("Close reported an answered handshake")
		}
		if took := time.Since(start); took < closeTimeout || took > closeTimeout+slack {
			t.Errorf("Close took %v, want about CloseTimeout (%v)", took, closeTimeout)
		}
	})
}

// checkDetected checks the ends of a connection whose peer became
// unreachable: at least one side failed it with 1011 by its own keepalive,
// and the other ended with 1011 too, or 1006 when the proxy passed on the
// first side's close.
func checkDetected(t *testing.T, server, client error) {
	t.Helper()
	var sv, cl *tether.CloseError
	if !errors.As(server, &sv) || !errors.As(client, &cl) {
		t.Fatalf("ends %v / %v, not *CloseError", server, client)
	}
	detected := func(ce *tether.CloseError) bool {
		return ce.Code == tether.StatusInternalError && ce.Initiator == "local"
	}
	if !detected(sv) && !detected(cl) {
		t.Errorf("neither side detected the fault: server %v, client %v", sv, cl)
	}
	for _, ce := range []*tether.CloseError{sv, cl} {
		if ce.Code != tether.StatusInternalError && ce.Code != tether.StatusAbnormal {
			t.Errorf("ended with %v, want 1011 or 1006", ce)
		}
	}
}
