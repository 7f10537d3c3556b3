package faults

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tetherws/tether"
)

// The keepalive every case runs with: a dead peer must be detected within
// interval + timeout of the fault (docs/keepalive.md), checked with slack
// for a loaded two-core machine running the race detector.
const (
	pingInterval = 250 * time.Millisecond
	pingTimeout  = 500 * time.Millisecond
	closeTimeout = 500 * time.Millisecond
	detectBound  = pingInterval + pingTimeout
	slack        = 750 * time.Millisecond
)

var quiet = slog.New(slog.DiscardHandler)

// end is how and when one side of a connection ended.
type end struct {
	err error
	at  time.Time
}

// env is a Tether echo server and a Tether client connected to it through
// a proxy; each side's end is reported on its channel.
type env struct {
	t         *testing.T
	srvReg    *tether.Registry
	cliReg    *tether.Registry
	proxy     *proxy
	client    *tether.Conn
	server    *tether.Conn
	serverEnd chan end
	clientEnd chan end
}

func connOptions(reg *tether.Registry) tether.ConnOptions {
	reg.Logger = quiet
	return tether.ConnOptions{Registry: reg, PingInterval: pingInterval, PingTimeout: pingTimeout,
		CloseTimeout: closeTimeout, Logger: quiet}
}

// newEnv starts the server, the proxy and the client, and waits until both
// ends are open.
func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvKeepalive(t, pingInterval, pingTimeout)
}

// newEnvKeepalive is newEnv with another ping timeout and interval.
func newEnvKeepalive(t *testing.T, interval, timeout time.Duration) *env {
	t.Helper()
	e := &env{t: t, srvReg: tether.NewRegistry(), cliReg: tether.NewRegistry(),
		serverEnd: make(chan end, 1), clientEnd: make(chan end, 1)}
	accepted := make(chan *tether.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		opts := connOptions(e.srvReg)
		opts.PingInterval, opts.PingTimeout = interval, timeout
		c, err := tether.Accept(w, r, &tether.AcceptOptions{ConnOptions: opts})
		if err != nil {
			return
		}
		defer c.CloseNow()
		accepted <- c
		e.serverEnd <- end{echo(c), time.Now()}
	}))
	t.Cleanup(srv.Close)
	e.proxy = newProxy(t, srv.Listener.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := connOptions(e.cliReg)
	opts.PingInterval, opts.PingTimeout = interval, timeout
	c, _, err := tether.Dial(ctx, "ws://"+e.proxy.addr()+"/", &tether.DialOptions{ConnOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	e.client = c
	select {
	case e.server = <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("server never accepted")
	}
	return e
}

// echo sends every message back until the connection ends.
func echo(c *tether.Conn) error {
	ctx := context.Background()
	for {
		typ, p, err := c.Read(ctx)
		if err != nil {
			return err
		}
		if err := c.Write(ctx, typ, p); err != nil {
			return err
		}
	}
}

// readClient reads the client's messages in the background, sending each
// on the returned channel, and its end on e.clientEnd.
func (e *env) readClient() <-chan []byte {
	msgs := make(chan []byte, 1024)
	go func() {
		for {
			_, p, err := e.client.Read(context.Background())
			if err != nil {
				e.clientEnd <- end{err, time.Now()}
				close(msgs)
				return
			}
			msgs <- p
		}
	}()
	return msgs
}

// waitEnd waits for one side's end, at most within d after since.
func (e *env) waitEnd(side string, ch <-chan end, since time.Time, d time.Duration) end {
	e.t.Helper()
	select {
	case en := <-ch:
		took := en.at.Sub(since)
		if took > d {
			e.t.Errorf("%s: ended %v after the fault, bound %v", side, took.Round(time.Millisecond), d)
		}
		e.t.Logf("%s ended %v after the fault: %v", side, took.Round(time.Millisecond), en.err)
		return en
	case <-time.After(time.Until(since.Add(d + 5*time.Second))):
		e.t.Fatalf("%s still open %v after the fault (bound %v)", side, time.Since(since).Round(time.Millisecond), d)
	}
	return end{}
}

// checkClose checks that err is a *CloseError with code, from initiator
// ("" for either).
func checkClose(t *testing.T, side string, err error, code tether.StatusCode, initiator string) *tether.CloseError {
	t.Helper()
	var ce *tether.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("%s: %v, not a *CloseError", side, err)
	}
	if ce.Code != code || (initiator != "" && ce.Initiator != initiator) {
		t.Errorf("%s: %d %q initiated by %s, want %d by %s", side, ce.Code, ce.Reason, ce.Initiator, code, or(initiator, "either"))
	}
	return ce
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// registriesEmpty waits until neither side lists a connection.
func (e *env) registriesEmpty() {
	e.t.Helper()
	eventually(e.t, "registries empty", func() bool { return e.srvReg.Len() == 0 && e.cliReg.Len() == 0 })
}

// roundTrip writes p from the client and checks the echo is identical.
func (e *env) roundTrip(msgs <-chan []byte, p []byte, within time.Duration) {
	e.t.Helper()
	if err := e.client.Write(context.Background(), tether.Binary, p); err != nil {
		e.t.Fatalf("write %d bytes: %v", len(p), err)
	}
	select {
	case got, ok := <-msgs:
		if !ok {
			en := <-e.clientEnd
			e.t.Fatalf("connection ended before the echo of %d bytes: %v", len(p), en.err)
		}
		if string(got) != string(p) {
			e.t.Fatalf("echo of %d bytes differs (%d bytes back)", len(p), len(got))
		}
	case <-time.After(within):
		e.t.Fatalf("no echo of %d bytes within %v", len(p), within)
	}
}

// eventually polls cond until it holds, failing after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fault runs one case in a subtest and then checks that goroutines and
// descriptors are back to what they were before it.
func fault(t *testing.T, name string, f func(t *testing.T)) {
	t.Helper()
	base := takeBaseline(t)
	if !t.Run(name, f) {
		return
	}
	base.back(t)
}
