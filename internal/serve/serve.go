// Package serve holds the handlers behind `tether serve`: an echo endpoint
// and a broadcast endpoint (a hub room), with the dashboard (page, JSON API,
// metrics) mounted beside them, and the graceful shutdown of all of it.
//
// With a hub.Broker (Server.Broadcast.Broker, see package natsbroker) the
// server is one node of a cluster: a message sent on /broadcast of any node
// reaches the /broadcast connections of every node. A client that offers the
// subprotocol hub.Subprotocol gets every message in a JSON envelope (room,
// position, node) and may resume after a position with ?since=N.
package serve

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"

	"github.com/tetherws/tether"
	"github.com/tetherws/tether/hub"
)

// broadcastRoom is the hub room of the /broadcast endpoint.
const broadcastRoom = "broadcast"

// Server serves the endpoints of Contract 2 (docs/contracts.md). Its connections
// register in Options.Registry; nil gives the server a registry of its own,
// so that Shutdown closes this server's connections and no others.
type Server struct {
	Options tether.AcceptOptions
	// Dashboard, when set, is mounted at /: the page, /api/connections and
	// /metrics (see package dashboard).
	Dashboard http.Handler
	// HandshakeFailed, when set, is called with Accept's error for every
	// failed opening handshake, for the metrics.
	HandshakeFailed func(error)
	// Broadcast configures the hub behind /broadcast: its queue per
	// connection and its slow-consumer policy (default: close with 1013)
	// and, in cluster mode, its Broker and Node. Its Registry defaults to
	// Options.Registry, so that the hub's presence lists every connection
	// of the server, /echo included.
	Broadcast hub.Options

	once    sync.Once
	hub     *hub.Hub
	initErr error

	mu       sync.Mutex
	closing  bool
	code     tether.StatusCode // of the shutdown, for connections accepted during it
	reason   string
	handlers sync.WaitGroup // connections accepted and not yet served to their end
}

// Init prepares the server: its registry and the hub behind /broadcast,
// whose Broker it starts. It returns the broker's error (NATS unreachable,
// no JetStream): a node that cannot join its cluster should not serve.
// Handler and Shutdown call it; call it first in cluster mode to see the
// error. After a failed Init, /broadcast answers 503.
func (s *Server) Init() error {
	s.once.Do(func() {
		if s.Options.Registry == nil {
			s.Options.Registry = tether.NewRegistry()
			s.Options.Registry.Logger = s.Options.Logger
		}
		bo := s.Broadcast
		if bo.Logger == nil {
			bo.Logger = s.Options.Logger
		}
		if bo.Registry == nil && s.Options.Registry != tether.NoRegistry {
			bo.Registry = s.Options.Registry
		}
		s.hub, s.initErr = hub.NewClustered(&bo)
	})
	return s.initErr
}

// Handler returns the routes: /echo, /broadcast and the dashboard.
func (s *Server) Handler() http.Handler {
	s.Init()
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", s.echo)
	mux.HandleFunc("/broadcast", s.broadcast)
	if s.Dashboard != nil {
		mux.Handle("/", s.Dashboard)
	}
	return mux
}

// accept upgrades the request unless the server is shutting down, with the
// server's subprotocols and extra. The caller must call forget with the
// connection when done.
func (s *Server) accept(w http.ResponseWriter, r *http.Request, extra ...string) *tether.Conn {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return nil
	}
	s.handlers.Add(1)
	s.mu.Unlock()
	opts := s.Options
	if len(extra) > 0 {
		opts.Subprotocols = append(slices.Clip(opts.Subprotocols), extra...)
	}
	c, err := tether.Accept(w, r, &opts)
	if err != nil {
		if s.HandshakeFailed != nil {
			s.HandshakeFailed(err)
		}
		s.handlers.Done()
		return nil
	}
	// Shutdown sets closing before it looks at the registry, where c is
	// already listed: either it saw c, or c sees closing here.
	s.mu.Lock()
	closing, code, reason := s.closing, s.code, s.reason
	s.mu.Unlock()
	if closing {
		c.Close(code, reason)
		s.forget(c)
		return nil
	}
	return c
}

func (s *Server) forget(c *tether.Conn) {
	c.CloseNow()
	s.handlers.Done()
}

// serveInBackground serves c with handle on its own reader goroutine (Go)
// and lets the HTTP handler return, so net/http frees the request and its
// buffers: an idle connection holds a few KiB, not the ~29 KiB of a handler
// parked in a Read loop. The connection counts as a handler until it ends.
func (s *Server) serveInBackground(c *tether.Conn, handle func(tether.MessageType, []byte) error) {
	if err := c.Go(handle, func(error) { s.forget(c) }); err != nil {
		s.forget(c)
	}
}

// echo sends every message back unchanged, with its type.
func (s *Server) echo(w http.ResponseWriter, r *http.Request) {
	c := s.accept(w, r)
	if c == nil {
		return
	}
	s.serveInBackground(c, func(typ tether.MessageType, p []byte) error {
		return c.Write(context.Background(), typ, p)
	})
}

// broadcast sends every message to every connection on /broadcast, the
// sender included, through the hub: the message is encoded once, and a
// connection that does not keep up is handled by the hub's policy instead
// of slowing the others. In cluster mode the hub carries it to the
// /broadcast connections of every node.
//
// A client that offers hub.Subprotocol is subscribed: it gets each message
// in an envelope and, with ?since=N, first the messages it missed after
// position N (see hub.Subscribe). The others get the raw messages.
func (s *Server) broadcast(w http.ResponseWriter, r *http.Request) {
	if s.hub == nil {
		http.Error(w, "broadcast unavailable: the cluster broker did not start", http.StatusServiceUnavailable)
		return
	}
	c := s.accept(w, r, hub.Subprotocol)
	if c == nil {
		return
	}
	var err error
	if c.Subprotocol() == hub.Subprotocol {
		err = s.hub.Subscribe(r.Context(), broadcastRoom, c, hub.SinceFromRequest(r))
	} else {
		err = s.hub.Join(broadcastRoom, c)
	}
	if err != nil {
		if errors.Is(err, hub.ErrClosed) {
			c.Close(tether.StatusGoingAway, "server shutting down")
		}
		s.forget(c)
		return
	}
	s.serveInBackground(c, func(typ tether.MessageType, p []byte) error {
		s.hub.Broadcast(broadcastRoom, typ, p) // copies p
		return nil
	})
}

// Hub returns the hub behind /broadcast, for its statistics and its
// presence; nil after a failed Init.
func (s *Server) Hub() *hub.Hub {
	s.Init()
	return s.hub
}

// Shutdown closes every connection of the server with code and reason
// through Registry.Shutdown: all in parallel, waiting for the closing
// handshakes until ctx ends, then dropping the rest. Requests that arrive
// meanwhile are refused (503), and a connection accepted while it runs is
// closed at once. It returns when every connection has been served to its
// end (their handlers return at once: see serveInBackground), and
// Registry.Shutdown's error, if any. Stop the listener first.
func (s *Server) Shutdown(ctx context.Context, code tether.StatusCode, reason string) error {
	s.Init()
	s.mu.Lock()
	s.closing, s.code, s.reason = true, code, reason
	s.mu.Unlock()
	err := s.Options.Registry.Shutdown(ctx, code, reason)
	done := make(chan struct{})
	go func() {
		s.handlers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		// A connection accepted during the shutdown may still be in its
		// closing handshake: drop it.
		s.Options.Registry.Shutdown(ctx, code, reason)
		<-done
	}
	if s.hub != nil {
		s.hub.Close() // and its broker: the other nodes hear this one leave
	}
	return err
}
