package tethertest_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/tetherws/tether"
	"github.com/tetherws/tether/tethertest"
	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine outlives the tests: pairs and
// servers must leave nothing behind once their test has cleaned up.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestClockOrderAndWait: timers armed from other goroutines are seen by
// WaitTimers, fire in order of their due time inside Advance with Now set
// to that time, and Stop and Reset act as on a *time.Timer.
func TestClockOrderAndWait(t *testing.T) {
	ctx := testContext(t)
	clk := tethertest.NewClock()
	start := clk.Now()
	var fired []time.Duration
	go clk.AfterFunc(3*time.Second, func() { fired = append(fired, clk.Now().Sub(start)) })
	go clk.AfterFunc(1*time.Second, func() { fired = append(fired, clk.Now().Sub(start)) })
	if err := clk.WaitTimers(ctx, 2); err != nil {
		t.Fatal(err)
	}
	stopped := clk.AfterFunc(2*time.Second, func() { t.Error("a stopped timer fired") })
	if !stopped.Stop() {
		t.Error("Stop of a pending timer reported false")
	}
	clk.Advance(2 * time.Second)
	if len(fired) != 1 || fired[0] != time.Second {
		t.Fatalf("after 2 s: fired at %v, want [1s]", fired)
	}
	clk.Advance(time.Second)
	if len(fired) != 2 || fired[1] != 3*time.Second {
		t.Fatalf("after 3 s: fired at %v, want [1s 3s]", fired)
	}
	if clk.Pending() != 0 {
		t.Errorf("%d timers pending after all fired", clk.Pending())
	}
	if got := clk.Now().Sub(start); got != 3*time.Second {
		t.Errorf("Now moved by %v, want 3s", got)
	}
	short, cancel := context.WithCancel(ctx)
	cancel()
	if err := clk.WaitTimers(short, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitTimers with no timer and a cancelled ctx: %v", err)
	}
}

// TestPairKeepaliveOnFakeClock: a pair's connections exchange messages of
// both types, a fragmented one included, and the client's keepalive runs
// on the fake clock only: no ping before the interval, exactly one after,
// answered, with a round trip of zero fake time.
func TestPairKeepaliveOnFakeClock(t *testing.T) {
	ctx := testContext(t)
	clk := tethertest.NewClock()
	c, s := tethertest.Pair(t,
		&tether.DialOptions{ConnOptions: tether.ConnOptions{Clock: clk, PingInterval: 10 * time.Second, PingTimeout: 5 * time.Second, FragmentSize: 1000}},
		&tether.AcceptOptions{ConnOptions: tether.ConnOptions{Clock: clk, PingInterval: -1}})
	if c.Role() != "client" || s.Role() != "server" {
		t.Fatalf("roles %s and %s", c.Role(), s.Role())
	}
	big := bytes.Repeat([]byte("x"), 5000)
	for _, m := range []struct {
		typ tether.MessageType
		p   []byte
	}{{tether.Text, []byte("hello")}, {tether.Binary, []byte{0, 1, 2, 255}}, {tether.Binary, big}} {
		if err := c.Write(ctx, m.typ, m.p); err != nil {
			t.Fatal(err)
		}
		typ, p, err := s.Read(ctx)
		if err != nil || typ != m.typ || !bytes.Equal(p, m.p) {
			t.Fatalf("server read %v %d bytes %v, want %v %d bytes", typ, len(p), err, m.typ, len(m.p))
		}
	}
	clk.Advance(7 * time.Second) // the first ping comes 8-10 s after opening
	if n := c.Stats().PingsSent; n != 0 {
		t.Fatalf("%d pings sent 7 s into a 10 s interval", n)
	}
	clk.Advance(3 * time.Second)
	if n := c.Stats().PingsSent; n != 1 {
		t.Fatalf("%d pings sent after 10 s, want 1", n)
	}
	if _, err := c.Ping(ctx); err != nil { // answered after the keepalive ping's pong
		t.Fatal(err)
	}
	if st := c.Stats(); st.PongsReceived < 1 || st.RTT != 0 {
		t.Fatalf("pongs %d, rtt %v: want the keepalive pong, and no fake time elapsed", st.PongsReceived, st.RTT)
	}
	if s.Stats().Peer.Pings < 1 {
		t.Errorf("the server saw %d pings from its peer", s.Stats().Peer.Pings)
	}
	if err := c.Close(tether.StatusNormal, "bye"); err != nil {
		t.Fatal(err)
	}
	var ce *tether.CloseError
	if _, _, err := s.Read(ctx); !errors.As(err, &ce) || ce.Code != tether.StatusNormal || ce.Reason != "bye" {
		t.Fatalf("server read %v after the client's close, want 1000 bye", err)
	}
}

// TestServerEchoAndClose: a Server echoes with Echo, counts its connections
// in its own registry, and Close ends them with 1001 from the server.
func TestServerEchoAndClose(t *testing.T) {
	ctx := testContext(t)
	srv := tethertest.NewServer(t, nil, tethertest.Echo)
	c := srv.Dial(t, "/echo", nil)
	if err := c.Write(ctx, tether.Text, []byte("ping?")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := c.Read(ctx); err != nil || string(p) != "ping?" {
		t.Fatalf("echo: %q %v", p, err)
	}
	if n := srv.Registry.Len(); n != 1 {
		t.Fatalf("server registry holds %d connections, want 1", n)
	}
	srv.Close()
	var ce *tether.CloseError
	if _, _, err := c.Read(ctx); !errors.As(err, &ce) || ce.Code != tether.StatusGoingAway || ce.Initiator != "peer" {
		t.Fatalf("client read %v after Close, want 1001 from the peer", err)
	}
	if n := srv.Registry.Len(); n != 0 {
		t.Errorf("server registry holds %d connections after Close", n)
	}
	if _, _, err := tether.Dial(ctx, srv.URL, nil); err == nil {
		t.Error("dial after Close succeeded")
	}
}

// TestServerRefusesBadRequest: a request that is not a WebSocket handshake
// gets Accept's answer and never reaches the handler.
func TestServerRefusesBadRequest(t *testing.T) {
	called := false
	srv := tethertest.NewServer(t, nil, func(*tether.Conn, *http.Request) { called = true })
	resp, err := http.Get(srv.HTTP.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("plain GET answered %d", resp.StatusCode)
	}
	srv.Close()
	if called {
		t.Error("the handler ran for a plain GET")
	}
}
