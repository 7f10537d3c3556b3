// Package hub fans messages out to many server connections. Connections join
// rooms; Broadcast sends one message to every member of a room, encoded
// (and compressed) once as a tether.PreparedMessage and queued for each
// connection, so that a slow connection delays nobody but itself.
//
// Each connection has a bounded queue and a goroutine that writes it. When a
// queue is full, an explicit policy applies: close the connection with 1013
// Try Again Later (CloseSlow, the default), or drop the message for that
// connection and count it (DropMessages). Nothing is dropped without a
// trace: Stats counts every message that was not delivered, and the hub logs
// each slow consumer.
package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/tetherws/tether"
)

// Policy says what happens to a connection whose queue is full.
type Policy int

const (
	// CloseSlow closes the connection with 1013 Try Again Later: a client
	// that cannot keep up reconnects and catches up by other means.
	CloseSlow Policy = iota
	// DropMessages drops the message for that connection, counts it, and
	// keeps the connection.
	DropMessages
)

func (p Policy) String() string {
	if p == DropMessages {
		return "drop"
	}
	return "close"
}

// Defaults for Options.
const (
	DefaultQueue        = 256
	DefaultWriteTimeout = 10 * time.Second
)

// SlowReason is the close reason of a connection closed by CloseSlow.
const SlowReason = "slow consumer"

// ErrClosed is returned by a closed hub.
var ErrClosed = errors.New("hub: closed")

// Options configure a Hub. The zero value gives the defaults.
type Options struct {
	// Queue is how many messages may wait for one connection. Default 256.
	// The messages are shared between the queues, so memory is bounded by
	// Queue messages per room, not per connection.
	Queue int
	// Policy applies when a connection's queue is full. Default CloseSlow.
	Policy Policy
	// WriteTimeout bounds the write of one message to one connection; a
	// write that takes longer fails the connection. Default 10 s; negative
	// for none.
	WriteTimeout time.Duration
	// Logger receives the records about slow consumers; default
	// slog.Default().
	Logger *slog.Logger

	// Broker carries broadcasts to the other nodes of a cluster (see
	// package natsbroker); nil keeps the hub on this node alone.
	Broker Broker
	// Node names this node in a cluster: it is carried by every message it
	// publishes and by its presence. Default: the host name.
	Node string
	// Registry, when set, makes LocalPresence list every connection of the
	// registry (with the rooms of those in rooms), not only the members.
	Registry *tether.Registry
}

// Stats counts what a hub did. Every message Broadcast offered to a member
// was either Queued or Dropped; every queued message is Sent, Discarded or
// still Pending.
type Stats struct {
	Rooms      int   // rooms with at least one member
	Conns      int   // connections in at least one room, or still being written to
	Pending    int   // messages in the queues now
	Broadcasts int64 // calls to Broadcast
	Queued     int64 // messages queued for a connection
	Sent       int64 // messages written
	Dropped    int64 // messages not queued because a queue was full
	Discarded  int64 // queued messages never written: their connection ended or failed
	SlowClosed int64 // connections closed with 1013 by CloseSlow
}

// Hub holds rooms of server connections. It is safe for concurrent use.
type Hub struct {
	queue   int
	policy  Policy
	timeout time.Duration
	log     *slog.Logger
	broker  Broker
	node    string
	reg     *tether.Registry

	mu      sync.RWMutex // guards the maps; held (read) by Deliver
	rooms   map[string]*group
	clients map[*tether.Conn]*client
	closed  atomic.Bool   // set under mu
	done    chan struct{} // closed by Close
	wg      sync.WaitGroup

	broadcasts, queued, sent, dropped, discarded, slowClosed atomic.Int64
}

// group is the members of one room.
type group struct {
	mu      sync.Mutex // serializes deliveries: every member sees one order
	members map[*client]struct{}
	// replaying holds, for each member being given its missed messages,
	// the live ones that arrive meanwhile: they follow the replay.
	replaying map[*client][]Message
	// after is, for subscribers, the position they have reached by their
	// start: this node's delivery may lag behind the history they were
	// given, and the messages it delivers late are not sent twice.
	after map[*client]uint64
}

// client is one connection's queue and writer.
type client struct {
	conn     *tether.Conn
	q        chan *tether.PreparedMessage
	rooms    map[string]struct{} // guarded by Hub.mu
	envelope atomic.Bool         // its messages go in envelopes (Subscribe)
	evicted  atomic.Bool
	dropping atomic.Bool  // in a run of drops, for the log
	drops    atomic.Int64 // dropped for this connection
}

// New returns an empty hub. With a Broker, it starts it; when that fails,
// it logs the error and the hub stays on this node alone (NewClustered
// returns the error instead).
func New(opts *Options) *Hub {
	h := newHub(opts)
	if h.broker != nil {
		if err := h.broker.Start(h); err != nil {
			h.log.Error("hub: broker did not start: this node delivers to its own connections only", "node", h.node, "error", err.Error())
			h.broker = nil
		}
	}
	return h
}

// NewClustered is New for a hub with a Broker that must start: it returns
// the broker's error instead of running alone.
func NewClustered(opts *Options) (*Hub, error) {
	h := newHub(opts)
	if h.broker != nil {
		if err := h.broker.Start(h); err != nil {
			return nil, err
		}
	}
	return h, nil
}

func newHub(opts *Options) *Hub {
	if opts == nil {
		opts = &Options{}
	}
	h := &Hub{
		queue:   opts.Queue,
		policy:  opts.Policy,
		timeout: opts.WriteTimeout,
		log:     opts.Logger,
		rooms:   map[string]*group{},
		clients: map[*tether.Conn]*client{},
		done:    make(chan struct{}),
	}
	if h.queue <= 0 {
		h.queue = DefaultQueue
	}
	if h.timeout == 0 {
		h.timeout = DefaultWriteTimeout
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	h.broker, h.node, h.reg = opts.Broker, opts.Node, opts.Registry
	if h.node == "" {
		h.node, _ = os.Hostname()
	}
	return h
}

// Node returns the name of this node.
func (h *Hub) Node() string { return h.node }

// Join adds c to room. A connection may be in several rooms; it leaves them
// all when it ends. The hub only writes to c: the handler may return, but
// something must take what c receives, or c stops reading once its
// ReadAhead is full (and no longer sees its close). Read it, serve it with
// Go, or call c.DiscardMessages when its peer has nothing to say.
func (h *Hub) Join(room string, c *tether.Conn) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.joinLocked(room, c)
	return err
}

func (h *Hub) joinLocked(room string, c *tether.Conn) (*client, error) {
	if h.closed.Load() {
		return nil, ErrClosed
	}
	cl := h.clients[c]
	if cl == nil {
		cl = &client{conn: c, q: make(chan *tether.PreparedMessage, h.queue), rooms: map[string]struct{}{}}
		h.clients[c] = cl
		h.wg.Go(func() { h.writeLoop(cl) })
	}
	r := h.rooms[room]
	if r == nil {
		r = &group{members: map[*client]struct{}{}}
		h.rooms[room] = r
	}
	r.mu.Lock()
	r.members[cl] = struct{}{}
	r.mu.Unlock()
	cl.rooms[room] = struct{}{}
	return cl, nil
}

// Leave takes c out of room. Messages already queued for it are still sent.
func (h *Hub) Leave(room string, c *tether.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cl := h.clients[c]; cl != nil {
		h.leaveLocked(room, cl)
	}
}

func (h *Hub) leaveLocked(name string, cl *client) {
	delete(cl.rooms, name)
	r := h.rooms[name]
	if r == nil {
		return
	}
	r.mu.Lock()
	delete(r.members, cl)
	delete(r.replaying, cl)
	delete(r.after, cl)
	empty := len(r.members) == 0
	r.mu.Unlock()
	if empty {
		delete(h.rooms, name)
	}
}

// Len returns the number of connections in room.
func (h *Hub) Len(room string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	r := h.rooms[room]
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.members)
}

// Broadcast sends a message to every connection in room: on this node,
// and through the broker on every node of the cluster. It copies p once,
// encodes it once per node, and never blocks on a connection: a connection
// whose queue is full is handled by the policy. Concurrent broadcasts to one
// room reach every member in the same order. It returns how many members
// on this node took the message (0 with a broker that delivers in the
// cluster's order, later).
func (h *Hub) Broadcast(room string, typ tether.MessageType, p []byte) (int, error) {
	if typ != tether.Text && typ != tether.Binary {
		return 0, fmt.Errorf("hub: broadcast of message type %v", typ)
	}
	if typ == tether.Text && !utf8.Valid(p) {
		return 0, errors.New("hub: text message is not valid UTF-8")
	}
	if h.closed.Load() {
		return 0, ErrClosed
	}
	h.broadcasts.Add(1)
	m := Message{Room: room, Type: typ, Data: append([]byte(nil), p...), Node: h.node}
	if h.broker == nil {
		return h.Deliver(m), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	return h.broker.Publish(ctx, m)
}

// publishTimeout bounds a broker's Publish called by Broadcast.
const publishTimeout = 5 * time.Second

// Deliver queues m for this node's members of m.Room and returns how many
// took it. It is how a Broker hands over the messages of the cluster;
// applications call Broadcast. Messages delivered one after the other
// reach every member in that order.
func (h *Hub) Deliver(m Message) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed.Load() {
		return 0
	}
	r := h.rooms[m.Room]
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var raw, env *tether.PreparedMessage
	n := 0
	for cl := range r.members {
		if cl.evicted.Load() {
			continue
		}
		if held, ok := r.replaying[cl]; ok {
			if len(held) >= h.queue*replayHold {
				h.overflow(cl)
				continue
			}
			r.replaying[cl] = append(held, m) // queued by release
			continue
		}
		if m.Seq != 0 && m.Seq <= r.after[cl] {
			continue // the subscriber had it from the history
		}
		var pm *tether.PreparedMessage
		if cl.envelope.Load() {
			if env == nil {
				env = prepare(envelopeOf(m))
			}
			pm = env
		} else {
			if raw == nil {
				raw = prepare(m.Type, m.Data)
			}
			pm = raw
		}
		if pm != nil && h.offer(cl, pm) {
			n++
		}
	}
	h.queued.Add(int64(n))
	return n
}

// offer queues pm for cl without waiting, or applies the policy when cl's
// queue is full; it reports whether cl took it. The caller holds h.mu
// (read) and a room lock.
func (h *Hub) offer(cl *client, pm *tether.PreparedMessage) bool {
	select {
	case cl.q <- pm:
		return true
	default:
		h.overflow(cl)
		return false
	}
}

// replayHold is how many queues' worth of live messages a member being
// replayed to may have held for it before the policy applies.
const replayHold = 4

// prepare encodes a message checked by Broadcast or built by the hub: it
// cannot fail but for a broker handing over a bad message, which is
// dropped.
func prepare(typ tether.MessageType, p []byte) *tether.PreparedMessage {
	pm, err := tether.NewPreparedMessage(typ, p)
	if err != nil {
		return nil
	}
	return pm
}

// overflow applies the policy to a client whose queue is full; the caller
// holds h.mu (read) and a room lock.
func (h *Hub) overflow(cl *client) {
	h.dropped.Add(1)
	cl.drops.Add(1)
	if h.policy == DropMessages {
		if cl.dropping.CompareAndSwap(false, true) {
			h.log.Warn("slow consumer: dropping messages", h.connAttrs(cl, "queue", h.queue)...)
		}
		return
	}
	if !cl.evicted.CompareAndSwap(false, true) {
		return
	}
	h.slowClosed.Add(1)
	h.log.Warn("slow consumer: closing", h.connAttrs(cl, "queue", h.queue, "code", int(tether.StatusTryAgainLater))...)
	h.wg.Go(func() {
		h.retire(cl)
		// The close frame waits for a write in progress; a peer that does
		// not read gets dropped after CloseTimeout (or the write's timeout).
		cl.conn.Close(tether.StatusTryAgainLater, SlowReason)
	})
}

func (h *Hub) connAttrs(cl *client, kv ...any) []any {
	remote := ""
	if a := cl.conn.RemoteAddr(); a != nil {
		remote = a.String()
	}
	return append([]any{"conn", cl.conn.ID(), "role", cl.conn.Role(), "remote", remote, "policy", h.policy.String()}, kv...)
}

// writeLoop writes cl's queue until its connection ends, it is evicted or
// the hub closes.
func (h *Hub) writeLoop(cl *client) {
	defer h.retire(cl)
	w := newMemberWriter(cl.conn, h.timeout)
	defer w.stop()
	for {
		select {
		case pm := <-cl.q:
			if cl.evicted.Load() || !w.write(pm) {
				h.discarded.Add(1)
				return
			}
			h.sent.Add(1)
			if len(cl.q) == 0 && cl.dropping.CompareAndSwap(true, false) {
				h.log.Info("slow consumer caught up", h.connAttrs(cl, "dropped", cl.drops.Load())...)
			}
		case <-cl.conn.Done():
			return
		case <-h.done:
			return
		}
	}
}

// memberWriter writes one member's messages, each bounded by the hub's
// WriteTimeout. All go under one context for the member's life, so the
// connection binds its write side to it once; the timeout is a timer moved
// later at each write (cheap), which cancels the context if a write is
// still going when it fires. A context with a deadline per message cost, per
// message and member, two allocations and a runtime timer for the context,
// a cancellation registration, a deadline set and cleared on the socket
// and, once cancelled at the end, a goroutine: at 10,000 members a
// broadcast took twice as long as writing them in a loop.
type memberWriter struct {
	conn    *tether.Conn
	ctx     context.Context
	cancel  context.CancelCauseFunc
	timeout time.Duration
	timer   *time.Timer  // nil without a timeout
	started atomic.Int64 // unix nanos when the write in progress began; 0 between writes
}

func newMemberWriter(conn *tether.Conn, timeout time.Duration) *memberWriter {
	w := &memberWriter{conn: conn, timeout: timeout}
	w.ctx, w.cancel = context.WithCancelCause(context.Background())
	if timeout > 0 {
		w.timer = time.AfterFunc(timeout, w.expire)
	}
	return w
}

// write sends pm and reports whether it went out.
func (w *memberWriter) write(pm *tether.PreparedMessage) bool {
	if w.timer != nil {
		w.started.Store(time.Now().UnixNano())
		w.timer.Reset(w.timeout)
	}
	err := w.conn.WritePrepared(w.ctx, pm)
	w.started.Store(0)
	return err == nil
}

// expire runs when the timer falls due: it cancels a write that has lasted
// the timeout (the connection fails, as the write is cut), and looks again
// later at one that began since.
func (w *memberWriter) expire() {
	start := w.started.Load()
	if start == 0 {
		return // between writes: the next one re-arms
	}
	if left := w.timeout - time.Since(time.Unix(0, start)); left > 0 {
		w.timer.Reset(left)
		return
	}
	w.cancel(fmt.Errorf("hub: write timeout (%v): %w", w.timeout, context.DeadlineExceeded))
}

func (w *memberWriter) stop() {
	if w.timer != nil {
		w.timer.Stop()
	}
	w.cancel(nil)
}

// retire takes cl out of every room and discards, counting them, the
// messages left in its queue: once it is in no room, nothing more arrives.
func (h *Hub) retire(cl *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for name := range cl.rooms {
		h.leaveLocked(name, cl)
	}
	// Counted as discarded before cl leaves the clients, under the lock
	// Stats takes: a snapshot never misses them (neither pending nor
	// discarded yet).
	for drained := false; !drained; {
		select {
		case <-cl.q:
			h.discarded.Add(1)
		default:
			drained = true
		}
	}
	if h.clients[cl.conn] == cl {
		delete(h.clients, cl.conn)
	}
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	h.mu.RLock()
	s := Stats{Rooms: len(h.rooms), Conns: len(h.clients)}
	for _, cl := range h.clients {
		s.Pending += len(cl.q)
	}
	h.mu.RUnlock()
	s.Broadcasts = h.broadcasts.Load()
	s.Queued = h.queued.Load()
	s.Sent = h.sent.Load()
	s.Dropped = h.dropped.Load()
	s.Discarded = h.discarded.Load()
	s.SlowClosed = h.slowClosed.Load()
	return s
}

// Dropped returns how many messages were not queued for c because its queue
// was full.
func (h *Hub) Dropped(c *tether.Conn) int64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if cl := h.clients[c]; cl != nil {
		return cl.drops.Load()
	}
	return 0
}

// Close stops the hub: later calls fail with ErrClosed, the writers stop
// after the message they are writing, and the messages still queued are
// discarded (and counted). It leaves the connections open: they belong to
// their handlers (or to Registry.Shutdown). Close waits for the writers, and
// for slow consumers being closed, to finish.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed.Load() {
		h.mu.Unlock()
		return
	}
	h.closed.Store(true)
	close(h.done)
	h.mu.Unlock()
	if h.broker != nil {
		h.broker.Close()
	}
	h.wg.Wait()
}
