// Package serve holds the handlers behind `tether serve`: an echo endpoint, a
// broadcast endpoint, and a list of the server's live connections for the
// JSON API. The hub and dashboard packages will take these roles over; until
// then this is the smallest server that shows Tether working.
package serve

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/tetherws/tether"
)

// Server tracks the connections it accepted and serves the endpoints of
// DESIGN.md Contract 2.
type Server struct {
	Options tether.AcceptOptions

	mu    sync.Mutex
	conns map[*tether.Conn]string // conn -> endpoint path
	wg    sync.WaitGroup
}

// Handler returns the routes: /echo, /broadcast, /api/connections and /.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", s.echo)
	mux.HandleFunc("/broadcast", s.broadcast)
	mux.HandleFunc("GET /api/connections", s.apiConnections)
	mux.HandleFunc("GET /{$}", s.index)
	return mux
}

func (s *Server) accept(w http.ResponseWriter, r *http.Request) *tether.Conn {
	opts := s.Options
	c, err := tether.Accept(w, r, &opts)
	if err != nil {
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

func (s *Server) apiConnections(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	list := make([]tether.ConnInfo, 0, len(s.conns))
	for c := range s.conns {
		list = append(list, c.Info())
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(list)
}
