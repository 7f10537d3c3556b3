package tether

import (
	"context"
	"testing"
	"time"

	"github.com/tetherws/tether/internal/wire"
)

// badFrame is a text frame with a reserved bit set: a protocol error.
func badFrame() []byte {
	return append(wire.AppendHeader(nil, wire.Header{Fin: true, Rsv: 0x20, Opcode: wire.OpText, Length: 3}), "bad"...)
}

// expectFrame reads the peer's next frame and checks its opcode and payload
// (for a close frame, its code).
func expectFrame(t *testing.T, peer *rawPeer, op wire.Opcode, payload string, code StatusCode) {
	t.Helper()
	h, p := peer.readFrame()
	switch {
	case h.Opcode != op:
		t.Fatalf("peer got %v %q, want %v", h.Opcode, p, op)
	case op == wire.OpClose:
		if got, _, _ := wire.ParseClose(p); StatusCode(got) != code {
			t.Fatalf("peer got close %d, want %d", got, code)
		}
	case string(p) != payload:
		t.Fatalf("peer got %q, want %q", p, payload)
	}
}

// TestProtocolErrorInOrder: two good messages and a bad frame arrive
// together. The application reads and echoes both, and only then does the
// connection fail: the peer gets both echoes, then the 1002 close frame,
// and the third Read returns the close error.
func TestProtocolErrorInOrder(t *testing.T) {
	for _, stream := range []bool{false, true} {
		name := map[bool]string{false: "Read", true: "Reader"}[stream]
		t.Run(name, func(t *testing.T) {
			c, peer, _ := kaClient(t, ConnOptions{PingInterval: -1, Logger: discard, Registry: NoRegistry})
			peer.writeFrame(wire.OpText, []byte("one"))
			peer.writeFrame(wire.OpText, []byte("two"))
			peer.nc.Write(badFrame())
			ctx := context.Background()
			for _, want := range []string{"one", "two"} {
				var got string
				var err error
				if stream {
					var r interface{ Read([]byte) (int, error) }
					_, r, err = c.Reader(ctx)
					if err == nil {
						buf := make([]byte, 16)
						n, _ := r.Read(buf)
						got = string(buf[:n])
					}
				} else {
					var p []byte
					_, p, err = c.Read(ctx)
					got = string(p)
				}
				if err != nil || got != want {
					t.Fatalf("read %q, %v; want %q", got, err, want)
				}
				if err := c.Write(ctx, Text, []byte(want)); err != nil {
					t.Fatalf("echo of %q: %v", want, err)
				}
			}
			if _, _, err := c.Read(ctx); CloseStatus(err) != StatusProtocolError {
				t.Fatalf("third Read: %v, want 1002", err)
			}
			expectFrame(t, peer, wire.OpText, "one", 0)
			expectFrame(t, peer, wire.OpText, "two", 0)
			expectFrame(t, peer, wire.OpClose, "", StatusProtocolError)
		})
	}
}

// TestProtocolErrorBounded: an application that never comes for the good
// messages does not keep the connection open: it fails with 1002 once
// CloseTimeout has passed, and the messages can still be read.
func TestProtocolErrorBounded(t *testing.T) {
	c, peer, fc := kaClient(t, ConnOptions{PingInterval: -1, CloseTimeout: 3 * time.Second, Logger: discard, Registry: NoRegistry})
	peer.writeFrame(wire.OpText, []byte("one"))
	peer.nc.Write(badFrame())
	eventually(t, "the end held, its bound set", func() bool { return fc.Pending() == 1 })
	fc.Advance(3*time.Second - time.Millisecond)
	select {
	case f := <-peer.frames:
		t.Fatalf("peer got %v before the bound", f.h.Opcode)
	case <-time.After(20 * time.Millisecond):
	}
	if c.Err() != nil {
		t.Fatalf("ended before the bound: %v", c.Err())
	}
	fc.Advance(time.Millisecond)
	expectFrame(t, peer, wire.OpClose, "", StatusProtocolError)
	if _, p, err := c.Read(context.Background()); err != nil || string(p) != "one" {
		t.Fatalf("Read after the failure: %q, %v; want the message received before it", p, err)
	}
	if _, _, err := c.Read(context.Background()); CloseStatus(err) != StatusProtocolError {
		t.Fatalf("then: %v, want 1002", err)
	}
}

// TestPeerCloseInOrder: a message and the peer's close frame arrive
// together; the application's echo goes out before the close frame that
// answers the peer's.
func TestPeerCloseInOrder(t *testing.T) {
	c, peer, _ := kaClient(t, ConnOptions{PingInterval: -1, Logger: discard, Registry: NoRegistry})
	peer.writeFrame(wire.OpText, []byte("last words"))
	peer.writeFrame(wire.OpClose, wire.AppendClose(nil, uint16(StatusGoingAway), "bye"))
	ctx := context.Background()
	_, p, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Write(ctx, Text, p); err != nil {
		t.Fatalf("echo: %v", err)
	}
	if _, _, err := c.Read(ctx); CloseStatus(err) != StatusGoingAway {
		t.Fatalf("Read: %v, want the peer's 1001", err)
	}
	expectFrame(t, peer, wire.OpText, "last words", 0)
	expectFrame(t, peer, wire.OpClose, "", StatusGoingAway)
}

// TestCloseDuringHold: Close called while an end is held does not wait for
// the bound.
func TestCloseDuringHold(t *testing.T) {
	c, peer, _ := kaClient(t, ConnOptions{PingInterval: -1, Logger: discard, Registry: NoRegistry})
	peer.writeFrame(wire.OpText, []byte("one"))
	peer.writeFrame(wire.OpClose, wire.AppendClose(nil, uint16(StatusNormal), ""))
	done := make(chan error, 1)
	go func() { done <- c.Close(StatusNormal, "") }()
	expectFrame(t, peer, wire.OpClose, "", StatusNormal)
	peer.nc.Close() // a server closes TCP after the handshake
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited on the held end")
	}
}

// TestPeerCloseAfterLastMessage: an application that has taken every
// message and then stops reading (it only writes from now on) does not
// hold the peer's close: the answer goes out at once, not after
// CloseTimeout (the fake clock never moves here).
func TestPeerCloseAfterLastMessage(t *testing.T) {
	c, peer, _ := kaClient(t, ConnOptions{PingInterval: -1, Logger: discard, Registry: NoRegistry})
	peer.writeFrame(wire.OpText, []byte("only"))
	if _, p, err := c.Read(context.Background()); err != nil || string(p) != "only" {
		t.Fatalf("Read: %q, %v", p, err)
	}
	peer.writeFrame(wire.OpClose, wire.AppendClose(nil, uint16(StatusNormal), ""))
	expectFrame(t, peer, wire.OpClose, "", StatusNormal)
}
