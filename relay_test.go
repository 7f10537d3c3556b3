package tether

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/tetherws/tether/internal/wire"
)

type relayed struct {
	op ControlOp
	p  []byte
}

// TestRelayTakesControlFrames: with Relay set, the peer's ping is handed
// over (and counted) instead of answered, a stray pong is handed over, a
// pong answering the connection's own ping still settles it, and
// WritePing/WritePong send what the relay asks.
func TestRelayTakesControlFrames(t *testing.T) {
	got := make(chan relayed, 4)
	relay := func(op ControlOp, p []byte) { got <- relayed{op, p} }
	c, peer, _ := kaClient(t, ConnOptions{PingInterval: -1, Registry: NoRegistry, Relay: relay})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	next := func() relayed {
		select {
		case r := <-got:
			return r
		case <-ctx.Done():
			t.Fatal("the relay got nothing")
		}
		return relayed{}
	}
	expect := func(op wire.Opcode, payload string) {
		t.Helper()
		h, p := peer.readFrame()
		if h.Opcode != op || string(p) != payload {
			t.Fatalf("peer read %v %q, want %v %q", h.Opcode, p, op, payload)
		}
	}

	peer.writeFrame(wire.OpPing, []byte("from peer"))
	if r := next(); r.op != ControlPing || string(r.p) != "from peer" {
		t.Fatalf("relay got %v %q", r.op, r.p)
	}
	if err := c.WritePing(ctx, []byte("forwarded")); err != nil {
		t.Fatal(err)
	}
	expect(wire.OpPing, "forwarded") // no automatic pong went before it
	if err := c.WritePong(ctx, []byte("from peer")); err != nil {
		t.Fatal(err)
	}
	expect(wire.OpPong, "from peer")
	if pk := c.PeerKeepalive(); pk.Pings != 1 {
		t.Fatalf("peer pings %d, want 1 (still counted)", pk.Pings)
	}

	peer.writeFrame(wire.OpPong, []byte("stray"))
	if r := next(); r.op != ControlPong || string(r.p) != "stray" {
		t.Fatalf("relay got %v %q", r.op, r.p)
	}

	rtt := make(chan error, 1)
	go func() { _, err := c.Ping(ctx); rtt <- err }()
	h, p := peer.readFrame()
	if h.Opcode != wire.OpPing {
		t.Fatalf("got %v, want our ping", h.Opcode)
	}
	peer.writeFrame(wire.OpPong, p)
	if err := <-rtt; err != nil {
		t.Fatalf("Ping with a relay: %v", err)
	}
	select {
	case r := <-got:
		t.Fatalf("the answer to our own ping reached the relay: %v %q", r.op, r.p)
	default:
	}
	if err := c.WritePong(ctx, bytes.Repeat([]byte("x"), 126)); err == nil {
		t.Fatal("a 126-byte pong was accepted")
	}
}

// TestNoRelayAnswersPings: without Relay the pong is automatic, as before.
func TestNoRelayAnswersPings(t *testing.T) {
	_, peer, _ := kaClient(t, ConnOptions{PingInterval: -1, Registry: NoRegistry})
	peer.writeFrame(wire.OpPing, []byte("p"))
	if h, p := peer.readFrame(); h.Opcode != wire.OpPong || string(p) != "p" {
		t.Fatalf("got %v %q, want the pong", h.Opcode, p)
	}
}
