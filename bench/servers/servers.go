// Package servers holds the echo and broadcast servers that the benchmarks
// compare: one per library, each written the way that library's own
// documentation shows, plus a raw TCP server that speaks the same framing
// with nothing else, the limit the others are measured against.
//
// Every server serves /echo (each message comes back, same type) and
// /broadcast (each message goes to every /broadcast connection), with
// keepalive pings from the server every Keepalive when it is set.
package servers

import (
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Options are the settings every server takes.
type Options struct {
	// Keepalive is the server's ping interval; 0 sends no pings.
	Keepalive time.Duration
	// KeepaliveTimeout is how long a ping may wait for its pong, where the
	// library lets us say.
	KeepaliveTimeout time.Duration
	// Compression accepts permessage-deflate when the client offers it.
	Compression bool
	// ReadLimit is the largest message accepted.
	ReadLimit int64
	// Variant picks a variation of a server, for profiling (see Variants).
	Variant string
}

// A Server serves on a listener until it fails.
type Server interface {
	Serve(ln net.Listener) error
}

// Conns counts the WebSocket connections open in this process.
var Conns atomic.Int64

type factory func(Options) (Server, error)

var libs = map[string]factory{}

func register(name string, f factory) { libs[name] = f }

// Libs lists the servers by name.
func Libs() []string {
	var names []string
	for n := range libs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// New returns the server of library lib.
func New(lib string, o Options) (Server, error) {
	f, ok := libs[lib]
	if !ok {
		return nil, fmt.Errorf("unknown library %q (have %v)", lib, Libs())
	}
	if o.ReadLimit <= 0 {
		o.ReadLimit = 64 << 20
	}
	if o.KeepaliveTimeout <= 0 {
		o.KeepaliveTimeout = 20 * time.Second
	}
	return f(o)
}

// httpServer serves a mux with net/http, as most libraries expect.
type httpServer struct{ h http.Handler }

func (s httpServer) Serve(ln net.Listener) error {
	return (&http.Server{Handler: s.h, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
}

func mux(echo, broadcast http.HandlerFunc) httpServer {
	m := http.NewServeMux()
	m.HandleFunc("/echo", echo)
	m.HandleFunc("/broadcast", broadcast)
	return httpServer{m}
}

// hub is the set of /broadcast connections of one server; fan-outs take its
// lock, so one broadcast finishes before the next starts.
type hub[C comparable] struct {
	mu   sync.Mutex
	subs map[C]struct{}
}

func newHub[C comparable]() *hub[C] {
	return &hub[C]{subs: map[C]struct{}{}}
}

func (h *hub[C]) add(c C) {
	h.mu.Lock()
	h.subs[c] = struct{}{}
	h.mu.Unlock()
}

func (h *hub[C]) remove(c C) {
	h.mu.Lock()
	delete(h.subs, c)
	h.mu.Unlock()
}

// each calls f for every subscriber, holding the lock.
func (h *hub[C]) each(f func(C)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.subs {
		f(c)
	}
}
