package tether

import (
	"context"
	"fmt"

	"github.com/tetherws/tether/internal/wire"
)

// ControlOp names a control frame handed to ConnOptions.Relay.
type ControlOp int

// The control frames a relay takes over.
const (
	ControlPing ControlOp = iota + 1 // the peer's ping: not answered by the connection
	ControlPong                      // a pong that answers none of this connection's own pings
)

func (op ControlOp) String() string {
	switch op {
	case ControlPing:
		return "ping"
	case ControlPong:
		return "pong"
	}
	return "unknown"
}

// relayControl hands a control frame to the relay, with a payload of its
// own: the read loop's buffer is reused once this returns.
func (c *conn) relayControl(op ControlOp, p []byte) {
	(*c.cfg.relay)(op, append([]byte(nil), p...))
}

// WritePing sends a ping with payload (at most 125 bytes) and returns once
// it is written; no pong is awaited or matched. It is for relays (see
// ConnOptions.Relay), which forward a peer's ping; to measure a round trip
// use Ping.
func (c *Conn) WritePing(ctx context.Context, payload []byte) error {
	return c.writeRelayed(ctx, wire.OpPing, payload)
}

// WritePong sends a pong with payload (at most 125 bytes). It is for relays
// (see ConnOptions.Relay), which answer a peer's ping with the pong the
// other side sent back; a pong nobody asked for is allowed too (RFC 6455
// section 5.5.3) and serves as a one-way heartbeat.
func (c *Conn) WritePong(ctx context.Context, payload []byte) error {
	return c.writeRelayed(ctx, wire.OpPong, payload)
}

func (c *conn) writeRelayed(ctx context.Context, op wire.Opcode, p []byte) error {
	if len(p) > wire.MaxControlPayload {
		return fmt.Errorf("tether: control payload of %d bytes, at most %d allowed", len(p), wire.MaxControlPayload)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	return c.writeControl(ctx, op, p)
}
