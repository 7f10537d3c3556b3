package natsbroker

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/tetherws/tether/hub"
)

// presenceChunk is how many connections go in one presence message: NATS
// messages are limited (1 MiB by default) and a connection takes about
// 600 bytes of JSON.
const presenceChunk = 500

// announcement is one presence message: part Part of Parts of the node's
// connections at generation Gen. Bye says the node is leaving; Alive that
// it is still there, its connections unchanged since the last generation.
type announcement struct {
	Node     string         `json:"node"`
	Instance string         `json:"instance"`
	Gen      uint64         `json:"gen"`
	Part     int            `json:"part"`
	Parts    int            `json:"parts"`
	Interval float64        `json:"interval_s"`
	Bye      bool           `json:"bye,omitempty"`
	Alive    bool           `json:"alive,omitempty"`
	Conns    []hub.Presence `json:"conns"`
}

// fullEvery is how often a node announces all its connections even when
// the set has not changed, so that their keepalive health stays fresh
// elsewhere: every fullEvery intervals.
const fullEvery = 5

// presence announces this node's connections every interval (and soon
// after a node says hello) and keeps the other nodes' announcements until
// they go quiet for three intervals.
type presence struct {
	b        *Broker
	soon     chan struct{}
	instance string // tells this process from another that took its node name
	clash    atomic.Bool

	mu    sync.Mutex
	gen   uint64
	peers map[string]*peer

	// Of the announcing goroutine: the set last announced in full, and how
	// many intervals ago.
	lastSet string
	age     int
	force   bool // a hello came: announce in full
}

type peer struct {
	seen    time.Time
	ttl     time.Duration
	conns   []hub.Presence
	gen     uint64                 // of the parts being assembled
	pending map[int][]hub.Presence // parts of gen received so far
	parts   int
}

func newPresence(b *Broker) *presence {
	return &presence{b: b, soon: make(chan struct{}, 1), peers: map[string]*peer{}, instance: strconv.FormatUint(rand.Uint64(), 36)}
}

func (p *presence) subject(node string) string {
	return p.b.opts.Prefix + ".presence." + roomToken(node)
}

func (p *presence) subscribe() ([]*nats.Subscription, error) {
	hello, err := p.b.nc.Subscribe(p.b.opts.Prefix+".presence-hello", func(*nats.Msg) {
		p.mu.Lock()
		p.force = true
		p.mu.Unlock()
		p.announceSoon()
	})
	if err != nil {
		return nil, err
	}
	ann, err := p.b.nc.Subscribe(p.b.opts.Prefix+".presence.*", p.receive)
	if err != nil {
		hello.Unsubscribe()
		return nil, err
	}
	return []*nats.Subscription{hello, ann}, nil
}

func (p *presence) announceSoon() {
	select {
	case p.soon <- struct{}{}:
	default:
	}
}

// run announces until the broker stops. It first asks the other nodes to
// announce themselves, so that a new node sees the cluster at once.
func (p *presence) run() {
	p.b.nc.Publish(p.b.opts.Prefix+".presence-hello", nil)
	t := time.NewTicker(p.b.opts.PresenceInterval)
	defer t.Stop()
	p.announce(false)
	for {
		select {
		case <-p.b.stop:
			return
		case <-t.C:
		case <-p.soon:
		}
		p.announce(false)
	}
}

// announce publishes this node's connections, in parts; or, when the set of
// connections and their rooms is the one announced last, a short "alive"
// but every fullEvery times.
func (p *presence) announce(bye bool) {
	if !p.b.nc.IsConnected() {
		return
	}
	var conns []hub.Presence
	if !bye {
		conns = p.b.h.LocalPresence()
	}
	set := setKey(conns)
	p.mu.Lock()
	force := p.force
	p.force = false
	if !bye && !force && set == p.lastSet && p.age+1 < fullEvery {
		p.age++
		gen := p.gen
		p.mu.Unlock()
		data, _ := json.Marshal(announcement{Node: p.b.node, Instance: p.instance, Gen: gen, Parts: 1, Alive: true, Interval: p.b.opts.PresenceInterval.Seconds()})
		p.b.nc.Publish(p.subject(p.b.node), data)
		return
	}
	p.lastSet, p.age = set, 0
	p.gen++
	gen := p.gen
	p.mu.Unlock()
	parts := max(1, (len(conns)+presenceChunk-1)/presenceChunk)
	for i := range parts {
		chunk := conns[min(i*presenceChunk, len(conns)):min((i+1)*presenceChunk, len(conns))]
		a := announcement{Node: p.b.node, Instance: p.instance, Gen: gen, Part: i, Parts: parts, Bye: bye,
			Interval: p.b.opts.PresenceInterval.Seconds(), Conns: chunk}
		data, err := json.Marshal(a)
		if err != nil {
			return
		}
		p.b.nc.Publish(p.subject(p.b.node), data)
	}
}

// setKey identifies a set of connections and their rooms.
func setKey(conns []hub.Presence) string {
	var sb strings.Builder
	for _, c := range conns {
		sb.WriteString(c.ID)
		for _, r := range c.Rooms {
			sb.WriteByte(0)
			sb.WriteString(r)
		}
		sb.WriteByte(1)
	}
	return sb.String()
}

// goodbye tells the other nodes this one is leaving.
func (p *presence) goodbye() {
	p.announce(true)
}

// receive files another node's announcement.
func (p *presence) receive(msg *nats.Msg) {
	var a announcement
	if json.Unmarshal(msg.Data, &a) != nil || a.Parts < 1 || a.Part < 0 || a.Part >= a.Parts {
		return
	}
	if a.Node == p.b.node {
		if a.Instance != p.instance && p.clash.CompareAndSwap(false, true) {
			// Without JetStream each would take the other's broadcasts
			// for its own and drop them.
			p.b.log.Error("cluster broker: another process runs as this node: give each node its own name", "node", p.b.node)
		}
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if a.Bye {
		delete(p.peers, a.Node)
		return
	}
	pr := p.peers[a.Node]
	if pr == nil {
		pr = &peer{}
		p.peers[a.Node] = pr
	}
	pr.seen = time.Now()
	pr.ttl = 3 * time.Duration(a.Interval*float64(time.Second))
	if a.Alive {
		if a.Gen != pr.gen {
			// Its last full announcement was lost here: ask again.
			p.b.nc.Publish(p.b.opts.Prefix+".presence-hello", nil)
		}
		return
	}
	if a.Gen != pr.gen || pr.pending == nil {
		if a.Gen < pr.gen {
			return // an older round, overtaken
		}
		pr.gen, pr.parts, pr.pending = a.Gen, a.Parts, map[int][]hub.Presence{}
	}
	pr.pending[a.Part] = a.Conns
	if len(pr.pending) < pr.parts {
		return
	}
	all := make([]hub.Presence, 0, pr.parts*presenceChunk)
	for i := range pr.parts {
		all = append(all, pr.pending[i]...)
	}
	for i := range all {
		all[i].Node = a.Node // whatever the sender wrote
	}
	pr.conns, pr.pending = all, nil
}

// remote returns the connections of the live peers, sorted by node.
func (p *presence) remote() []hub.Presence {
	p.mu.Lock()
	defer p.mu.Unlock()
	nodes := p.liveLocked()
	var out []hub.Presence
	for _, name := range nodes {
		out = append(out, p.peers[name].conns...)
	}
	return out
}

// liveLocked forgets the peers gone quiet (their connections went with
// them) and returns the others' names, sorted. The caller holds p.mu.
func (p *presence) liveLocked() []string {
	now := time.Now()
	nodes := make([]string, 0, len(p.peers))
	for name, pr := range p.peers {
		if pr.ttl > 0 && now.Sub(pr.seen) > pr.ttl {
			delete(p.peers, name)
			continue
		}
		nodes = append(nodes, name)
	}
	slices.Sort(nodes)
	return nodes
}

// nodes counts the live nodes, this one included.
func (p *presence) nodes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.liveLocked()) + 1
}

// RemotePresence returns the connections of the other live nodes, as they
// last announced them: see hub.PresenceBroker.
func (b *Broker) RemotePresence() []hub.Presence { return b.presence.remote() }
