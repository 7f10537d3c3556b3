// Package natsbroker runs a hub as one node of a cluster on NATS: a
// broadcast to a room on any node reaches the room's members on every node,
// each node publishing a message once; every node announces its connections
// (presence); and, with JetStream, each room keeps a history so that a
// subscriber that reconnects gets what it missed.
//
//	b := natsbroker.New(natsbroker.Options{URL: "nats://127.0.0.1:4222", JetStream: true})
//	h, err := hub.NewClustered(&hub.Options{Broker: b, Node: "n1"})
//
// Delivery. Without JetStream, messages travel on core NATS: at most once.
// A node delivers its own broadcasts to its members at once and publishes
// them for the others; while NATS is unreachable it goes on delivering
// locally, logs a warning, counts the messages the other nodes missed
// (tether_cluster_local_only_total) and resumes when NATS is back. With
// JetStream, every message is stored in a stream before any node delivers
// it, in the stream's order, numbered (hub.Message.Seq) and chained to the
// room's previous message (hub.Message.Prev); a node that lost NATS for a
// while catches up on what the others published meanwhile. A broadcast made
// while the stream is unreachable is delivered on its node only, without a
// number, and subscribers resuming over it get a gap.
//
// Subjects: PREFIX.room.ROOM carries the messages (ROOM as is when it is
// made of letters, digits, '-' and '_', else "~" and its base64url form),
// PREFIX.presence.NODE the presence.
package natsbroker

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/tetherws/tether"
	"github.com/tetherws/tether/hub"
)

// Defaults for Options.
const (
	DefaultPrefix           = "tether"
	DefaultStream           = "TETHER_ROOMS"
	DefaultHistory          = 1000
	DefaultHistoryAge       = 24 * time.Hour
	DefaultPresenceInterval = 2 * time.Second
	DefaultReconnectWait    = time.Second
)

// Options configure a Broker.
type Options struct {
	// URL is the NATS server, or a comma-separated list of them.
	URL string
	// Conn, when set, is used instead of dialing URL; Close leaves it
	// open. Connection state changes are then seen by polling.
	Conn *nats.Conn
	// NATSOptions are passed to nats.Connect after the broker's own.
	NATSOptions []nats.Option
	// Prefix starts every subject. Default "tether".
	Prefix string

	// JetStream keeps each room's history in a stream, numbers messages
	// and lets subscribers resume (see the package comment).
	JetStream bool
	// Stream names the stream. Default "TETHER_ROOMS".
	Stream string
	// History is how many messages are kept per room. Default 1000.
	History int
	// HistoryAge is how long a message is kept. Default 24 h; negative
	// for no limit.
	HistoryAge time.Duration
	// Replicas of the stream in a JetStream cluster. Default 1.
	Replicas int
	// MemoryStorage keeps the stream in memory instead of files.
	MemoryStorage bool

	// PresenceInterval is how often the node announces its connections;
	// a node not heard from for three intervals is taken as gone.
	// Default 2 s.
	PresenceInterval time.Duration
	// Logger receives the broker's records; default slog.Default().
	Logger *slog.Logger
}

// Stats counts what a broker did.
type Stats struct {
	Connected     bool  // to NATS now
	Disconnects   int64 // times the connection to NATS was lost
	Published     int64 // messages published to the other nodes
	Received      int64 // messages received from the cluster and delivered
	LocalOnly     int64 // broadcasts delivered on this node only, NATS being unreachable
	PublishErrors int64 // failed publishes (each also counted in LocalOnly)
	Nodes         int   // nodes announcing presence, this one included
}

// Broker is a hub.Broker, hub.Recoverer (with JetStream) and
// hub.PresenceBroker on NATS. Create it with New and hand it to
// hub.NewClustered; the hub starts and closes it.
type Broker struct {
	opts Options
	log  *slog.Logger
	h    *hub.Hub
	node string

	nc      *nats.Conn
	ownConn bool
	js      jetstream.JetStream
	stream  atomic.Pointer[jetstream.Stream]
	subs    []*nats.Subscription
	cons    jetstream.ConsumeContext
	created time.Time  // of the stream cons reads
	setupMu sync.Mutex // serializes setup of the stream and consumer

	roomMu    sync.Mutex
	rooms     map[string]*roomState // JetStream: the last position seen per room
	roomSwept time.Time             // when rooms was last swept for quiet rooms

	presence *presence

	connected                                              atomic.Bool
	down                                                   atomic.Bool // logged as down, for the warning on the next publish
	disconnects, published, received, localOnly, pubErrors atomic.Int64
	lastAsync                                              atomic.Int64 // unix ns of the last async error logged
	ready                                                  atomic.Bool  // Start has set nc: the callbacks may act
	closing                                                atomic.Bool  // Close has begun

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// roomState serializes one room's JetStream publishes from this node and
// remembers the room's last position.
type roomState struct {
	mu   sync.Mutex
	last uint64
	// known is true once last is known: from a publish, a delivery or a
	// lookup.
	known bool

	// Under Broker.roomMu: goroutines holding the state, and when it was
	// last taken, so that rooms gone quiet can be forgotten.
	users    int
	lastUsed time.Time
}

// roomSweepEvery is how often at most room states are swept for quiet rooms.
const roomSweepEvery = time.Minute

// New returns a broker; it connects when the hub starts it.
func New(opts Options) *Broker {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Stream == "" {
		opts.Stream = DefaultStream
	}
	if opts.History <= 0 {
		opts.History = DefaultHistory
	}
	if opts.HistoryAge == 0 {
		opts.HistoryAge = DefaultHistoryAge
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.PresenceInterval <= 0 {
		opts.PresenceInterval = DefaultPresenceInterval
	}
	b := &Broker{opts: opts, log: opts.Logger, rooms: map[string]*roomState{}, stop: make(chan struct{})}
	if b.log == nil {
		b.log = slog.Default()
	}
	return b
}

// Subject returns the subject of room's messages.
func (b *Broker) Subject(room string) string { return b.opts.Prefix + ".room." + roomToken(room) }

func roomToken(room string) string {
	for i := 0; i < len(room); i++ {
		c := room[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return "~" + base64.RawURLEncoding.EncodeToString([]byte(room))
		}
	}
	if room == "" {
		return "~"
	}
	return room
}

func tokenRoom(tok string) (string, bool) {
	if !strings.HasPrefix(tok, "~") {
		return tok, true
	}
	p, err := base64.RawURLEncoding.DecodeString(tok[1:])
	return string(p), err == nil
}

// Header names of the messages.
const (
	hdrNode = "Tether-Node"
	hdrType = "Tether-Type"
	hdrPrev = "Tether-Prev"
)

// Start connects to NATS and subscribes; it is called by the hub.
func (b *Broker) Start(h *hub.Hub) error {
	b.h, b.node = h, h.Node()
	b.presence = newPresence(b)
	if b.opts.Conn != nil {
		b.nc = b.opts.Conn
	} else {
		opts := []nats.Option{
			nats.Name("tether node " + b.node),
			nats.MaxReconnects(-1),
			nats.ReconnectWait(DefaultReconnectWait),
			nats.RetryOnFailedConnect(true),
			nats.ConnectHandler(func(*nats.Conn) {
				if b.ready.Load() {
					b.up("connected")
				}
			}),
			nats.ReconnectHandler(func(*nats.Conn) {
				if b.ready.Load() {
					b.up("reconnected")
				}
			}),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				if b.ready.Load() {
					b.lost(err)
				}
			}),
			nats.ErrorHandler(b.asyncError),
		}
		nc, err := nats.Connect(b.opts.URL, append(opts, b.opts.NATSOptions...)...)
		if err != nil {
			return fmt.Errorf("natsbroker: connect %s: %w", b.opts.URL, err)
		}
		b.nc, b.ownConn = nc, true
	}
	if err := b.subscribe(); err != nil {
		b.closeConn()
		return err
	}
	// From here the callbacks act; what happened before is read now.
	b.ready.Store(true)
	if b.nc.IsConnected() {
		b.connected.Store(true)
		if err := b.setup(); err != nil {
			b.closeConn()
			return err
		}
	} else {
		b.lost(errors.New("NATS not reachable at start"))
	}
	if b.opts.Conn != nil {
		b.wg.Go(b.watch)
	}
	b.wg.Go(b.presence.run)
	return nil
}

// subscribe takes the core subscriptions, which nats.go renews on every
// reconnection by itself.
func (b *Broker) subscribe() error {
	if !b.opts.JetStream {
		sub, err := b.nc.Subscribe(b.opts.Prefix+".room.>", b.onCore)
		if err != nil {
			return fmt.Errorf("natsbroker: subscribe: %w", err)
		}
		b.subs = append(b.subs, sub)
	}
	subs, err := b.presence.subscribe()
	b.subs = append(b.subs, subs...)
	return err
}

// setup creates the stream and its consumer once NATS is reachable.
func (b *Broker) setup() error {
	if !b.opts.JetStream {
		return nil
	}
	b.setupMu.Lock()
	defer b.setupMu.Unlock()
	js := b.js
	if js == nil {
		var err error
		if js, err = jetstream.New(b.nc); err != nil {
			return fmt.Errorf("natsbroker: jetstream: %w", err)
		}
	}
	cfg := jetstream.StreamConfig{
		Name:              b.opts.Stream,
		Subjects:          []string{b.opts.Prefix + ".room.>"},
		MaxMsgsPerSubject: int64(b.opts.History),
		Replicas:          b.opts.Replicas,
		Discard:           jetstream.DiscardOld,
	}
	if b.opts.HistoryAge > 0 {
		cfg.MaxAge = b.opts.HistoryAge
	}
	if b.opts.MemoryStorage {
		cfg.Storage = jetstream.MemoryStorage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return fmt.Errorf("natsbroker: stream %s: %w", b.opts.Stream, err)
	}
	created := s.CachedInfo().Created
	if b.cons != nil {
		if created.Equal(b.created) {
			return nil // the ordered consumer resumes by itself
		}
		// The stream is new (NATS lost it): positions start over.
		b.log.Warn("cluster broker: the history stream was recreated: positions start over", "node", b.node, "stream", b.opts.Stream)
		b.cons.Stop()
		b.cons = nil
		b.roomMu.Lock()
		b.rooms = map[string]*roomState{}
		b.roomMu.Unlock()
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{b.opts.Prefix + ".room.>"},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return fmt.Errorf("natsbroker: consumer: %w", err)
	}
	cc, err := cons.Consume(b.onStream)
	if err != nil {
		return fmt.Errorf("natsbroker: consume: %w", err)
	}
	b.js, b.cons, b.created = js, cc, created
	b.stream.Store(&s)
	return nil
}

// up records that NATS is reachable (again).
func (b *Broker) up(how string) {
	b.connected.Store(true)
	if b.down.CompareAndSwap(true, false) {
		b.log.Info("cluster broker "+how+": delivering to every node again", "node", b.node, "server", b.nc.ConnectedUrlRedacted())
	}
	if b.opts.JetStream {
		b.wg.Go(func() { // not on nats.go's callback goroutine: setup makes requests
			if err := b.setup(); err != nil {
				b.log.Warn("cluster broker: JetStream not ready", "node", b.node, "error", err.Error())
			}
		})
	}
	b.presence.announceSoon()
}

// lost records that NATS is unreachable.
func (b *Broker) lost(err error) {
	if b.closing.Load() {
		return // Close closes the connection: not an outage
	}
	if !b.connected.Swap(false) && b.down.Load() {
		return
	}
	b.disconnects.Add(1)
	b.down.Store(true)
	msg := "unknown"
	if err != nil {
		msg = err.Error()
	}
	b.log.Warn("cluster broker disconnected: delivering to this node's connections only", "node", b.node, "error", msg)
}

// asyncError logs nats.go's asynchronous errors (a slow subscription
// dropping messages, mostly), at most one a second.
func (b *Broker) asyncError(_ *nats.Conn, sub *nats.Subscription, err error) {
	now := time.Now().UnixNano()
	last := b.lastAsync.Load()
	if now-last < int64(time.Second) || !b.lastAsync.CompareAndSwap(last, now) {
		return
	}
	subject := ""
	if sub != nil {
		subject = sub.Subject
	}
	b.log.Warn("cluster broker: NATS error", "node", b.node, "subject", subject, "error", err.Error())
}

// watch follows the state of a connection the broker did not dial (its
// callbacks belong to their owner).
func (b *Broker) watch() {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			switch ok := b.nc.IsConnected(); {
			case ok && !b.connected.Load():
				b.up("reconnected")
			case !ok && b.connected.Load():
				b.lost(errors.New("NATS connection " + b.nc.Status().String()))
			}
		}
	}
}

// Publish sends m to every node: see the package comment.
func (b *Broker) Publish(ctx context.Context, m hub.Message) (int, error) {
	if b.opts.JetStream {
		return b.publishStream(ctx, m)
	}
	n := b.h.Deliver(m)
	if !b.nc.IsConnected() {
		b.localOnly.Add(1)
		return n, nil
	}
	msg := b.natsMsg(m)
	if err := b.nc.PublishMsg(msg); err != nil {
		b.pubErrors.Add(1)
		b.localOnly.Add(1)
		return n, nil
	}
	b.published.Add(1)
	return n, nil
}

func (b *Broker) natsMsg(m hub.Message) *nats.Msg {
	msg := nats.NewMsg(b.Subject(m.Room))
	msg.Data = m.Data
	msg.Header.Set(hdrNode, b.node)
	if m.Type == tether.Binary {
		msg.Header.Set(hdrType, "binary")
	}
	return msg
}

// onCore delivers a message of another node.
func (b *Broker) onCore(msg *nats.Msg) {
	if msg.Header.Get(hdrNode) == b.node {
		return // delivered when it was published
	}
	m, ok := b.message(msg.Subject, msg.Header, msg.Data)
	if !ok {
		return
	}
	b.received.Add(1)
	b.h.Deliver(m)
}

// message rebuilds a hub.Message from a NATS message.
func (b *Broker) message(subject string, h nats.Header, data []byte) (hub.Message, bool) {
	room, ok := tokenRoom(strings.TrimPrefix(subject, b.opts.Prefix+".room."))
	if !ok {
		return hub.Message{}, false
	}
	m := hub.Message{Room: room, Type: tether.Text, Data: data, Node: h.Get(hdrNode)}
	if h.Get(hdrType) == "binary" {
		m.Type = tether.Binary
	}
	if p := h.Get(hdrPrev); p != "" {
		m.Prev, _ = strconv.ParseUint(p, 10, 64)
	}
	return m, true
}

// room returns the publishing state of room; the caller gives it back with
// done. A room's state is forgotten once nobody holds it and the room has
// been quiet for roomKeep, so a node that sees many short-lived rooms does
// not keep them all: the next publish to a forgotten room looks its last
// position up again.
func (b *Broker) room(name string) *roomState {
	now := time.Now()
	b.roomMu.Lock()
	defer b.roomMu.Unlock()
	if now.Sub(b.roomSwept) >= roomSweepEvery {
		b.roomSwept = now
		keep := b.roomKeep()
		for k, r := range b.rooms {
			if r.users == 0 && now.Sub(r.lastUsed) > keep {
				delete(b.rooms, k)
			}
		}
	}
	r := b.rooms[name]
	if r == nil {
		r = &roomState{}
		b.rooms[name] = r
	}
	r.users++
	r.lastUsed = now
	return r
}

// done gives back a state taken with room.
func (b *Broker) done(r *roomState) {
	b.roomMu.Lock()
	r.users--
	b.roomMu.Unlock()
}

// roomKeep is how long a quiet room's state is kept: twice the history's
// age (at least an hour), so that History can still tell a subscriber its
// messages aged out (a gap) for as long as they could have been kept, and a
// day when the age is unlimited.
func (b *Broker) roomKeep() time.Duration {
	if b.opts.HistoryAge <= 0 {
		return 24 * time.Hour
	}
	return max(2*b.opts.HistoryAge, time.Hour)
}

// publishStream stores m in the stream, chained to the room's previous
// message: the stream refuses it if another node published to the room
// since this one last looked, and it looks again.
func (b *Broker) publishStream(ctx context.Context, m hub.Message) (int, error) {
	sp := b.stream.Load()
	if sp == nil || !b.nc.IsConnected() {
		return b.fallback(m, errors.New("JetStream not reachable")), nil
	}
	s := *sp
	r := b.room(m.Room)
	defer b.done(r)
	r.mu.Lock()
	defer r.mu.Unlock()
	subject := b.Subject(m.Room)
	for attempt := 0; ; attempt++ {
		if !r.known {
			last, err := lastSeq(ctx, s, subject)
			if err != nil {
				return b.fallback(m, err), nil
			}
			r.last, r.known = last, true
		}
		msg := b.natsMsg(m)
		msg.Header.Set(hdrPrev, strconv.FormatUint(r.last, 10))
		ack, err := b.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(r.last))
		if err == nil {
			r.last = ack.Sequence
			b.published.Add(1)
			if b.down.Load() && b.connected.Load() && b.down.CompareAndSwap(true, false) {
				b.log.Info("cluster broker: publishing to the cluster again", "node", b.node)
			}
			return 0, nil
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) && ctx.Err() == nil {
			// Another node published to the room: the error names the
			// room's last position; take it and try again after a pause
			// that grows, so that contending nodes do not keep colliding.
			if n, ok := wrongLast(apiErr.Description); ok {
				r.last = n
			} else {
				r.known = false
			}
			if attempt > 0 {
				time.Sleep(time.Duration(rand.Int64N(int64(min(attempt, 20)) * int64(100*time.Microsecond))))
			}
			continue
		}
		return b.fallback(m, err), nil
	}
}

// wrongLast reads the room's last position from the stream's "wrong last
// sequence: N" error.
func wrongLast(desc string) (uint64, bool) {
	i := strings.LastIndexByte(desc, ':')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSpace(desc[i+1:]), 10, 64)
	return n, err == nil
}

// fallback delivers m on this node only, the stream being unreachable.
func (b *Broker) fallback(m hub.Message, err error) int {
	b.pubErrors.Add(1)
	b.localOnly.Add(1)
	if b.down.CompareAndSwap(false, true) {
		b.log.Warn("cluster broker: publish failed: delivering to this node's connections only", "node", b.node, "room", m.Room, "error", err.Error())
	}
	return b.h.Deliver(m)
}

// lastSeq returns the position of subject's last message in s, 0 when it
// has none.
func lastSeq(ctx context.Context, s jetstream.Stream, subject string) (uint64, error) {
	raw, err := s.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return raw.Sequence, nil
}

// onStream delivers a message of the stream, in the stream's order.
func (b *Broker) onStream(jm jetstream.Msg) {
	meta, err := jm.Metadata()
	if err != nil {
		return
	}
	m, ok := b.message(jm.Subject(), jm.Headers(), jm.Data())
	if !ok {
		return
	}
	m.Seq = meta.Sequence.Stream
	r := b.room(m.Room)
	if r.mu.TryLock() {
		if r.known && m.Seq > r.last {
			r.last = m.Seq
		}
		r.mu.Unlock()
	}
	b.done(r)
	b.received.Add(1)
	b.h.Deliver(m)
}

// History returns the messages of room after since: see hub.Recoverer.
// Without JetStream it returns an error: core NATS keeps nothing.
func (b *Broker) History(ctx context.Context, room string, since uint64) ([]hub.Message, *hub.Gap, error) {
	sp := b.stream.Load()
	if !b.opts.JetStream || sp == nil {
		return nil, nil, errors.New("natsbroker: no history: JetStream is off or unreachable")
	}
	s := *sp
	subject := b.Subject(room)
	last, err := lastSeq(ctx, s, subject)
	if err != nil {
		return nil, nil, err
	}
	if last == 0 {
		// The room keeps nothing. If this node saw messages after since,
		// they aged out, unless one is being published right now.
		r := b.room(room)
		r.mu.Lock()
		seen := r.known && r.last > since
		r.mu.Unlock()
		b.done(r)
		if seen {
			if last, err = lastSeq(ctx, s, subject); err != nil {
				return nil, nil, err
			}
			if last == 0 {
				return nil, &hub.Gap{Room: room, Since: since}, nil
			}
		}
	}
	if last <= since {
		// Kept messages are the room's newest: none came after since.
		return nil, nil, nil
	}
	var (
		out []hub.Message
		gap *hub.Gap
	)
	add := func(subject string, h nats.Header, data []byte, seq uint64) {
		m, ok := b.message(subject, h, data)
		if !ok {
			return
		}
		m.Seq = seq
		if len(out) == 0 && m.Prev != since {
			gap = &hub.Gap{Room: room, Since: since, Next: m.Seq}
		}
		out = append(out, m)
	}
	if last-since > fetchOver {
		err = b.fetch(ctx, s, subject, since, last, add)
	} else {
		err = getEach(ctx, s, subject, since, last, b.opts.History, add)
	}
	if err != nil {
		return nil, nil, err
	}
	if len(out) > b.opts.History {
		out = out[len(out)-b.opts.History:]
	}
	if len(out) == 0 && gap == nil {
		gap = &hub.Gap{Room: room, Since: since} // they went between the two looks
	}
	return out, gap, nil
}

// fetchOver is how many missed messages make History read them through a
// consumer, in batches, rather than with one request each.
const fetchOver = 16

// getEach reads the messages of subject after since, up to last, one
// request each.
func getEach(ctx context.Context, s jetstream.Stream, subject string, since, last uint64, limit int, add func(string, nats.Header, []byte, uint64)) error {
	for seq, n := since+1, 0; seq <= last && n < limit; n++ {
		raw, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		add(raw.Subject, raw.Header, raw.Data, raw.Sequence)
		seq = raw.Sequence + 1
	}
	return nil
}

// fetch reads the messages of subject after since, up to last, through an
// ordered consumer of its own, in batches, and deletes the consumer.
func (b *Broker) fetch(ctx context.Context, s jetstream.Stream, subject string, since, last uint64, add func(string, nats.Header, []byte, uint64)) error {
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{subject},
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       since + 1,
		InactiveThreshold: 10 * time.Second,
	})
	if err != nil {
		return err
	}
	defer func() {
		if ci := cons.CachedInfo(); ci != nil {
			dctx, cancel := context.WithTimeout(context.Background(), time.Second)
			s.DeleteConsumer(dctx, ci.Name)
			cancel()
		}
	}()
	wait := 2 * time.Second
	if d, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(d))
	}
	for {
		batch, err := cons.Fetch(256, jetstream.FetchMaxWait(wait))
		if err != nil {
			return err
		}
		n := 0
		for jm := range batch.Messages() {
			n++
			meta, err := jm.Metadata()
			if err != nil {
				continue
			}
			seq := meta.Sequence.Stream
			if seq > last {
				continue // published since the look: live delivery has it
			}
			add(jm.Subject(), jm.Headers(), jm.Data(), seq)
			if seq == last {
				return nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return err
		}
		if n == 0 {
			return nil // the rest went (aged out) meanwhile
		}
	}
}

// Position returns the position of room's last message: see hub.Recoverer.
func (b *Broker) Position(ctx context.Context, room string) (uint64, error) {
	sp := b.stream.Load()
	if !b.opts.JetStream || sp == nil {
		return 0, errors.New("natsbroker: no history: JetStream is off or unreachable")
	}
	return lastSeq(ctx, *sp, b.Subject(room))
}

// Stats returns the broker's counters; they are zero before the hub starts
// the broker.
func (b *Broker) Stats() Stats {
	nodes := 0
	if b.ready.Load() {
		nodes = b.presence.nodes()
	}
	return Stats{
		Connected:     b.connected.Load(),
		Disconnects:   b.disconnects.Load(),
		Published:     b.published.Load(),
		Received:      b.received.Load(),
		LocalOnly:     b.localOnly.Load(),
		PublishErrors: b.pubErrors.Load(),
		Nodes:         nodes,
	}
}

// Node returns the name of this node.
func (b *Broker) Node() string { return b.node }

// Close says goodbye to the other nodes, stops delivery and closes the
// connection it dialed. The hub calls it.
func (b *Broker) Close() error {
	b.once.Do(func() {
		b.closing.Store(true)
		close(b.stop)
		b.presence.goodbye()
		b.wg.Wait()
		if b.cons != nil {
			b.cons.Stop()
		}
		for _, s := range b.subs {
			s.Unsubscribe()
		}
		b.closeConn()
	})
	return nil
}

func (b *Broker) closeConn() {
	if b.ownConn {
		if b.nc.IsConnected() {
			b.nc.FlushTimeout(time.Second) // the goodbye
		}
		b.nc.Close()
	}
}
