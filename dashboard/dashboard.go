package dashboard

import (
	"crypto/subtle"
	"embed"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tetherws/tether"
	"github.com/tetherws/tether/hub"
)

// DefaultHistory is how many keepalive events (pings, pongs, timeouts) the
// handler keeps per connection unless Options.History says otherwise.
const DefaultHistory = 100

// maxShown caps the connections the page and its feed carry: a table of
// thousands of rows helps nobody, and the filters narrow it down.
const maxShown = 200

// Options configure New. The zero value serves DefaultRegistry to anyone who
// can reach the handler.
type Options struct {
	// Registry is the registry to show; nil means tether.DefaultRegistry.
	Registry *tether.Registry
	// Authorize decides whether a request may see the page, the API, the
	// feed and the metrics; nil admits every request. The static scripts
	// and styles under /assets/ are served to anyone: they hold no data.
	Authorize func(*http.Request) bool
	// History is how many keepalive events to keep per connection;
	// default DefaultHistory. The peer's pings are kept apart, up to as
	// many again, so a peer pinging much faster than the connection does
	// not push its own pings out.
	History int
	// KeepClosed is how many recently closed connections to keep, with
	// their final snapshot and their history, for the page (a lane for
	// those that failed a keepalive ping, a table of them all) and for
	// /api/connections?state=closed and /api/connections/{id}; default
	// DefaultKeepClosed, negative keeps none.
	KeepClosed int
	// KeepClosedFor is how long a closed connection is kept; default
	// DefaultKeepClosedFor.
	KeepClosedFor time.Duration
	// Node, when set, is added as "node" to every connection object, for
	// servers running as one node of a cluster.
	Node string
	// Presence, when set, returns the connections of the cluster's other
	// nodes (natsbroker.Broker.RemotePresence, or hub.Hub.Presence: the
	// entries of Node are skipped). They are listed after this node's, each
	// with its "node", by /api/connections (filters apply),
	// /api/connections/{id} (without history: keepalive events stay on
	// their node) and the page. It is called at every tick of the page's
	// feed and for every API request, so it should be cheap.
	Presence func() []hub.Presence
	// Collectors are registered beside the dashboard's own metrics at
	// /metrics, e.g. a cluster broker's (natsbroker.Broker.Collector).
	Collectors []prometheus.Collector
	// Logger receives the records of the page's feed connections;
	// nil means slog.Default().
	Logger *slog.Logger
}

// Handler serves the dashboard. Create it with New and stop it with Close.
//
// Routes, relative to where it is mounted (mount it with a trailing slash,
// under http.StripPrefix for a prefix):
//
//	GET /                      the page
//	GET /assets/...            its script and styles
//	GET /api/connections       JSON array of live connections, filters: ?role= &path= &state= &node=;
//	                           ?state=closed: the recently closed ones, newest first
//	GET /api/connections/{id}  one connection, live or recently closed, with its history
//	GET /api/findings          {"time", "findings": [...]}: Registry.Findings
//	GET /api/state             what the page shows, for polling
//	GET /api/feed              WebSocket: the same, pushed twice a second
//	GET /metrics               Prometheus text format
type Handler struct {
	authorize func(*http.Request) bool
	node      string
	logger    *slog.Logger
	mux       *http.ServeMux
	state     *state
	metrics   *Metrics

	mu     sync.Mutex
	closed bool
	feeds  sync.WaitGroup
	done   chan struct{}
}

//go:embed assets
var assets embed.FS

// New starts a dashboard for the registry named in opts. It subscribes to
// the registry's events at once, so the keepalive history starts now.
func New(opts Options) *Handler {
	reg := opts.Registry
	if reg == nil {
		reg = tether.DefaultRegistry
	}
	history := opts.History
	if history <= 0 {
		history = DefaultHistory
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	h := &Handler{
		authorize: opts.Authorize,
		node:      opts.Node,
		logger:    logger,
		done:      make(chan struct{}),
	}
	h.metrics = newMetrics()
	keep, keepFor := opts.KeepClosed, opts.KeepClosedFor
	if keep == 0 {
		keep = DefaultKeepClosed
	}
	if keepFor <= 0 {
		keepFor = DefaultKeepClosedFor
	}
	h.state = newState(reg, history, keep, keepFor, h.metrics)
	h.state.node, h.state.presence = opts.Node, opts.Presence
	h.metrics.reg.MustRegister(connCollector{h.state})
	for _, c := range opts.Collectors {
		if err := h.metrics.reg.Register(c); err != nil {
			logger.Error("dashboard: collector not registered", "error", err.Error())
		}
	}
	go h.state.run()

	static, _ := fs.Sub(assets, "assets")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", h.guard(h.page))
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(static)))
	mux.HandleFunc("GET /api/connections", h.guard(h.listConnections))
	mux.HandleFunc("GET /api/connections/{id}", h.guard(h.getConnection))
	mux.HandleFunc("GET /api/findings", h.guard(h.getFindings))
	mux.HandleFunc("GET /api/state", h.guard(h.getState))
	mux.HandleFunc("GET /api/feed", h.guard(h.feed))
	mux.Handle("GET /metrics", h.guard(h.metrics.handler().ServeHTTP))
	h.mux = mux
	return h
}

// ServeHTTP serves the page, the API, the feed and the metrics.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer") // the page's URL may carry a token
	h.mux.ServeHTTP(w, r)
}

// Metrics returns the handler's Prometheus metrics, for the hooks servers
// call (HandshakeFailed, HubDropped) and for adding collectors of their own.
func (h *Handler) Metrics() *Metrics { return h.metrics }

// Close ends the registry subscription and the page feeds (with 1001). The
// handler answers 503 to feed requests afterwards.
func (h *Handler) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	close(h.done)
	h.mu.Unlock()
	h.feeds.Wait()
	h.state.close()
	return nil
}

// guard runs f only for requests that Authorize admits.
func (h *Handler) guard(f http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.authorize != nil && !h.authorize(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tether dashboard"`)
			http.Error(w, "unauthorized: send Authorization: Bearer TOKEN, or open the page as /?token=TOKEN", http.StatusUnauthorized)
			return
		}
		f(w, r)
	}
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	hd.Set("Cache-Control", "no-store")
	http.ServeFileFS(w, r, assets, "assets/index.html")
}

// BearerToken returns an Authorize hook that admits requests carrying token
// as "Authorization: Bearer TOKEN" or, since a browser can set no header when
// it opens a page or a WebSocket, as the query parameter token=TOKEN. The page
// passes the token it was opened with on to its API calls and its feed.
func BearerToken(token string) func(*http.Request) bool {
	want := []byte(token)
	return func(r *http.Request) bool {
		got := r.URL.Query().Get("token")
		if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
			got = strings.TrimSpace(a[7:])
		}
		return len(want) > 0 && subtle.ConstantTimeCompare([]byte(got), want) == 1
	}
}

// Loopback is an Authorize hook that admits requests from loopback addresses
// only: the dashboard stays private to the machine even when the server
// listens on every interface. Behind a reverse proxy every request comes from
// the proxy, so use BearerToken there.
func Loopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
