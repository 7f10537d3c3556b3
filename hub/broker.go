package hub

import (
	"context"

	"github.com/tetherws/tether"
)

// Message is one broadcast as a Broker carries it between nodes.
type Message struct {
	Room string
	Type tether.MessageType
	Data []byte
	// Node is the node that published it (Options.Node of its hub).
	Node string
	// Seq is the message's position in the room's history when the broker
	// keeps one (a Recoverer), 0 otherwise. Positions grow along a room
	// but need not be consecutive: rooms may share one numbering.
	Seq uint64
	// Prev is the Seq of the message before it in the same room, 0 for the
	// room's first: with it a lost message can be told from a quiet room.
	Prev uint64
}

// Broker carries broadcasts between the hubs of a cluster, one per node.
// Each node publishes a message once, whatever the number of connections;
// the broker hands it to every node, and each node's hub queues it for its
// own members of the room.
//
// Without a broker (Options.Broker nil) a hub is a single node: Broadcast
// queues the message for the local members and that is all.
type Broker interface {
	// Start attaches the broker to h. It is called once, by New; the broker
	// delivers messages with h.Deliver and may read h.Node and
	// h.LocalPresence.
	Start(h *Hub) error
	// Publish sends m to the members of m.Room on every node, this one
	// included, exactly once per node. A broker either delivers on this
	// node before Publish returns, and returns how many members took it,
	// or delivers later in the cluster's order, and returns 0. When the
	// other nodes cannot be reached, a broker still delivers locally and
	// says so (counts and logs): it returns an error only when the message
	// reached no one.
	Publish(ctx context.Context, m Message) (int, error)
	// Close stops the broker's delivery. Hub.Close calls it.
	Close() error
}

// Recoverer is a Broker that keeps each room's recent messages, so that a
// subscriber that reconnects gets what it missed (Hub.Subscribe).
type Recoverer interface {
	Broker
	// History returns the messages of room after position since, oldest
	// first, and a non-nil gap when some of them are no longer kept.
	History(ctx context.Context, room string, since uint64) ([]Message, *Gap, error)
	// Position returns the position of room's last message, 0 when it has
	// none.
	Position(ctx context.Context, room string) (uint64, error)
}

// Gap says that messages of Room after Since were lost to the subscriber:
// no longer kept (beyond the history's size or age), or never numbered
// (published while the history was unreachable). Next is the position of
// the first message that follows, 0 when unknown.
type Gap struct {
	Room  string
	Since uint64
	Next  uint64
}

// Presence is one connection as the cluster sees it: its snapshot, the
// node that holds it and the rooms it is in. It marshals to the object of
// the dashboard's /api/connections with "node" and "rooms" added.
type Presence struct {
	tether.ConnInfo
	Node  string   `json:"node"`
	Rooms []string `json:"rooms"`
}

// PresenceBroker is a Broker that shares presence between nodes.
type PresenceBroker interface {
	Broker
	// RemotePresence returns the connections of the other live nodes, as
	// they last announced them.
	RemotePresence() []Presence
}
