package tether

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"time"
	"unique"
	"weak"

	"github.com/tetherws/tether/internal/clock"
	"github.com/tetherws/tether/internal/wire"
)

// Defaults for the options below.
const (
	DefaultReadLimit        = 1 << 20
	DefaultCloseTimeout     = 10 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultPingInterval     = 20 * time.Second
	DefaultPingTimeout      = 20 * time.Second
	DefaultFragmentSize     = 64 << 10
	DefaultReadAhead        = 1 << 20
)

// ConnOptions are the settings a connection has in either role. The zero
// value gives the documented defaults.
type ConnOptions struct {
	// ReadLimit is the largest message, in bytes, the connection accepts;
	// a larger one ends the connection with 1009. Default 1 MiB; negative
	// means no limit.
	ReadLimit int64
	// CloseTimeout bounds the close handshake; after it the TCP connection
	// is dropped. Default 10 s.
	CloseTimeout time.Duration
	// PingInterval is the keepalive period. Default 20 s; negative disables
	// keepalive.
	PingInterval time.Duration
	// PingTimeout is how long to wait for a keepalive pong before failing the
	// connection with 1011. Default 20 s; negative keeps pinging but never
	// times out.
	PingTimeout time.Duration
	// KeepaliveMode chooses a fixed schedule (default) or pings when idle.
	KeepaliveMode KeepaliveMode
	// FragmentSize is the largest frame Write sends; longer messages go out
	// as fragments so that pings and pongs are not stuck behind them.
	// Default 64 KiB; negative never fragments.
	FragmentSize int
	// ReadAhead is how many bytes of received messages may wait for the
	// application (each message counts 64 bytes more than its payload)
	// before the connection stops reading. Until then it goes on answering
	// pings and taking pongs while the application does not read; once it
	// stops, keepalive suspends its ping timeout rather than blame the peer
	// (docs/keepalive.md, "If you stop reading"). Default 1 MiB.
	ReadAhead int64
	// ReadQueue, when positive, also stops reading once that many messages
	// wait. Default 0: only ReadAhead bounds the queue.
	ReadQueue int
	// Logger receives the connection's records; default slog.Default().
	Logger *slog.Logger
	// LogFrames adds a debug record for every frame sent and received.
	LogFrames bool
	// ID replaces the generated UUIDv7 connection ID, e.g. with a request ID.
	ID string
	// CompressionMode chooses permessage-deflate: the zero value is
	// CompressionNoContextTakeover; CompressionDisabled turns it off.
	CompressionMode CompressionMode
	// CompressionWindowBits (8-15, default 15) caps the LZ77 window either
	// side may use where the negotiation lets us: smaller windows cost less
	// memory per connection with context takeover. Tether compresses with at
	// most this window; it asks peers for at least 9 bits, since zlib-based
	// peers cannot compress with 8.
	CompressionWindowBits int
	// CompressionThreshold is the size below which messages go out
	// uncompressed. Default 128 bytes; negative compresses everything.
	CompressionThreshold int
	// CompressionLevel is the deflate effort, from 1 (fastest, the default)
	// to 9 (smallest output); other values mean the default. Level 1 costs
	// a fraction of the CPU of the higher levels for output a little larger.
	// Levels apply with a 15-bit window (what browsers allow); a peer that
	// asks for a smaller one gets a window-limited encoder of about level 5.
	// Prepared messages are compressed at the default level.
	CompressionLevel int
	// Registry is where the connection is listed from open to close;
	// nil means DefaultRegistry, NoRegistry keeps it out of every registry.
	Registry *Registry
	// Clock replaces the wall clock, for tests: keepalive, the close
	// timeout and Reconnect's backoff then run on it (see Clock, and
	// tethertest.Clock for one a test advances by hand).
	Clock Clock
	// Relay, when set, takes the peer's pings and unsolicited pongs instead
	// of the connection: a ping is no longer answered (the relay forwards
	// it and writes back the pong the other side sends, with WritePong),
	// and a pong that answers none of this connection's own pings is
	// handed over instead of ignored. The peer's pings are still measured
	// (PeerKeepalive, the registry). Relay runs on the read loop with a
	// payload it may keep: it must not block. For proxies; nil (the
	// default) keeps the automatic pong.
	Relay func(op ControlOp, payload []byte)
	// Engine chooses what drives the connection (see Engine): EngineAuto,
	// the default, gives a TCP or Unix socket to the event engine, where
	// an idle connection owns no goroutine, and anything else (TLS, pipes,
	// custom net.Conns, connections with a Relay) its own reader
	// goroutine. The environment variable TETHER_ENGINE=goroutine|poll
	// overrides it process-wide.
	Engine Engine
}

// AcceptOptions configure Accept.
type AcceptOptions struct {
	ConnOptions
	// Subprotocols the server supports, in no particular order; the first of
	// the client's offers that is listed here is selected.
	Subprotocols []string
	// OriginPatterns lists hosts (path.Match patterns, e.g. "*.example.com")
	// allowed as Origin besides the request's own host. "*" allows all.
	OriginPatterns []string
	// Limit, when set, bounds the connections Accept holds, in all and per
	// remote address: past it, upgrades are answered 503 (see ConnLimit).
	Limit *ConnLimit
}

// DialOptions configure Dial.
type DialOptions struct {
	ConnOptions
	// HTTPHeader is sent with the opening handshake.
	HTTPHeader http.Header
	// Subprotocols to offer, in order of preference.
	Subprotocols []string
	// Origin sets the Origin header.
	Origin string
	// TLSConfig is used for wss:// URLs and https proxies.
	TLSConfig *tls.Config
	// HandshakeTimeout bounds dialing, proxying and the opening handshake.
	// Default 10 s.
	HandshakeTimeout time.Duration
	// Proxy returns the proxy for a request, as http.Transport's Proxy does;
	// nil reads HTTPS_PROXY, HTTP_PROXY and NO_PROXY from the environment at
	// every dial (ws:// uses HTTP_PROXY, wss:// HTTPS_PROXY).
	Proxy func(*http.Request) (*url.URL, error)
	// NetDialContext dials TCP; default a net.Dialer.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// FanOut says several connections to this endpoint are deliberate, so
	// the registry does not warn about them (it still warns when their
	// keepalive settings differ).
	FanOut bool
}

// config is what newConn needs to open a connection; the connection keeps
// only its connConfig.
type config struct {
	connConfig
	id           string
	callSite     *site
	client       unique.Handle[clientID] // Accept's
	compressMode CompressionMode
	windowBits   int
	level        int
	deflate      *wire.DeflateParams // negotiated, nil without compression
	slot         *limitSlot          // Accept's place in AcceptOptions.Limit
	engine       Engine
}

// connConfig is the settings a connection keeps for its life, so it holds
// nothing that is only needed to open. Connections opened with the same
// settings share one (see shareConfig): it is comparable for that.
type connConfig struct {
	readLimit    int64
	closeTimeout time.Duration
	pingInterval time.Duration
	pingTimeout  time.Duration
	mode         KeepaliveMode
	fragmentSize int
	readQueue    int
	readAhead    int64
	threshold    int
	logger       *slog.Logger
	clock        clock.Clock
	registry     *Registry
	logFrames    bool
	fanOut       bool
	relay        *func(ControlOp, []byte) // nil: answer pings, ignore stray pongs
}

func (o *ConnOptions) config() config {
	if o == nil {
		o = &ConnOptions{}
	}
	c := config{
		connConfig: connConfig{
			readLimit:    o.ReadLimit,
			closeTimeout: o.CloseTimeout,
			pingInterval: o.PingInterval,
			pingTimeout:  o.PingTimeout,
			mode:         o.KeepaliveMode,
			fragmentSize: o.FragmentSize,
			readQueue:    o.ReadQueue,
			readAhead:    o.ReadAhead,
			logger:       o.Logger,
			logFrames:    o.LogFrames,
			clock:        o.Clock,
			registry:     o.Registry,
			threshold:    o.CompressionThreshold,
		},
		id:           o.ID,
		compressMode: o.CompressionMode,
		windowBits:   o.CompressionWindowBits,
		level:        o.CompressionLevel,
		engine:       o.Engine,
	}
	if o.Relay != nil {
		relay := o.Relay // a pointer of its own: a config with a relay is not shared
		c.relay = &relay
	}
	if c.threshold == 0 {
		c.threshold = DefaultCompressionThreshold
	} else if c.threshold < 0 {
		c.threshold = 0
	}
	if c.readLimit == 0 {
		c.readLimit = DefaultReadLimit
	} else if c.readLimit < 0 {
		c.readLimit = 1<<63 - 1
	}
	c.closeTimeout = orDefault(c.closeTimeout, DefaultCloseTimeout)
	c.pingInterval = orDefault(c.pingInterval, DefaultPingInterval)
	c.pingTimeout = orDefault(c.pingTimeout, DefaultPingTimeout)
	if c.fragmentSize == 0 {
		c.fragmentSize = DefaultFragmentSize
	} else if c.fragmentSize < 0 {
		c.fragmentSize = 1<<62 - 1
	}
	if c.readAhead <= 0 {
		c.readAhead = DefaultReadAhead
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if c.clock == nil {
		c.clock = clock.Real
	}
	if c.registry == nil {
		c.registry = DefaultRegistry
	} else if c.registry.disabled {
		c.registry = nil
	}
	return c
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// sharedConfigs holds the connConfigs connections share: a server's all
// open with the same settings, and 120 bytes of copies each were the
// largest part of an idle connection after its goroutine. A config goes
// from the map once no connection holds it.
var sharedConfigs struct {
	sync.Mutex
	m map[connConfig]weak.Pointer[connConfig]
}

// shareConfig returns a connConfig equal to cfg for a connection to keep:
// the one connections with the same settings share, or a copy of its own
// when cfg's Clock is of a type that cannot be compared.
func shareConfig(cfg connConfig) *connConfig {
	if p := sharedConfig(cfg); p != nil {
		return p
	}
	return &cfg
}

func sharedConfig(cfg connConfig) (p *connConfig) {
	defer func() {
		if recover() != nil { // hashing cfg.clock panicked
			p = nil
		}
	}()
	sharedConfigs.Lock()
	defer sharedConfigs.Unlock()
	if w, ok := sharedConfigs.m[cfg]; ok {
		if p := w.Value(); p != nil {
			return p
		}
	}
	if sharedConfigs.m == nil {
		sharedConfigs.m = map[connConfig]weak.Pointer[connConfig]{}
	}
	p = new(connConfig)
	*p = cfg
	sharedConfigs.m[cfg] = weak.Make(p)
	runtime.AddCleanup(p, unshareConfig, cfg)
	return p
}

// unshareConfig drops the entry of a config no connection holds any more,
// unless one with the same settings has taken its place.
func unshareConfig(cfg connConfig) {
	sharedConfigs.Lock()
	defer sharedConfigs.Unlock()
	if w, ok := sharedConfigs.m[cfg]; ok && w.Value() == nil {
		delete(sharedConfigs.m, cfg)
	}
}
