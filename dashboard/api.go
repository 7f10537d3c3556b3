package dashboard

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tetherws/tether"
)

// connJSON is one object of /api/connections: the registry's snapshot with
// the field names of Contract 2 (docs/contracts.md), plus "node" in cluster mode.
type connJSON struct {
	tether.ConnInfo
	Node string `json:"node,omitempty"`
}

// connDetail is /api/connections/{id}: the connection and its recent
// keepalive events, oldest first; for a recently closed connection its
// final snapshot (state "closed") and its last events.
type connDetail struct {
	connJSON
	History []event `json:"history"`
}

// stateMsg is what the page shows: a connection list, the recently closed
// ones, the findings, keepalive events and the connection count over time.
// The feed sends a "hello" with every connection's history, then an
// "update" with what happened since at every tick; /api/state answers a
// hello without the type, for polling.
type stateMsg struct {
	Type        string             `json:"type,omitempty"`
	Time        time.Time          `json:"time"`
	Total       int                `json:"total"`             // live connections matching the filter
	Connections []connJSON         `json:"connections"`       // the oldest maxShown of them
	Closed      []connJSON         `json:"closed,omitzero"`   // hello: always; update: when it changed
	Findings    []tether.Finding   `json:"findings"`          // this node's, whatever the filter
	History     map[string][]event `json:"history,omitempty"` // hello: per shown connection, and per closed one that timed out
	Events      []event            `json:"events,omitempty"`  // update: since the last message
	Series      []sample           `json:"series"`            // connection count, once a second
	EventsLost  uint64             `json:"events_lost"`       // registry events the dashboard missed
	Tick        float64            `json:"tick_seconds"`      // how often updates come
	Node        string             `json:"node,omitempty"`    // this node, in cluster mode
}

// cursor is how far a feed has got: the last event and the version of the
// closed list it sent.
type cursor struct{ seq, closedVer uint64 }

// filter selects connections by the query parameters role, path, state
// and node.
type filter struct{ role, path, state, node string }

func filterFrom(q url.Values) filter {
	return filter{role: q.Get("role"), path: q.Get("path"), state: q.Get("state"), node: q.Get("node")}
}

// match reports whether ci, held by node, passes: role, state and node must
// be equal; path may be the connection's path (or URL) with or without its
// query.
func (f filter) match(ci *tether.ConnInfo, node string) bool {
	if f.role != "" && f.role != ci.Role || f.state != "" && f.state != ci.State || f.node != "" && f.node != node {
		return false
	}
	if f.path != "" && f.path != ci.Path {
		p, _, _ := strings.Cut(ci.Path, "?")
		return f.path == p
	}
	return true
}

func (h *Handler) conn(ci tether.ConnInfo) connJSON { return connJSON{ConnInfo: ci, Node: h.node} }

// listConnections lists this node's connections, then the other nodes';
// with ?state=closed, this node's recently closed ones instead.
func (h *Handler) listConnections(w http.ResponseWriter, r *http.Request) {
	f := filterFrom(r.URL.Query())
	if f.state == "closed" {
		s := h.state
		s.mu.Lock()
		s.expire(time.Now())
		out := s.closedList(f, h.node)
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, out)
		return
	}
	out := []connJSON{}
	for _, ci := range h.state.read() {
		if f.match(&ci, h.node) {
			out = append(out, h.conn(ci))
		}
	}
	for _, rc := range h.state.readRemote() {
		if f.match(&rc.ConnInfo, rc.Node) {
			out = append(out, rc)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) getConnection(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	info, hist, ok := h.state.connection(id)
	if !ok {
		for _, rc := range h.state.readRemote() {
			if rc.ID == id {
				writeJSON(w, http.StatusOK, connDetail{connJSON: rc, History: []event{}})
				return
			}
		}
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no live or recently closed connection with this id"})
		return
	}
	if hist == nil {
		hist = []event{}
	}
	writeJSON(w, http.StatusOK, connDetail{connJSON: h.conn(info), History: hist})
}

func (h *Handler) getState(w http.ResponseWriter, r *http.Request) {
	msg, _ := h.message("", filterFrom(r.URL.Query()), cursor{})
	writeJSON(w, http.StatusOK, msg)
}

// message builds a hello (kind "hello" or "") or, when kind is "update", the
// changes since cur: the current list, the events after cur.seq, the closed
// list if it changed, and the samples after the last one the client has. A
// client that fell more than maxEvents behind gets a hello instead. It
// returns the cursor to pass next time.
func (h *Handler) message(kind string, f filter, cur cursor) (stateMsg, cursor) {
	s := h.state
	var (
		fresh  []tether.ConnInfo
		remote []connJSON
	)
	if kind != "update" {
		// Updates follow the ticks, a hello is read now.
		fresh, remote = s.read(), s.readRemote()
	}
	findings := s.currentFindings()
	s.mu.Lock()
	defer s.mu.Unlock()
	if fresh != nil {
		s.list = s.merge(fresh, time.Now()) // the next tick drops it if no page watches
		s.remote = remote
	}
	msg := stateMsg{Type: kind, Time: time.Now().UTC(), EventsLost: s.lost, Tick: tickEvery.Seconds(), Node: h.node,
		Findings: findings}
	shown := h.shown(&msg, f)
	if kind == "update" && len(s.events) > 0 && s.events[0].seq > cur.seq+1 {
		kind, msg.Type = "hello", "hello" // fell behind: start over
	}
	next := cursor{seq: s.seq, closedVer: s.endVer}
	if kind != "update" || cur.closedVer != s.endVer {
		msg.Closed = s.closedList(f, h.node)
	}
	if kind != "update" {
		msg.History = map[string][]event{}
		for id := range shown {
			if t := s.conns.get(id); t != nil {
				msg.History[id] = t.history(id)
			}
		}
		s.ghostHistory(msg.Closed, msg.History)
		msg.Series = append([]sample{}, s.series...)
		return msg, next
	}
	for _, e := range s.events {
		// Events of closed connections go too: the page keeps the lane of
		// one that timed out, red marks and all.
		if e.seq > cur.seq && (shown[e.Conn] || s.conns.get(e.Conn) == nil) {
			msg.Events = append(msg.Events, e)
		}
	}
	if n := len(s.series); n > 0 {
		msg.Series = []sample{s.series[n-1]} // the page keeps the ones it has
	}
	return msg, next
}

// shown fills in the live connections of msg that pass f, this node's then
// the other nodes', and returns the IDs of this node's it lists; the caller
// holds s.mu.
func (h *Handler) shown(msg *stateMsg, f filter) map[string]bool {
	s := h.state
	shown := map[string]bool{}
	msg.Connections = []connJSON{}
	for i := range s.list {
		ci := &s.list[i]
		if !f.match(ci, h.node) {
			continue
		}
		msg.Total++
		if len(msg.Connections) < maxShown {
			msg.Connections = append(msg.Connections, h.conn(*ci))
			shown[ci.ID] = true
		}
	}
	// The other nodes' connections follow, without keepalive events: those
	// stay on their node.
	for i := range s.remote {
		rc := &s.remote[i]
		if !f.match(&rc.ConnInfo, rc.Node) {
			continue
		}
		msg.Total++
		if len(msg.Connections) < maxShown {
			msg.Connections = append(msg.Connections, *rc)
		}
	}
	return shown
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
