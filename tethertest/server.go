package tethertest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherws/tether"
)

// cleanupTimeout bounds how long a Server's cleanup waits for its
// connections' closing handshakes and for its handlers to return.
const cleanupTimeout = 10 * time.Second

// Server is a WebSocket server on a loopback port for the length of a test,
// for code under test that dials a URL. Every request is upgraded with
// tether.Accept and handed to the server's handler.
type Server struct {
	// URL is the server's ws://127.0.0.1:PORT; add any path.
	URL string
	// Registry lists the server's connections: its own, unless the
	// options named one, so a test can count them (Len) and find them.
	Registry *tether.Registry
	// HTTP is the underlying httptest server.
	HTTP *httptest.Server

	handlers sync.WaitGroup // httptest stops tracking a request once it is hijacked
	closed   sync.Once
	tb       testing.TB
}

// NewServer starts a server whose requests are upgraded with opts (nil for
// the defaults) and passed to handle, on the request's goroutine. The
// connection stays open when handle returns, so handle may hand it on (to
// Go, a hub); CloseNow it when done, as in production. At the end of the
// test, Close runs.
func NewServer(tb testing.TB, opts *tether.AcceptOptions, handle func(c *tether.Conn, r *http.Request)) *Server {
	tb.Helper()
	var o tether.AcceptOptions
	if opts != nil {
		o = *opts
	}
	if o.Registry == nil {
		o.Registry = tether.NewRegistry()
	}
	s := &Server{Registry: o.Registry, tb: tb}
	s.HTTP = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.handlers.Add(1) // before the hijack, so that Close's Wait sees it
		defer s.handlers.Done()
		c, err := tether.Accept(w, r, &o)
		if err != nil {
			return // Accept answered the request with the error
		}
		handle(c, r)
	}))
	s.URL = "ws" + strings.TrimPrefix(s.HTTP.URL, "http")
	tb.Cleanup(s.Close)
	return s
}

// Close closes the server's WebSocket connections still open with 1001
// Going Away, waits for their closing handshakes and its handlers (up to
// 10 s each, failing the test past that), then stops the HTTP server.
// NewServer arranges for it to run at the end of the test; calling it
// earlier, to test what a client does when its server goes away, is fine.
func (s *Server) Close() {
	s.closed.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := s.Registry.Shutdown(ctx, tether.StatusGoingAway, "test server closing"); err != nil {
			s.tb.Errorf("tethertest: closing the server's connections: %v", err)
		}
		s.HTTP.Close()
		done := make(chan struct{})
		go func() {
			s.handlers.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			s.tb.Errorf("tethertest: server handlers still running %v after Close", cleanupTimeout)
		}
	})
}

// Dial opens a client connection to path on the server (opts may be nil),
// fails the test if it cannot, and closes it at the end of the test.
func (s *Server) Dial(tb testing.TB, path string, opts *tether.DialOptions) *tether.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	c, _, err := tether.Dial(ctx, s.URL+path, opts)
	if err != nil {
		tb.Fatalf("tethertest: %v", err)
	}
	tb.Cleanup(func() { c.CloseNow() })
	return c
}

// Echo is a handler for NewServer that sends every message back, with its
// type, until the connection ends.
func Echo(c *tether.Conn, r *http.Request) {
	defer c.CloseNow()
	ctx := context.Background() // the request's context would do too: Echo returns with it
	for {
		typ, p, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, p); err != nil {
			return
		}
	}
}
