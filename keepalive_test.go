package tether

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tetherws/tether/internal/clock"
	"github.com/tetherws/tether/internal/wire"
)

// kaClient is a client connection with a fake clock and a raw server peer.
func kaClient(t *testing.T, opts ConnOptions) (*Conn, *rawPeer, *clock.Fake) {
	t.Helper()
	fc := clock.NewFake()
	opts.Clock = fc
	c, nc := pipeConn(t, wire.Client, opts)
	return c, newRawPeer(t, nc), fc
}

// expectPing reads the next frame and checks it is a ping.
func expectPing(t *testing.T, p *rawPeer) []byte {
	t.Helper()
	h, payload := p.readFrame()
	if h.Opcode != wire.OpPing {
		t.Fatalf("got %v frame, want PING", h.Opcode)
	}
	return payload
}

func TestKeepaliveFixedCadence(t *testing.T) {
	c, peer, fc := kaClient(t, ConnOptions{PingInterval: 10 * time.Second, PingTimeout: 5 * time.Second})
	fc.Advance(10 * time.Second) // the first ping comes 8-10 s after opening
	payload := expectPing(t, peer)
	first := c.Stats().LastPingAt
	if got := c.Stats().PingsSent; got != 1 {
		t.Fatalf("pings sent = %d, want 1", got)
	}
	// The peer answers 3 s later: the next ping is still due 10 s after the
	// first, not 10 s after the pong.
	fc.Advance(3 * time.Second)
	peer.writeFrame(wire.OpPong, payload)
	eventually(t, "pong", func() bool { return c.Stats().PongsReceived == 1 })
	if rtt, want := c.Latency(), fc.Now().Sub(first); rtt != want {
		t.Fatalf("latency = %v, want %v", rtt, want)
	}
	fc.Advance(first.Add(10*time.Second).Sub(fc.Now()) - time.Millisecond)
	if got := c.Stats().PingsSent; got != 1 {
		t.Fatalf("pings sent before the period = %d, want 1", got)
	}
	fc.Advance(time.Millisecond)
	expectPing(t, peer)
	if got := c.Stats().LastPingAt.Sub(first); got != 10*time.Second {
		t.Fatalf("second ping %v after the first, want 10s", got)
	}
}

func TestKeepaliveTimeoutFails1011(t *testing.T) {
	c, peer, fc := kaClient(t, ConnOptions{PingInterval: 10 * time.Second, PingTimeout: 5 * time.Second})
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.Read(context.Background())
		readErr <- err
	}()
	fc.Advance(10 * time.Second)
	payload := expectPing(t, peer)
	fc.Advance(5 * time.Second)

	h, closePayload := peer.readFrame()
	code, reason, _ := wire.ParseClose(closePayload)
	if h.Opcode != wire.OpClose || code != 1011 || reason != KeepaliveTimeoutReason {
		t.Fatalf("got %v %d %q, want CLOSE 1011 %q", h.Opcode, code, reason, KeepaliveTimeoutReason)
	}
	err := <-readErr
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != StatusInternalError || ce.Reason != KeepaliveTimeoutReason {
		t.Fatalf("Read returned %v, want 1011 %s", err, KeepaliveTimeoutReason)
	}
	if _, err := c.Ping(context.Background()); CloseStatus(err) != StatusInternalError {
		t.Fatalf("Ping after timeout: %v", err)
	}
	if err := c.Write(context.Background(), Text, []byte("x")); CloseStatus(err) != StatusInternalError {
		t.Fatalf("Write after timeout: %v", err)
	}
	if got := c.Stats().PingTimeouts; got != 1 {
		t.Fatalf("timeouts = %d, want 1", got)
	}
	// A pong after the timeout changes nothing.
	peer.nc.Write(wire.AppendHeader(nil, wire.Header{Fin: true, Opcode: wire.OpPong, Length: int64(len(payload))}))
	if got := c.Stats().PongsReceived; got != 0 {
		t.Fatalf("pongs after timeout = %d, want 0", got)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("connection not done after keepalive timeout")
	}
}

func TestKeepalivePongSettlesEarlierPings(t *testing.T) {
	c, peer, fc := kaClient(t, ConnOptions{PingInterval: 10 * time.Second, PingTimeout: -1})
	userPing := make(chan error, 1)
	go func() {
		_, err := c.Ping(context.Background())
		userPing <- err
	}()
	expectPing(t, peer) // the user's ping, unanswered
	fc.Advance(10 * time.Second)
	expectPing(t, peer) // first keepalive ping, unanswered; no timeout
	fc.Advance(10 * time.Second)
	last := expectPing(t, peer)
	peer.writeFrame(wire.OpPong, last)
	if err := <-userPing; err != nil {
		t.Fatalf("user ping not settled by a later pong: %v", err)
	}
	eventually(t, "pings settled", func() bool {
		c.pingMu.Lock()
		defer c.pingMu.Unlock()
		return len(c.pings) == 0
	})
	if st := c.Stats(); st.PingsSent != 3 || st.PongsReceived != 1 || st.PingTimeouts != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestKeepaliveDisabled(t *testing.T) {
	c, _, fc := kaClient(t, ConnOptions{PingInterval: -1})
	fc.Advance(time.Hour)
	if n := c.Stats().PingsSent; n != 0 || fc.Pending() != 0 {
		t.Fatalf("keepalive off: %d pings, %d timers", n, fc.Pending())
	}
	if st := c.Stats(); st.PingInterval != 0 || st.PingTimeout != 0 {
		t.Fatalf("disabled keepalive reports interval %v timeout %v", st.PingInterval, st.PingTimeout)
	}
}

func TestKeepaliveIdleMode(t *testing.T) {
	c, peer, fc := kaClient(t, ConnOptions{PingInterval: 10 * time.Second, PingTimeout: 5 * time.Second, KeepaliveMode: KeepaliveIdle})
	for range 6 { // traffic every 5 s postpones every ping
		fc.Advance(5 * time.Second)
		peer.writeFrame(wire.OpText, []byte("tick"))
		if _, _, err := c.Read(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Stats().PingsSent; n != 0 {
		t.Fatalf("pings while traffic flows = %d, want 0", n)
	}
	fc.Advance(10 * time.Second) // quiet for an interval
	expectPing(t, peer)
}

func TestPingCancelled(t *testing.T) {
	c, peer, _ := kaClient(t, ConnOptions{PingInterval: -1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Ping(ctx)
		done <- err
	}()
	expectPing(t, peer)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Ping = %v, want context.Canceled", err)
	}
	c.pingMu.Lock()
	n := len(c.pings)
	c.pingMu.Unlock()
	if n != 0 {
		t.Fatalf("%d pings still pending after cancel", n)
	}
	if c.Err() != nil {
		t.Fatalf("cancelled ping harmed the connection: %v", c.Err())
	}
}

func TestUnsolicitedPongIgnored(t *testing.T) {
	c, peer, _ := kaClient(t, ConnOptions{PingInterval: -1})
	peer.writeFrame(wire.OpPong, []byte("nobody asked"))
	peer.writeFrame(wire.OpText, []byte("still here"))
	_, p, err := c.Read(context.Background())
	if err != nil || string(p) != "still here" {
		t.Fatalf("Read = %q, %v", p, err)
	}
	if n := c.Stats().PongsReceived; n != 0 {
		t.Fatalf("unsolicited pong counted: %d", n)
	}
}

// TestPongWhileNotReading: the application never calls Read, yet the peer's
// ping is answered (gorilla/websocket#97).
func TestPongWhileNotReading(t *testing.T) {
	c, sc := pair(t, ConnOptions{PingInterval: -1}, ConnOptions{PingInterval: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 5 {
		if err := c.Write(ctx, Text, []byte("unread")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Ping(ctx); err != nil {
		t.Fatalf("ping to a server that is not reading: %v", err)
	}
	_ = sc
}

// TestKeepaliveLatePong: a pong that comes after the interval, before the
// timeout, does not leave the connection without pings until the timeout:
// the next ping goes at the end of the interval the pong came in (fixed
// mode), or an interval after the pong (idle mode).
func TestKeepaliveLatePong(t *testing.T) {
	for _, mode := range []KeepaliveMode{KeepaliveFixed, KeepaliveIdle} {
		t.Run(mode.String(), func(t *testing.T) {
			c, peer, fc := kaClient(t, ConnOptions{PingInterval: 10 * time.Second, PingTimeout: 30 * time.Second, KeepaliveMode: mode})
			fc.Advance(10 * time.Second)
			payload := expectPing(t, peer)
			fc.Advance(13 * time.Second) // past the interval, within the timeout
			peer.writeFrame(wire.OpPong, payload)
			eventually(t, "pong", func() bool { return c.Stats().PongsReceived == 1 })
			// Fixed mode: the first ping went at T=8-10 (spread), the one
			// due an interval later was skipped (one outstanding), so the
			// next goes at T=28-30. Idle mode: an interval after the pong.
			quiet, rest := 5*time.Second-time.Millisecond, 5*time.Second+time.Millisecond
			if mode == KeepaliveIdle {
				quiet, rest = 10*time.Second-time.Millisecond, time.Millisecond
			}
			fc.Advance(quiet)
			if n := c.Stats().PingsSent; n != 1 {
				t.Fatalf("pings sent before the next is due = %d, want 1", n)
			}
			fc.Advance(rest)
			expectPing(t, peer)
			if n := c.Stats().PingsSent; n != 2 {
				t.Fatalf("pings sent = %d, want 2", n)
			}
		})
	}
}
