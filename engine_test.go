package tether

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherws/tether/internal/poll"
)

// engineServer serves /: Accept with opts, then an echo with Go; each
// accepted connection is sent on the returned channel.
func engineServer(opts *AcceptOptions) (http.Handler, chan *Conn) {
	accepted := make(chan *Conn, 16)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, opts)
		if err != nil {
			return
		}
		accepted <- c
		c.Go(func(typ MessageType, p []byte) error {
			return c.Write(context.Background(), typ, p)
		}, nil)
	}), accepted
}

func echoOnce(t *testing.T, c *Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, Text, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	_, p, err := c.Read(ctx)
	if err != nil || string(p) != msg {
		t.Fatalf("echo %q, %v; want %q", p, err, msg)
	}
}

// TestEngineChoice: which connections the event engine takes. Plain TCP
// goes to it unless the options or TETHER_ENGINE say otherwise; TLS and
// connections with a Relay keep a reader goroutine; both kinds echo alike.
func TestEngineChoice(t *testing.T) {
	if !poll.Supported() {
		t.Skip("no event engine on this system")
	}
	forced := envEngine()
	cases := []struct {
		name     string
		opts     ConnOptions
		tls      bool
		wantLoop bool
	}{
		{"tcp default", ConnOptions{}, false, forced != EngineGoroutine},
		{"tcp EnginePoll", ConnOptions{Engine: EnginePoll}, false, forced != EngineGoroutine},
		{"tcp EngineGoroutine", ConnOptions{Engine: EngineGoroutine}, false, forced == EnginePoll},
		{"tcp with Relay", ConnOptions{Relay: func(ControlOp, []byte) {}}, false, false},
		{"tls", ConnOptions{Engine: EnginePoll}, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			opts.Registry = NoRegistry
			h, accepted := engineServer(&AcceptOptions{ConnOptions: opts})
			var srv *httptest.Server
			dopts := &DialOptions{ConnOptions: ConnOptions{Registry: NoRegistry, Engine: opts.Engine}}
			if tc.tls {
				srv = httptest.NewTLSServer(h)
				dopts.TLSConfig = &tls.Config{InsecureSkipVerify: true}
			} else {
				srv = httptest.NewServer(h)
			}
			defer srv.Close()
			url := "ws" + strings.TrimPrefix(srv.URL, "http")
			c, _, err := Dial(context.Background(), url, dopts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			s := <-accepted
			if got := s.loop() != nil; got != tc.wantLoop {
				t.Errorf("server connection on the event engine: %v, want %v (TETHER_ENGINE=%v)", got, tc.wantLoop, forced)
			}
			if tc.opts.Relay == nil {
				if got := c.loop() != nil; got != tc.wantLoop {
					t.Errorf("client connection on the event engine: %v, want %v", got, tc.wantLoop)
				}
			}
			echoOnce(t, c, "hello "+tc.name)
			if s.RemoteAddr() == nil || s.LocalAddr() == nil || s.RemoteAddr().String() != c.LocalAddr().String() {
				t.Errorf("addresses: server remote %v local %v, client local %v", s.RemoteAddr(), s.LocalAddr(), c.LocalAddr())
			}
			if err := c.Close(StatusNormal, "bye"); err != nil {
				t.Fatalf("close: %v", err)
			}
		})
	}
}

// TestEngineUnixSocket: a WebSocket over a Unix socket runs on the event
// engine too, with the socket's own addresses.
func TestEngineUnixSocket(t *testing.T) {
	if !poll.Supported() || envEngine() == EngineGoroutine {
		t.Skip("the event engine is not in use")
	}
	path := filepath.Join(t.TempDir(), "ws.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	h, accepted := engineServer(&AcceptOptions{ConnOptions: ConnOptions{Registry: NoRegistry}})
	hs := &http.Server{Handler: h}
	go hs.Serve(ln)
	defer hs.Close()
	c, _, err := Dial(context.Background(), "ws://unix/", &DialOptions{
		ConnOptions: ConnOptions{Registry: NoRegistry},
		NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	s := <-accepted
	if s.loop() == nil || c.loop() == nil {
		t.Fatalf("on the event engine: server %v, client %v", s.loop() != nil, c.loop() != nil)
	}
	echoOnce(t, c, "over a unix socket")
	if a := s.LocalAddr(); a == nil || a.Network() != "unix" || a.String() != path {
		t.Errorf("server local address %v, want %s", a, path)
	}
	if err := c.Close(StatusNormal, ""); err != nil {
		t.Fatal(err)
	}
}

// TestEngineStopsWhenIdle: the engine runs while it holds connections and
// stops, with its loops, after the last one ends.
func TestEngineStopsWhenIdle(t *testing.T) {
	if !poll.Supported() || envEngine() == EngineGoroutine {
		t.Skip("the event engine is not in use")
	}
	h, accepted := engineServer(&AcceptOptions{ConnOptions: ConnOptions{Registry: NoRegistry}})
	srv := httptest.NewServer(h)
	defer srv.Close()
	c, _, err := Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), &DialOptions{ConnOptions: ConnOptions{Registry: NoRegistry}})
	if err != nil {
		t.Fatal(err)
	}
	<-accepted
	if st := ReadEngineStats(); !st.Running || st.Conns < 2 {
		t.Fatalf("engine %+v with two connections open", st)
	}
	if err := c.Close(StatusNormal, ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the engine to stop", func() bool {
		st := ReadEngineStats()
		return !st.Running && st.Conns == 0
	})
}
