// Package serve holds the handlers behind `tether serve`: an echo endpoint
// and a broadcast endpoint, with the dashboard (page, JSON API, metrics)
// mounted beside them. The hub package will take the broadcast role over;
// until then this is the smallest server that shows Tether working.
package serve

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/tetherws/tether"
)

// Server tracks the connections it accepted and serves the endpoints of
// DESIGN.md Contract 2.
type Server struct {
	Options tether.AcceptOptions
	// Dashboard, when set, is mounted at /: the page, /api/connections and
	// /metrics (see package dashboard).
	Dashboard http.Handler
	// HandshakeFailed, when set, is called with Accept's error for every
	// failed opening handshake, for the metrics.
	HandshakeFailed func(error)

	mu    sync.Mutex
	conns map[*tether.Conn]string // conn -> endpoint path
	wg    sync.WaitGroup
}

// Handler returns the routes: /echo, /broadcast and the dashboard.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", s.echo)
	mux.HandleFunc("/broadcast", s.broadcast)
	if s.Dashboard != nil {
		mux.Handle("/", s.Dashboard)
	}
	return mux
}

func (s *Server) accept(w http.ResponseWriter, r *http.Request) *tether.Conn {
	opts := s.Options
	c, err := tether.Accept(w, r, &opts)
	if err != nil {
		if s.HandshakeFailed != nil {
			s.HandshakeFailed(err)
		}
		return nil
	}
	s.mu.Lock()
	if s.conns == nil {
		s.conns = map[*tether.Conn]string{}
	}
	s.conns[c] = r.URL.Path
	s.wg.Add(1)
	s.mu.Unlock()
	return c
}

func (s *Server) forget(c *tether.Conn) {
	c.CloseNow()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// echo sends every message back unchanged, with its type.
func (s *Server) echo(w http.ResponseWriter, r *http.Request) {
	c := s.accept(w, r)
	if c == nil {
		return
	}
	defer s.forget(c)
	ctx := context.Background()
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

// broadcast sends every message to every connection on /broadcast, the
// sender included.
func (s *Server) broadcast(w http.ResponseWriter, r *http.Request) {
	c := s.accept(w, r)
	if c == nil {
		return
	}
	defer s.forget(c)
	ctx := context.Background()
	for {
		typ, p, err := c.Read(ctx)
		if err != nil {
			return
		}
		for _, peer := range s.peers("/broadcast") {
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			peer.Write(wctx, typ, p) // a slow or dead peer fails alone
			cancel()
		}
	}
}

func (s *Server) peers(path string) []*tether.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*tether.Conn
	for c, p := range s.conns {
		if p == path {
			out = append(out, c)
		}
	}
	return out
}

// Shutdown closes every connection with code and reason, in parallel, and
// waits for their handlers to return or ctx to end.
func (s *Server) Shutdown(ctx context.Context, code tether.StatusCode, reason string) {
	s.mu.Lock()
	conns := make([]*tether.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() { c.Close(code, reason) })
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		for _, c := range conns {
			c.CloseNow()
		}
	}
}
