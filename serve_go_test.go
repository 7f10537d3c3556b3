package tether

import (
	"context"
	"errors"
	"net"
	"runtime"
	"testing"
	"weak"

	"github.com/tetherws/tether/internal/wire"
)

// goAsync starts c.Go(handle, ...) and returns the channel done's error
// arrives on; it fails the test if Go refuses.
func goAsync(t *testing.T, c *Conn, handle func(MessageType, []byte) error) <-chan error {
	t.Helper()
	errc := make(chan error, 1)
	if err := c.Go(handle, func(err error) { errc <- err }); err != nil {
		t.Fatalf("Go: %v", err)
	}
	return errc
}

// TestGoReadConflict: Go refuses while Read waits; while Go serves, Read,
// Reader, Serve and a second Go refuse, with ErrReadConflict.
func TestGoReadConflict(t *testing.T) {
	cc, sc := tcpPair(t, ConnOptions{}, nil)
	called := false
	whileReadWaits(t, sc, func() {
		if err := sc.Go(echoHandle(sc), func(error) { called = true }); !errors.Is(err, ErrReadConflict) {
			t.Fatalf("Go during Read: %v, want ErrReadConflict", err)
		}
	})
	if called {
		t.Fatal("done called after Go refused")
	}

	errc := goAsync(t, sc, echoHandle(sc))
	bg := context.Background()
	if _, _, err := sc.Read(bg); !errors.Is(err, ErrReadConflict) {
		t.Fatalf("Read during Go: %v", err)
	}
	if _, _, err := sc.Reader(bg); !errors.Is(err, ErrReadConflict) {
		t.Fatalf("Reader during Go: %v", err)
	}
	if err := sc.Serve(bg, echoHandle(sc)); !errors.Is(err, ErrReadConflict) {
		t.Fatalf("Serve during Go: %v", err)
	}
	if err := sc.Go(echoHandle(sc), nil); !errors.Is(err, ErrReadConflict) {
		t.Fatalf("second Go: %v", err)
	}
	if err := sc.Go(nil, nil); err == nil {
		t.Fatal("Go with a nil handle accepted")
	}
	buf := make([]byte, 5)
	streamTrip(t, cc, cc, []byte("hello"), buf) // still serving after the refusals
	cc.Close(StatusNormal, "")
	<-errc
}

// TestGoHandleErrorQueued: a handle error on a message queued before Go,
// handled by Go's caller, closes the connection the same way.
func TestGoHandleErrorQueued(t *testing.T) {
	c, nc := pipeConn(t, wire.Client, ConnOptions{PingInterval: -1, Registry: NoRegistry, Logger: discard})
	peer := newRawPeer(t, nc)
	peer.writeFrame(wire.OpText, []byte("queued"))
	eventually(t, "queued message", func() bool { return c.Stats().MessagesIn == 1 })
	boom := errors.New("boom")
	errc := goAsync(t, c, func(MessageType, []byte) error { return boom })
	h, p := peer.readFrame()
	if code, _, _ := wire.ParseClose(p); h.Opcode != wire.OpClose || code != uint16(StatusInternalError) {
		t.Fatalf("peer got %v %d, want CLOSE 1011", h.Opcode, code)
	}
	peer.writeFrame(wire.OpClose, wire.AppendClose(nil, uint16(StatusInternalError), ""))
	nc.Close()
	if err := <-errc; err != boom {
		t.Fatalf("done got %v, want handle's error", err)
	}
}

// TestGoDoneMayClose: done runs after the read loop, so closing from it
// does not wait for itself.
func TestGoDoneMayClose(t *testing.T) {
	cc, sc := tcpPair(t, ConnOptions{}, nil)
	ended := make(chan error, 1)
	if err := sc.Go(echoHandle(sc), func(err error) {
		sc.CloseNow()
		sc.Close(StatusNormal, "")
		ended <- err
	}); err != nil {
		t.Fatal(err)
	}
	cc.CloseNow()
	var ce *CloseError
	if err := <-ended; !errors.As(err, &ce) || ce.Code != StatusAbnormal {
		t.Fatalf("done got %v, want 1006", err)
	}
}

// TestGoAfterEnd: Go on a connection that has ended calls done at once with
// its end, after the messages received before it.
func TestGoAfterEnd(t *testing.T) {
	c, nc := pipeConn(t, wire.Client, ConnOptions{PingInterval: -1, Registry: NoRegistry, Logger: discard})
	peer := newRawPeer(t, nc)
	peer.writeFrame(wire.OpText, []byte("last words"))
	nc.Close()
	<-c.Done()
	var got []string
	errc := goAsync(t, c, func(_ MessageType, p []byte) error {
		got = append(got, string(p))
		return nil
	})
	select {
	case err := <-errc:
		if ce, ok := err.(*CloseError); !ok || ce.Code != StatusAbnormal {
			t.Fatalf("done got %v, want 1006", err)
		}
	default:
		t.Fatal("done not called before Go returned on an ended connection")
	}
	if len(got) != 1 || got[0] != "last words" {
		t.Fatalf("handled %q, want the message received before the end", got)
	}
}

// goOwned starts Go on a connection that nothing but the connection
// itself references, with a handle that does not capture it. It returns a
// weak pointer to the *Conn, its inner state and the peer's end.
func goOwned(t *testing.T, handled chan<- string, ended chan<- error) (weak.Pointer[Conn], *conn, net.Conn) {
	a, b := net.Pipe()
	opts := ConnOptions{PingInterval: -1, Registry: NoRegistry, Logger: discard}
	c := newConn(a, nil, wire.Client, opts.config(), "", "ws://pipe/") // the peer's frames are a server's
	err := c.Go(func(_ MessageType, p []byte) error {
		handled <- string(p)
		return nil
	}, func(err error) { ended <- err })
	if err != nil {
		t.Fatal(err)
	}
	return weak.Make(c), c.conn, b
}

// TestGoOwnsConn: a connection served with Go is not taken for leaked when
// the application drops its *Conn (the handler returned), and once serving
// has ended nothing of Go's is left holding it.
func TestGoOwnsConn(t *testing.T) {
	handled, ended := make(chan string, 1), make(chan error, 1)
	wp, inner, nc := goOwned(t, handled, ended)
	peer := newRawPeer(t, nc)
	runtime.GC()
	runtime.GC()
	if wp.Value() == nil {
		t.Fatal("the *Conn became unreachable while Go serves it: it would be closed as leaked")
	}
	peer.writeFrame(wire.OpText, []byte("still here"))
	if got := <-handled; got != "still here" {
		t.Fatalf("handled %q", got)
	}
	peer.writeFrame(wire.OpClose, wire.AppendClose(nil, uint16(StatusNormal), ""))
	if h, _ := peer.readFrame(); h.Opcode != wire.OpClose {
		t.Fatalf("peer got %v, want the close frame's echo", h.Opcode)
	}
	nc.Close() // the server closes TCP first (section 7.1.1)
	var ce *CloseError
	if err := <-ended; !errors.As(err, &ce) || ce.Code != StatusNormal {
		t.Fatalf("done got %v, want close 1000", err)
	}
	if inner.srv.Load() != nil {
		t.Fatal("Go left its handler installed")
	}
	runtime.GC()
	if wp.Value() != nil {
		t.Fatal("the *Conn is still referenced after serving ended")
	}
}
