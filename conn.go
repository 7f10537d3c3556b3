package tether

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unique"

	"github.com/google/uuid"
	"github.com/tetherws/tether/internal/wire"
)

// Conn is a WebSocket connection, client or server.
//
// Write, Writer, Ping and Close may be called concurrently with each other
// and with one reader (Read, Reader or Serve). The connection reads frames,
// answers pings and sends keepalive pings in the background, so control
// traffic flows even while the application is not reading: on a TCP or Unix
// socket one of the event engine's loops does it, and an idle connection
// owns no goroutine; on other connections (TLS, pipes) a goroutine of its
// own, which exits when the connection closes (see Engine).
type Conn struct {
	*conn
}

// conn is the connection's state. Its goroutine and timers hold only this
// inner value, never the *Conn the application holds, so a Conn dropped
// without Close becomes unreachable and its leak can be detected.
//
// Small fields sit beside others of their size, so that the struct packs
// into the 576-byte size class (568 bytes and the allocator's header):
// every idle connection holds one. Settings
// are shared (shareConfig); what few connections use is made on first use.
type conn struct {
	id          connID
	nc          net.Conn
	br          *connReader // the pull reader; under the engine, made for the end phase
	cfg         *connConfig // shared: see shareConfig
	log         connLog     // its records, with its attributes (log.go)
	subprotocol string
	path        string     // request path (server) or URL (client)
	openedAt    int64      // unix nanos: see opened
	callSite    *site      // where Dial or Accept was called
	slot        *limitSlot // its place in AcceptOptions.Limit, or nil

	// compression: nil unless permessage-deflate was negotiated
	deflate *compression

	// read side: owned by readLoop
	rules     wire.Reader
	role      wire.Role
	readOver  bool                      // the read loop is over; under closeMu (see readDone)
	msgs      atomic.Pointer[inbox]     // messages waiting for Read; see queue
	mr        *messageReader            // Reader's, made by its first call
	whole     []byte                    // the message being assembled when it is not pooled
	lastRecv  atomic.Int64              // unix nanos of the last frame received
	peer      atomic.Pointer[peerPings] // the peer's keepalive, from its first ping
	stalledAt atomic.Int64              // unix nanos the read loop stopped on a full inbox, 0 while it reads
	client    unique.Handle[clientID]   // a server connection's client (clients.go)

	// write side
	msgSem   sema                         // held for a whole data message
	frameSem sema                         // held for one frame
	wb       atomic.Pointer[writeBinding] // the context writes follow; see deadline.go
	pong     pendingPong

	// pings
	pingMu sync.Mutex
	pings  []*pendingPing
	ka     keepalive

	// closing
	closeMu   sync.Mutex
	sent      *CloseFrame
	rcvd      *CloseFrame
	done      chan struct{} // closed by finish; made by doneChan, under closeMu
	err       *CloseError   // set before doneFinished
	doneState atomic.Uint32 // doneFinished, doneMade, donePeerClose
	finishMu  sync.Once
	closeSent atomic.Bool
	aborting  sync.Mutex  // held while an abort sends its close frame
	lingering atomic.Bool // a failure's read loop drains the peer (fail)

	// Channels only some connections ever wait on, made by the first
	// waiter under closeMu (see closingChan and waitReadDone): an idle
	// connection pays for neither.
	closing  chan struct{} // closed when the close frame is queued (sent != nil)
	readDone chan struct{} // closed when the read loop is over (readOver)

	stats connStats

	// wholeReads says the application last took a message with Read, not
	// Reader or Serve: see messageBuf.
	wholeReads atomic.Bool
	inHandle   atomic.Bool // a Serve or Go handle call is in progress

	// Serve: see serve.go
	srv       atomic.Pointer[server] // the running Serve, or nil
	handleMu  sync.Mutex             // held around each handle call
	readState atomic.Int64           // Read and Reader calls waiting, plus serving
}

type connStats struct {
	messagesIn, messagesOut atomic.Int64
	bytesIn, bytesOut       atomic.Int64
	pingsSent, pongsRcvd    atomic.Int64
	lastPingAt, lastPongAt  atomic.Int64              // unix nanos, 0 before the first
	rtt                     atomic.Int64              // nanoseconds
	seldom                  atomic.Pointer[rareStats] // see rare
}

// rareStats count what most connections never see, made by the first
// (see rare).
type rareStats struct {
	timeouts, readStalls, discarded atomic.Int64
}

// rare returns the rare counters, making them.
func (s *connStats) rare() *rareStats {
	if r := s.seldom.Load(); r != nil {
		return r
	}
	s.seldom.CompareAndSwap(nil, new(rareStats))
	return s.seldom.Load()
}

// rareCounts returns the rare counters' values, zero when never made.
func (s *connStats) rareCounts() (timeouts, readStalls, discarded int64) {
	if r := s.seldom.Load(); r != nil {
		return r.timeouts.Load(), r.readStalls.Load(), r.discarded.Load()
	}
	return 0, 0, 0
}

// The bits of conn.doneState.
const (
	doneFinished  = 1 << iota // finish has run: isDone
	doneMade                  // done is made
	donePeerClose             // the peer's close frame came first: ours is its echo
)

// newConn wraps an upgraded net.Conn. br holds bytes already read past the
// handshake; it may be nil.
func newConn(nc net.Conn, br *bufio.Reader, role wire.Role, cfg config, subprotocol, path string) *Conn {
	c := &conn{
		id:          newConnID(cfg.id),
		role:        role,
		nc:          nc,
		cfg:         shareConfig(cfg.connConfig),
		subprotocol: subprotocol,
		path:        path,
		openedAt:    cfg.clock.Now().UnixNano(),
		callSite:    cfg.callSite,
		slot:        cfg.slot,
		client:      cfg.client,
	}
	c.rules.Role = role
	if cfg.deflate != nil {
		c.deflate = newCompression(*cfg.deflate, role, cfg.compressMode, cfg.windowBits, cfg.level)
		c.rules.AllowRsv1 = true
	}
	c.wholeReads.Store(true) // as the README reads: see messageBuf
	c.lastRecv.Store(c.openedAt)
	// Everything another goroutine may touch is set before the registry
	// lists the connection.
	looped := cfg.wantsLoop(nc) && c.takeSocket(nc, br)
	if !looped {
		c.br = newConnReader(nc, br)
	}
	c.log = connLog{c}
	c.logOpen()
	if cfg.registry != nil {
		cfg.registry.add(c)
	}
	if looped {
		c.loop().pc.Start() // the engine runs while it holds a connection: it cannot have closed
	} else {
		go c.readLoop()
	}
	c.startKeepalive()
	h := &Conn{conn: c}
	runtime.AddCleanup(h, (*conn).leaked, c)
	return h
}

func (c *conn) logOpen() {
	if !c.log.Enabled(context.Background(), slog.LevelInfo) {
		return // the record's arguments would allocate even though it is dropped
	}
	where := "path"
	if c.role == wire.Client {
		where = "url"
	}
	c.log.Info("connection open", where, c.path, "local", addrString(c.nc.LocalAddr()), "subprotocol", c.subprotocol,
		"ping_interval", c.pingIntervalOrZero(), "ping_timeout", c.pingTimeoutOrZero())
}

// addrString formats a connection's address as its String method does. A
// TCP address, a connection's usual, goes through netip, which makes one
// string where TCPAddr.String makes three: snapshots and log records
// format them each time rather than have every connection keep them.
func addrString(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok && ta != nil && ta.Zone == "" {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return netip.AddrPortFrom(ip.Unmap(), uint16(ta.Port)).String()
		}
	}
	if a == nil {
		return ""
	}
	return a.String()
}

// opened returns when the connection opened, on its clock. It is kept as
// nanoseconds: a time.Time is 16 bytes more, for every connection.
func (c *conn) opened() time.Time { return time.Unix(0, c.openedAt) }

// ID returns the connection ID, the "conn" attribute of its log records.
func (c *Conn) ID() string { return c.id.String() }

// Role returns "client" or "server".
func (c *Conn) Role() string { return c.role.String() }

// Subprotocol returns the negotiated subprotocol, or "".
func (c *Conn) Subprotocol() string { return c.subprotocol }

// RemoteAddr returns the peer's network address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// Path returns the request path for a server connection, the URL for a client.
func (c *Conn) Path() string { return c.path }

// Done is closed when the connection has closed; Err then says how.
func (c *Conn) Done() <-chan struct{} { return c.doneChan() }

// Err returns the *CloseError that ended the connection, or nil while it is
// open.
func (c *Conn) Err() error {
	if c.isDone() {
		return c.err
	}
	return nil
}

// Latency returns the round-trip time of the last answered ping, zero before
// the first.
func (c *Conn) Latency() time.Duration { return time.Duration(c.stats.rtt.Load()) }

// Stats is a snapshot of a connection's counters.
type Stats struct {
	ID            string
	Role          string
	State         string // "open", "closing" or "closed"
	OpenedAt      time.Time
	PingInterval  time.Duration // zero when keepalive is off
	PingTimeout   time.Duration // zero when it never times out
	MessagesIn    int64
	MessagesOut   int64
	BytesIn       int64
	BytesOut      int64
	PingsSent     int64
	PongsReceived int64
	PingTimeouts  int64
	LastPingAt    time.Time // zero before the first
	LastPongAt    time.Time
	RTT           time.Duration
	// Peer is what the connection measured of the peer's keepalive pings.
	Peer PeerKeepalive
	// QueuedMessages and QueuedBytes wait for Read or Reader (see
	// ConnOptions.ReadAhead); ReadStalledSince is when the connection
	// stopped reading because they filled it (zero while it reads), and
	// ReadStalls counts the stalls that suspended keepalive's ping timeout.
	QueuedMessages    int
	QueuedBytes       int64
	ReadStalledSince  time.Time
	ReadStalls        int64
	DiscardedMessages int64 // dropped by DiscardMessages
}

// Stats returns a snapshot of the connection's counters. It is safe to call
// at any time, from any goroutine.
func (c *Conn) Stats() Stats {
	n, b := c.queued()
	timeouts, stalls, discarded := c.stats.rareCounts()
	return Stats{
		ID:            c.id.String(),
		Role:          c.role.String(),
		State:         c.state(),
		OpenedAt:      c.opened(),
		PingInterval:  c.pingIntervalOrZero(),
		PingTimeout:   c.pingTimeoutOrZero(),
		MessagesIn:    c.stats.messagesIn.Load(),
		MessagesOut:   c.stats.messagesOut.Load(),
		BytesIn:       c.stats.bytesIn.Load(),
		BytesOut:      c.stats.bytesOut.Load(),
		PingsSent:     c.stats.pingsSent.Load(),
		PongsReceived: c.stats.pongsRcvd.Load(),
		PingTimeouts:  timeouts,
		LastPingAt:    unixTime(c.stats.lastPingAt.Load()),
		LastPongAt:    unixTime(c.stats.lastPongAt.Load()),
		RTT:           c.Latency(),
		Peer:          c.peerKeepalive(),

		QueuedMessages:    n,
		QueuedBytes:       b,
		ReadStalledSince:  c.stalledSince(),
		ReadStalls:        stalls,
		DiscardedMessages: discarded,
	}
}

// queued returns the messages waiting for Read and what they count for.
func (c *conn) queued() (int, int64) {
	if q := c.msgs.Load(); q != nil {
		return q.len()
	}
	return 0, 0
}

func unixTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func (c *conn) state() string {
	if c.isDone() {
		return "closed"
	}
	if c.closeSent.Load() {
		return "closing"
	}
	return "open"
}

func (c *conn) pingIntervalOrZero() time.Duration { return max(c.cfg.pingInterval, 0) }

func (c *conn) pingTimeoutOrZero() time.Duration {
	if c.cfg.pingInterval <= 0 {
		return 0
	}
	return max(c.cfg.pingTimeout, 0)
}

// connID is a connection's ID. A generated one, a UUIDv7, is kept as its 16
// bytes and formatted when a record, a snapshot or ID asks, rather than
// held as 36 bytes of text by every connection; so is an ID from
// ConnOptions.ID that is a UUID in the canonical form String gives back.
// Any other given ID is kept as given.
type connID struct {
	uuid uuid.UUID
	name *string // the given ID when it is not a canonical UUID, else nil
}

// newConnID returns the ID ConnOptions.ID gave, or a new UUIDv7 when empty.
func newConnID(given string) connID {
	if given == "" {
		return connID{uuid: uuid.Must(uuid.NewV7())}
	}
	return parseConnID(given)
}

// parseConnID returns the connID whose text is id.
func parseConnID(id string) connID {
	if len(id) == 36 && strings.IndexFunc(id, unicode.IsUpper) < 0 {
		if u, err := uuid.Parse(id); err == nil {
			return connID{uuid: u}
		}
	}
	return connID{name: &id}
}

// String returns the ID as ID and the "conn" attribute give it.
func (id connID) String() string {
	if id.name != nil {
		return *id.name
	}
	return id.uuid.String()
}

// compare orders IDs by their text.
func (id connID) compare(o connID) int {
	if id.name == nil && o.name == nil {
		return bytes.Compare(id.uuid[:], o.uuid[:])
	}
	return strings.Compare(id.String(), o.String())
}
