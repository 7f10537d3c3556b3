package hub

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/tetherws/tether"
)

// Subprotocol is the WebSocket subprotocol of subscribers that receive
// envelopes (Hub.Subscribe): a client offers it, a server that accepts it
// subscribes the connection instead of joining it.
const Subprotocol = "tether.hub.v1"

// Envelope is what a subscriber receives (Hub.Subscribe): a message with
// its room, position and node, or the signal that messages were lost.
//
// On the wire it is a JSON text message:
//
//	{"type":"subscribed","room":"news","seq":41}
//	{"type":"message","room":"news","seq":42,"node":"n2","data":"hello"}
//	{"type":"message","room":"news","seq":43,"node":"n1","binary":true,"data":"AAEC"}
//	{"type":"gap","room":"news","since":17,"next":40}
//
// A subscriber's first envelope is "subscribed": seq is the position it
// starts from (the room's last message when it subscribed afresh, its own
// since when it resumes), absent without history; a subscriber keeps the
// seq of the last envelope it got and resumes after it. In messages, seq
// is absent when the broker keeps no history, or could not number the
// message (it was published while the history was unreachable). Binary
// data is base64. A gap says that the messages after position since were
// lost, up to next (absent when unknown): the subscriber should catch up by
// other means.
type Envelope struct {
	Kind  string // "message" or "gap"
	Room  string
	Seq   uint64
	Node  string
	Type  tether.MessageType // of Data
	Data  []byte
	Since uint64 // gap: the last position the subscriber had
	Next  uint64 // gap: the first position that follows, 0 when unknown
}

// Envelope kinds.
const (
	KindSubscribed = "subscribed"
	KindMessage    = "message"
	KindGap        = "gap"
)

type envelopeJSON struct {
	Type   string `json:"type"`
	Room   string `json:"room"`
	Seq    uint64 `json:"seq,omitempty"`
	Node   string `json:"node,omitempty"`
	Binary bool   `json:"binary,omitempty"`
	Data   string `json:"data,omitempty"`
	Since  uint64 `json:"since,omitempty"`
	Next   uint64 `json:"next,omitempty"`
}

// ParseEnvelope reads one message a subscriber received. An envelope of a
// kind this version does not know is returned with its Kind and no error:
// a subscriber should skip it, so that servers may add kinds.
func ParseEnvelope(p []byte) (Envelope, error) {
	var j envelopeJSON
	if err := json.Unmarshal(p, &j); err != nil {
		return Envelope{}, fmt.Errorf("hub: envelope: %w", err)
	}
	e := Envelope{Kind: j.Type, Room: j.Room, Seq: j.Seq, Node: j.Node, Since: j.Since, Next: j.Next}
	switch j.Type {
	case KindGap, KindSubscribed:
	case KindMessage:
		e.Type, e.Data = tether.Text, []byte(j.Data)
		if j.Binary {
			b, err := base64.StdEncoding.DecodeString(j.Data)
			if err != nil {
				return Envelope{}, fmt.Errorf("hub: envelope: binary data: %w", err)
			}
			e.Type, e.Data = tether.Binary, b
		}
	case "":
		return Envelope{}, errors.New("hub: envelope without a type")
	}
	return e, nil
}

// envelopeOf encodes m for a subscriber.
func envelopeOf(m Message) (tether.MessageType, []byte) {
	j := envelopeJSON{Type: KindMessage, Room: m.Room, Seq: m.Seq, Node: m.Node, Data: string(m.Data)}
	if m.Type == tether.Binary {
		j.Binary, j.Data = true, base64.StdEncoding.EncodeToString(m.Data)
	}
	p, _ := json.Marshal(j) // strings and numbers only: it cannot fail
	return tether.Text, p
}

func subscribedOf(room string, seq uint64) (tether.MessageType, []byte) {
	p, _ := json.Marshal(envelopeJSON{Type: KindSubscribed, Room: room, Seq: seq})
	return tether.Text, p
}

func gapOf(g *Gap) (tether.MessageType, []byte) {
	p, _ := json.Marshal(envelopeJSON{Type: KindGap, Room: g.Room, Since: g.Since, Next: g.Next})
	return tether.Text, p
}

// SinceFromRequest reads the position a reconnecting subscriber asks to
// resume after: the query parameter "since", 0 (a fresh subscription) when
// absent or malformed.
func SinceFromRequest(r *http.Request) uint64 {
	n, err := strconv.ParseUint(r.URL.Query().Get("since"), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// Subscribe adds c to room like Join, and from then on sends it every
// message in an Envelope, with the room, the position in the room's history
// (with a Recoverer broker) and the publishing node. c should have
// negotiated Subprotocol. The first envelope is "subscribed", with the
// position the subscriber starts from.
//
// With since > 0, c is resuming: after "subscribed" it receives the
// messages of room after position since, oldest first, from the broker's
// history, then the live ones, each exactly once and in order. When some
// of the missed messages are no longer kept (beyond the history's size or
// age), or the broker keeps no history, a gap envelope comes first.
// Subscribe returns when the missed messages are queued: it waits for c's
// queue while they are many, until ctx ends.
func (h *Hub) Subscribe(ctx context.Context, room string, c *tether.Conn, since uint64) error {
	rec, _ := h.broker.(Recoverer)
	// A fresh subscriber starts at the room's last message, looked up
	// before it joins: what comes after reaches it live, or from the
	// history if it was delivered here before the join.
	fresh := since == 0
	if fresh && rec != nil {
		var err error
		if since, err = rec.Position(ctx, room); err != nil {
			h.log.Warn("hub: history unavailable: the subscriber starts without a position", "conn", c.ID(), "room", room, "error", err.Error())
			rec, since = nil, 0
		}
	}
	h.mu.Lock()
	cl, err := h.joinLocked(room, c)
	if err != nil {
		h.mu.Unlock()
		return err
	}
	cl.envelope.Store(true)
	// Live messages wait while the subscriber gets its start.
	r := h.rooms[room]
	r.mu.Lock()
	if r.replaying == nil {
		r.replaying = map[*client][]Message{}
	}
	r.replaying[cl] = nil
	r.mu.Unlock()
	h.mu.Unlock()
	last := since
	err = h.push(ctx, cl, prepare(subscribedOf(room, since)))
	if err == nil && (!fresh || rec != nil) {
		last, err = h.replay(ctx, rec, cl, room, since, fresh)
	}
	h.release(cl, room, last)
	return err
}

// replay queues for cl the messages of room after since and returns the
// position of the last one. A fresh subscriber is never told of a gap: it
// missed nothing.
func (h *Hub) replay(ctx context.Context, rec Recoverer, cl *client, room string, since uint64, fresh bool) (uint64, error) {
	var (
		msgs []Message
		gap  *Gap
	)
	if rec != nil {
		var err error
		msgs, gap, err = rec.History(ctx, room, since)
		if err != nil {
			h.log.Warn("hub: history unavailable: the subscriber gets a gap", h.connAttrs(cl, "room", room, "since", since, "error", err.Error())...)
			msgs, gap = nil, &Gap{Room: room, Since: since}
		}
	} else {
		gap = &Gap{Room: room, Since: since}
	}
	if gap != nil && !fresh {
		if err := h.push(ctx, cl, prepare(gapOf(gap))); err != nil {
			return since, err
		}
	}
	last := since
	for _, m := range msgs {
		if m.Seq <= last {
			continue
		}
		if err := h.push(ctx, cl, prepare(envelopeOf(m))); err != nil {
			return last, err
		}
		last = m.Seq
	}
	return last, nil
}

// errGone is returned by push when the connection or the hub ended.
var errGone = errors.New("hub: subscriber gone")

// push queues pm for cl, waiting for room in its queue.
func (h *Hub) push(ctx context.Context, cl *client, pm *tether.PreparedMessage) error {
	if pm == nil {
		return nil
	}
	select {
	case cl.q <- pm:
		h.queued.Add(1)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-cl.conn.Done():
		return errGone
	case <-h.done:
		return ErrClosed
	}
}

// release ends cl's replay in room: the live messages held meanwhile follow,
// but for those the replay already sent (position up to last).
func (h *Hub) release(cl *client, room string, last uint64) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	r := h.rooms[room]
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	held, ok := r.replaying[cl]
	if !ok {
		return
	}
	delete(r.replaying, cl)
	if last > 0 {
		if r.after == nil {
			r.after = map[*client]uint64{}
		}
		r.after[cl] = last
	}
	n := 0
	for _, m := range held {
		if m.Seq != 0 && m.Seq <= last {
			continue
		}
		if cl.evicted.Load() {
			break
		}
		if pm := prepare(envelopeOf(m)); pm != nil && h.offer(cl, pm) {
			n++
		}
	}
	h.queued.Add(int64(n))
}

// LocalPresence returns this node's connections, sorted by ID: the members
// of its rooms, or with Options.Registry every connection of the registry,
// each with its rooms.
func (h *Hub) LocalPresence() []Presence {
	out := h.localPresence()
	slices.SortFunc(out, func(a, b Presence) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (h *Hub) localPresence() []Presence {
	h.mu.RLock()
	rooms := make(map[string][]string, len(h.clients))
	var members []*tether.Conn
	for c, cl := range h.clients {
		rs := make([]string, 0, len(cl.rooms))
		for name := range cl.rooms {
			rs = append(rs, name)
		}
		slices.Sort(rs)
		rooms[c.ID()] = rs
		members = append(members, c)
	}
	h.mu.RUnlock()
	var out []Presence
	if h.reg != nil {
		out = make([]Presence, 0, h.reg.Len())
		h.reg.Range(func(ci tether.ConnInfo) bool {
			rs := rooms[ci.ID]
			if rs == nil {
				rs = []string{}
			}
			out = append(out, Presence{ConnInfo: ci, Node: h.node, Rooms: rs})
			return true
		})
		return out
	}
	out = make([]Presence, 0, len(members))
	for _, c := range members {
		out = append(out, Presence{ConnInfo: c.Info(), Node: h.node, Rooms: rooms[c.ID()]})
	}
	return out
}

// Presence returns the connections of the whole cluster: this node's and,
// with a PresenceBroker, the other nodes' as they last announced them.
func (h *Hub) Presence() []Presence {
	out := h.LocalPresence()
	if pb, ok := h.broker.(PresenceBroker); ok {
		out = append(out, pb.RemotePresence()...)
	}
	return out
}
