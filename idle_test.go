package tether

import (
	"context"
	"errors"
	"testing"
	"unsafe"

	"github.com/tetherws/tether/internal/wire"
)

// TestServedConnHoldsNoQueue: a connection served with Go or Serve from the
// start never makes the read queue, the Reader, or the channels only
// closers and full queues wait on, whatever it has received: what an idle
// connection costs is its own state, not buffers it does not use.
func TestServedConnHoldsNoQueue(t *testing.T) {
	for _, mode := range []string{"Go", "Serve"} {
		t.Run(mode, func(t *testing.T) {
			cc, sc := tcpPair(t, ConnOptions{}, nil)
			ctx, cancel := context.WithCancel(context.Background())
			var end <-chan error
			if mode == "Go" {
				end = goAsync(t, sc, echoHandle(sc))
			} else {
				end = serveAsync(sc, ctx, echoHandle(sc))
				eventually(t, "Serve running", func() bool { return sc.srv.Load() != nil })
			}
			buf := make([]byte, 100<<10)
			for _, size := range []int{10, 5000, 100 << 10} {
				streamTrip(t, cc, cc, make([]byte, size), buf)
			}
			for range 2 {
				if _, err := cc.Ping(ctx); err != nil {
					t.Fatal(err)
				}
				if _, err := sc.Ping(ctx); err != nil {
					t.Fatal(err)
				}
			}
			sc.closeMu.Lock()
			closing, readDone := sc.closing, sc.readDone
			sc.closeMu.Unlock()
			pong := sc.pong.p.Load()
			switch {
			case sc.msgs.Load() != nil:
				t.Error("the read queue was made")
			case sc.mr != nil:
				t.Error("a message reader was made")
			case closing != nil || readDone != nil:
				t.Error("a closing or read-done channel was made with no one waiting")
			case pong != nil:
				t.Error("an answered ping's payload is still held")
			}
			cancel()
			cc.Close(StatusNormal, "")
			<-end
		})
	}
}

// TestReadQueueOnFirstUse: Read makes the queue, and messages received
// before any reader came wait in it.
func TestReadQueueOnFirstUse(t *testing.T) {
	cc, sc := tcpPair(t, ConnOptions{}, nil)
	ctx := context.Background()
	if err := cc.Write(ctx, Text, []byte("early")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := sc.Read(ctx); err != nil || string(p) != "early" {
		t.Fatalf("Read: %q, %v", p, err)
	}
	if sc.msgs.Load() == nil {
		t.Fatal("no read queue after Read")
	}
}

// TestFullQueueDoesNotHoldClose: with the queue full and the read loop
// waiting to deliver, Close still completes its handshake (the loop gives up
// waiting once the close frame is queued), and what was queued can still be
// read.
func TestFullQueueDoesNotHoldClose(t *testing.T) {
	c, nc := pipeConn(t, wire.Client, ConnOptions{PingInterval: -1, ReadQueue: 1, Registry: NoRegistry, Logger: discard})
	peer := newRawPeer(t, nc)
	peer.writeFrame(wire.OpText, []byte("one")) // fills the queue: the read loop waits (net.Pipe: a second write would too)
	eventually(t, "the read loop waiting on the full queue", func() bool {
		c.closeMu.Lock()
		defer c.closeMu.Unlock()
		return c.closing != nil
	})
	closed := make(chan error, 1)
	go func() { closed <- c.Close(StatusNormal, "bye") }()
	h, _ := peer.readFrame()
	if h.Opcode != wire.OpClose {
		t.Fatalf("peer got %v, want CLOSE", h.Opcode)
	}
	peer.writeFrame(wire.OpClose, wire.AppendClose(nil, uint16(StatusNormal), ""))
	nc.Close()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, p, err := c.Read(context.Background()); err != nil || string(p) != "one" {
		t.Fatalf("Read after close: %q, %v, want the queued message", p, err)
	}
	var ce *CloseError
	for {
		_, _, err := c.Read(context.Background())
		if errors.As(err, &ce) {
			break
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
	}
	if ce.Code != StatusNormal {
		t.Fatalf("ended with %v", ce)
	}
}

// TestClosingChanAfterClose: the closing channel made after the close frame
// went out is already closed, so a delivery that starts waiting then does
// not wait.
func TestClosingChanAfterClose(t *testing.T) {
	c, nc := pipeConn(t, wire.Client, ConnOptions{PingInterval: -1, Registry: NoRegistry, Logger: discard})
	peer := newRawPeer(t, nc)
	go c.Close(StatusNormal, "")
	peer.readFrame()
	select {
	case <-c.closingChan():
	default:
		t.Fatal("closing channel open after the close frame was sent")
	}
	nc.Close()
}

// TestConnFitsItsSizeClass: every idle connection holds one conn, which the
// allocator rounds up to a size class, after an 8-byte header for objects
// of more than 512 bytes that hold pointers: up to 568 bytes it takes 576,
// past them 640. Adding a field that crosses the line costs every
// connection 64 bytes: make room (pack small fields together, keep times as
// nanos, move what few connections use behind a pointer) or say why.
func TestConnFitsItsSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(conn{}); n > 568 {
		t.Fatalf("conn is %d bytes, past 568: with its header it leaves the 576-byte size class", n)
	}
}
