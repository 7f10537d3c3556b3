package tether

import (
	"cmp"
	"hash/maphash"
	"iter"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Registry knows every live connection that names it, from open to close:
// what dashboards, metrics, pools and leak checks read. Connections register
// in DefaultRegistry unless their options name another (or NoRegistry).
//
// When one process dials the same endpoint twice, or with different
// keepalive settings, the registry logs a warning (see addEndpoint) whose
// call_sites name the line that opened each connection: the first caller
// outside Tether's packages. A helper of yours that dials for its callers
// calls Helper first, so that the warning names its callers instead.
//
// It is sharded, so connections open and close without a global lock, and
// safe for concurrent use.
type Registry struct {
	shards [registryShards]registryShard
	n      atomic.Int64
	seed   maphash.Seed
	subs   atomic.Pointer[[]*Subscription]
	subsMu sync.Mutex

	epMu      sync.Mutex
	endpoints map[string]*endpoint       // client connections by endpoint
	clients   map[clientKey]*clientGroup // server connections by client and path
	// Logger receives the registry's own warnings (duplicate connections);
	// nil means slog.Default().
	Logger *slog.Logger
	// disabled marks NoRegistry.
	disabled bool
}

const registryShards = 32

// registryShard holds the connections whose ID hashes to it: by their
// UUID's 16 bytes, or by their text for IDs that are not UUIDs (see connID).
type registryShard struct {
	mu    sync.Mutex
	m     map[uuid.UUID]*conn
	named map[string]*conn // made by the first such ID
}

// all yields the shard's connections; the caller holds mu.
func (s *registryShard) all() iter.Seq[*conn] {
	return func(yield func(*conn) bool) {
		for _, c := range s.m {
			if !yield(c) {
				return
			}
		}
		for _, c := range s.named {
			if !yield(c) {
				return
			}
		}
	}
}

func (s *registryShard) len() int { return len(s.m) + len(s.named) }

func (s *registryShard) get(id connID) *conn {
	if id.name != nil {
		return s.named[*id.name]
	}
	return s.m[id.uuid]
}

func (s *registryShard) put(id connID, c *conn) {
	if id.name == nil {
		s.m[id.uuid] = c
		return
	}
	if s.named == nil {
		s.named = map[string]*conn{}
	}
	s.named[*id.name] = c
}

func (s *registryShard) delete(id connID) {
	if id.name != nil {
		delete(s.named, *id.name)
		return
	}
	delete(s.m, id.uuid)
}

// DefaultRegistry is where connections register unless their options say
// otherwise.
var DefaultRegistry = NewRegistry()

// NoRegistry, set as ConnOptions.Registry, keeps a connection out of every
// registry.
var NoRegistry = &Registry{disabled: true}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	r := &Registry{seed: maphash.MakeSeed(), endpoints: map[string]*endpoint{}, clients: map[clientKey]*clientGroup{}}
	for i := range r.shards {
		r.shards[i].m = map[uuid.UUID]*conn{}
	}
	return r
}

func (r *Registry) shard(id connID) *registryShard {
	if id.name != nil {
		return &r.shards[maphash.String(r.seed, *id.name)%registryShards]
	}
	return &r.shards[maphash.Bytes(r.seed, id.uuid[:])%registryShards]
}

// Len returns the number of live connections.
func (r *Registry) Len() int { return int(r.n.Load()) }

// Get returns a snapshot of the connection with the given ID.
func (r *Registry) Get(id string) (ConnInfo, bool) {
	key := parseConnID(id)
	s := r.shard(key)
	s.mu.Lock()
	c := s.get(key)
	s.mu.Unlock()
	if c == nil {
		return ConnInfo{}, false
	}
	return c.info(), true
}

// Range calls f with a snapshot of each live connection until f returns
// false. Connections opened or closed meanwhile may or may not be seen.
func (r *Registry) Range(f func(ConnInfo) bool) {
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		conns := make([]*conn, 0, s.len())
		for c := range s.all() {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		for _, c := range conns {
			if !f(c.info()) {
				return
			}
		}
	}
}

// Stale lists the connections that have received nothing, not even a pong,
// for longer than maxIdle: candidates for a leak or a dead peer.
func (r *Registry) Stale(maxIdle time.Duration) []ConnInfo {
	var out []ConnInfo
	r.Range(func(ci ConnInfo) bool {
		last := ci.OpenedAt
		if ci.LastRecvAt != nil && ci.LastRecvAt.After(last) {
			last = *ci.LastRecvAt
		}
		if time.Since(last) > maxIdle {
			out = append(out, ci)
		}
		return true
	})
	return out
}

func (r *Registry) add(c *conn) {
	s := r.shard(c.id)
	s.mu.Lock()
	s.put(c.id, c)
	s.mu.Unlock()
	r.n.Add(1)
	if c.role.String() == "client" {
		r.addEndpoint(c)
	} else if c.client != noClient {
		r.addClient(c)
	}
	if r.hasSubscribers() {
		info := c.info()
		r.publish(Event{Kind: EventOpen, ConnID: info.ID, Time: c.opened(), Info: &info})
	}
}

func (r *Registry) remove(c *conn, ce *CloseError) {
	s := r.shard(c.id)
	s.mu.Lock()
	ok := s.get(c.id) == c // a redial reusing the ID may have registered since
	if ok {
		s.delete(c.id)
	}
	s.mu.Unlock()
	if !ok {
		return
	}
	r.n.Add(-1)
	if c.role.String() == "client" {
		r.removeEndpoint(c)
	} else if c.client != noClient {
		r.removeClient(c)
	}
	if r.hasSubscribers() {
		info := c.info()
		r.publish(Event{Kind: EventClose, ConnID: info.ID, Time: c.cfg.clock.Now(), Code: ce.Code, Reason: ce.Reason,
			Initiator: ce.Initiator, Info: &info})
	}
}

func (r *Registry) hasSubscribers() bool {
	p := r.subs.Load()
	return p != nil && len(*p) > 0
}

// endpointKey is scheme://host/path of a client URL: connections with the
// same key talk to the same service.
func endpointKey(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Scheme + "://" + strings.ToLower(hostPort(u)) + u.EscapedPath()
}

// endpoint tracks the live client connections to one endpoint.
type endpoint struct {
	conns    map[*conn]struct{}
	settings map[[2]time.Duration]int // connections per (interval, timeout)
}

// maxWarnConns caps how many connections one warning lists.
const maxWarnConns = 10

// addEndpoint records a client connection and warns when it joins live
// connections to the same endpoint: the python-websockets report's
// situation, where several client instances with different keepalive
// settings share one logger. To stay cheap and readable with thousands of
// connections, it warns for each of the first few duplicates, then when the
// count reaches a power of two, and whenever a new keepalive setting appears.
// Its call_sites skip functions marked with Helper.
func (r *Registry) addEndpoint(c *conn) {
	key := endpointKey(c.path)
	ka := [2]time.Duration{c.pingIntervalOrZero(), c.pingTimeoutOrZero()}
	r.epMu.Lock()
	ep := r.endpoints[key]
	if ep == nil {
		ep = &endpoint{conns: map[*conn]struct{}{}, settings: map[[2]time.Duration]int{}}
		r.endpoints[key] = ep
	}
	ep.conns[c] = struct{}{}
	ep.settings[ka]++
	n, mixed := len(ep.conns), len(ep.settings) > 1
	newSetting := ep.settings[ka] == 1 && n > 1
	warn := n >= 2 && (!c.cfg.fanOut || mixed) && (n <= 4 || n&(n-1) == 0 || newSetting)
	var peers []*conn
	if warn {
		for p := range ep.conns {
			peers = append(peers, p)
		}
	}
	r.epMu.Unlock()
	if !warn {
		return
	}
	sortConns(peers)
	if len(peers) > maxWarnConns { // keep the newest, which includes c
		peers = peers[len(peers)-maxWarnConns:]
	}
	ids := make([]string, len(peers))
	intervals := make([]string, len(peers))
	sites := make([]string, len(peers))
	for i, p := range peers {
		ids[i], intervals[i], sites[i] = p.id.String(), p.pingIntervalOrZero().String(), p.callSite.String()
	}
	msg := "several client connections to one endpoint"
	if mixed {
		msg = "client connections to one endpoint with different keepalive settings"
	}
	r.logger().Warn(msg, "endpoint", key, "count", n, "conns", ids, "ping_intervals", intervals, "call_sites", sites,
		"hint", "share one connection or one set of DialOptions, or set DialOptions.FanOut for deliberate fan-out")
}

func (r *Registry) removeEndpoint(c *conn) {
	key := endpointKey(c.path)
	ka := [2]time.Duration{c.pingIntervalOrZero(), c.pingTimeoutOrZero()}
	r.epMu.Lock()
	defer r.epMu.Unlock()
	ep := r.endpoints[key]
	if ep == nil {
		return
	}
	delete(ep.conns, c)
	if ep.settings[ka]--; ep.settings[ka] <= 0 {
		delete(ep.settings, ka)
	}
	if len(ep.conns) == 0 {
		delete(r.endpoints, key)
	}
}

func (r *Registry) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

// sortConns orders connections by opening time, then ID (UUIDv7 IDs sort by
// time too).
func sortConns(cs []*conn) {
	slices.SortFunc(cs, func(a, b *conn) int {
		if c := cmp.Compare(a.openedAt, b.openedAt); c != 0 {
			return c
		}
		return a.id.compare(b.id)
	})
}
