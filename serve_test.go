package tether

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/tetherws/tether/internal/wire"
)

// serveAsync runs c.Serve(ctx, handle) and returns its result's channel.
func serveAsync(c *Conn, ctx context.Context, handle func(MessageType, []byte) error) <-chan error {
	errc := make(chan error, 1)
	go func() { errc <- c.Serve(ctx, handle) }()
	return errc
}

// echoHandle echoes each message back on c.
func echoHandle(c *Conn) func(MessageType, []byte) error {
	return func(typ MessageType, p []byte) error {
		return c.Write(context.Background(), typ, p)
	}
}

// servings are the two ways to serve a connection with a handle: Serve,
// which its caller waits on, and Go, which returns at once. Each starts one
// and returns the channel that gets what serving ended with. Go has no
// context: ctx is for Serve.
var servings = []struct {
	name  string
	start func(t *testing.T, c *Conn, ctx context.Context, handle func(MessageType, []byte) error) <-chan error
}{
	{"Serve", func(_ *testing.T, c *Conn, ctx context.Context, handle func(MessageType, []byte) error) <-chan error {
		return serveAsync(c, ctx, handle)
	}},
	{"Go", func(t *testing.T, c *Conn, _ context.Context, handle func(MessageType, []byte) error) <-chan error {
		return goAsync(t, c, handle)
	}},
}

// TestServingOrder: messages that were queued before serving started come
// first, then the rest, all in order, whatever their size and framing; the
// serving ends with the connection's end. Go returns at once: this
// goroutine writes the rest.
func TestServingOrder(t *testing.T) {
	for _, sv := range servings {
		t.Run(sv.name, func(t *testing.T) {
			cc, sc := tcpPair(t, ConnOptions{FragmentSize: 5000}, nil)
			ctx := context.Background()
			const queued, total = 10, 60
			msg := func(i int) []byte {
				return bytes.Repeat([]byte(strconv3(i)), 1+i*211%7000)
			}
			for i := range queued {
				if err := cc.Write(ctx, Binary, msg(i)); err != nil {
					t.Fatal(err)
				}
			}
			eventually(t, "queued messages", func() bool { return sc.Stats().MessagesIn == queued })
			var got [][]byte
			errc := sv.start(t, sc, ctx, func(typ MessageType, p []byte) error {
				got = append(got, bytes.Clone(p)) // p is only valid during the call
				return nil
			})
			for i := queued; i < total; i++ {
				if err := cc.Write(ctx, Binary, msg(i)); err != nil {
					t.Fatal(err)
				}
			}
			eventually(t, "every message", func() bool { return sc.Stats().MessagesIn == total })
			cc.Close(StatusNormal, "done")
			var ce *CloseError
			if err := <-errc; !errors.As(err, &ce) || ce.Code != StatusNormal {
				t.Fatalf("%s ended with %v, want close 1000", sv.name, err)
			}
			if len(got) != total {
				t.Fatalf("handled %d messages, want %d", len(got), total)
			}
			for i := range got {
				if !bytes.Equal(got[i], msg(i)) {
					t.Fatalf("message %d: %d bytes, want %d (out of order or damaged)", i, len(got[i]), len(msg(i)))
				}
			}
		})
	}
}

func strconv3(i int) string { return fmt.Sprintf("%03d", i) }

// TestServingEchoNoAllocs: served, a received message costs no allocation:
// its buffer is pooled and reused once handle returns (which is why p is
// valid only during the call), where Read costs one.
func TestServingEchoNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	for _, sv := range servings {
		t.Run(sv.name, func(t *testing.T) {
			cc, sc := tcpPair(t, ConnOptions{}, nil)
			errc := sv.start(t, sc, context.Background(), echoHandle(sc))
			for _, size := range []int{16, 1024, 16 << 10} {
				msg := bytes.Repeat([]byte{7}, size)
				buf := make([]byte, size)
				trip := func() { streamTrip(t, cc, cc, msg, buf) }
				trip()
				if !bytes.Equal(buf, msg) {
					t.Fatal("echo differs")
				}
				if allocs := testing.AllocsPerRun(100, trip); allocs > 0 {
					t.Errorf("%d B: %.1f allocations per echo with %s, want 0", size, allocs, sv.name)
				}
			}
			cc.Close(StatusNormal, "")
			<-errc
		})
	}
}

// whileReadWaits runs f while a Read waits on c, then ends the Read (its
// context cancelled) and checks it returned that.
func whileReadWaits(t *testing.T, c *Conn, f func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.Read(ctx)
		readErr <- err
	}()
	eventually(t, "Read waiting", func() bool { return c.readState.Load() == 1 })
	f()
	cancel()
	if err := <-readErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("Read: %v", err)
	}
}

// TestServeReadConflict: Serve refuses to run alongside Read, Reader or
// another Serve, and they refuse while it runs, with ErrReadConflict.
func TestServeReadConflict(t *testing.T) {
	cc, sc := tcpPair(t, ConnOptions{}, nil)
	whileReadWaits(t, sc, func() {
		if err := sc.Serve(context.Background(), echoHandle(sc)); !errors.Is(err, ErrReadConflict) {
			t.Fatalf("Serve during Read: %v, want ErrReadConflict", err)
		}
	})

	ctx, cancel := context.WithCancel(context.Background())
	errc := serveAsync(sc, ctx, echoHandle(sc))
	eventually(t, "Serve running", func() bool { return sc.srv.Load() != nil })
	if _, _, err := sc.Read(ctx); !errors.Is(err, ErrReadConflict) {
		t.Fatalf("Read during Serve: %v", err)
	}
	if _, _, err := sc.Reader(ctx); !errors.Is(err, ErrReadConflict) {
		t.Fatalf("Reader during Serve: %v", err)
	}
	if err := sc.Serve(ctx, echoHandle(sc)); !errors.Is(err, ErrReadConflict) {
		t.Fatalf("second Serve: %v", err)
	}
	// Serve still works after the refusals.
	buf := make([]byte, 5)
	streamTrip(t, cc, cc, []byte("hello"), buf)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve: %v", err)
	}
}

// TestServeContextEnds: a done ctx ends Serve, not the connection; later
// messages go to Read, and Serve can start again.
func TestServeContextEnds(t *testing.T) {
	cc, sc := tcpPair(t, ConnOptions{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	errc := serveAsync(sc, ctx, echoHandle(sc))
	buf := make([]byte, 3)
	streamTrip(t, cc, cc, []byte("one"), buf)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve returned %v, want context.Canceled", err)
	}
	bg := context.Background()
	if err := cc.Write(bg, Text, []byte("two")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := sc.Read(bg); err != nil || string(p) != "two" {
		t.Fatalf("Read after Serve: %q, %v", p, err)
	}
	ctx, cancel = context.WithCancel(bg)
	defer cancel()
	errc = serveAsync(sc, ctx, echoHandle(sc))
	streamTrip(t, cc, cc, []byte("six"), buf)
	if string(buf) != "six" {
		t.Fatalf("second Serve echoed %q", buf)
	}
	if err := sc.Serve(canceled(), echoHandle(sc)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve with a done ctx: %v", err)
	}
	cancel()
	<-errc
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// TestServingHandleError: an error from handle closes the connection with
// 1011 and a fixed reason (not the error's text), or with a *CloseError's
// code and reason; serving ends with handle's error once the closing
// handshake is over (Serve returns it, Go's done gets it), and handle is not
// called again.
func TestServingHandleError(t *testing.T) {
	boom := errors.New("secret detail")
	for _, sv := range servings {
		for _, tc := range []struct {
			err    error
			code   StatusCode
			reason string
		}{
			{boom, StatusInternalError, "internal error"},
			{fmt.Errorf("wrapped: %w", &CloseError{Code: StatusPolicyViolation, Reason: "no"}), StatusPolicyViolation, "no"},
			{&CloseError{Code: 4000, Reason: "app"}, 4000, "app"},
			{&CloseError{Code: StatusAbnormal}, StatusInternalError, "internal error"}, // 1006 may not be sent
		} {
			t.Run(sv.name+"/"+tc.err.Error(), func(t *testing.T) {
				c, nc := pipeConn(t, wire.Client, ConnOptions{PingInterval: -1, Registry: NoRegistry, Logger: discard})
				peer := newRawPeer(t, nc)
				calls := 0
				errc := sv.start(t, c, context.Background(), func(MessageType, []byte) error {
					calls++
					return tc.err
				})
				peer.writeFrame(wire.OpText, []byte("first"))
				h, p := peer.readFrame()
				code, reason, _ := wire.ParseClose(p)
				if h.Opcode != wire.OpClose || StatusCode(code) != tc.code || reason != tc.reason {
					t.Fatalf("peer got %v %d %q, want CLOSE %d %q", h.Opcode, code, reason, tc.code, tc.reason)
				}
				peer.writeFrame(wire.OpText, []byte("discarded while closing"))
				select {
				case err := <-errc:
					t.Fatalf("serving ended (%v) before the handshake did", err)
				default:
				}
				peer.writeFrame(wire.OpClose, wire.AppendClose(nil, code, ""))
				nc.Close() // the server closes TCP first (section 7.1.1)
				if err := <-errc; err != tc.err {
					t.Fatalf("serving ended with %v, want handle's error", err)
				}
				if calls != 1 {
					t.Fatalf("handle called %d times, want 1", calls)
				}
				if ce := c.Err().(*CloseError); ce.Code != tc.code || ce.Rcvd == nil {
					t.Fatalf("connection ended with %v, want a completed handshake with %d", ce, tc.code)
				}
			})
		}
	}
}

// TestServingProtocolErrors: serving ends with the connection's
// *CloseError, and the peer gets the close code the rules say, for bad
// input read while serving; the bad message never reaches handle.
func TestServingProtocolErrors(t *testing.T) {
	for _, sv := range servings {
		for _, tc := range []struct {
			name  string
			frame []byte
			code  StatusCode
		}{
			{"masked frame from server", wire.AppendHeader(nil, wire.Header{Fin: true, Opcode: wire.OpBinary, Masked: true, Length: 0}), StatusProtocolError},
			{"reserved opcode", wire.AppendHeader(nil, wire.Header{Fin: true, Opcode: 3}), StatusProtocolError},
			{"invalid UTF-8", append(wire.AppendHeader(nil, wire.Header{Fin: true, Opcode: wire.OpText, Length: 2}), 0xc3, 0x28), StatusInvalidPayload},
			{"too big", append(wire.AppendHeader(nil, wire.Header{Fin: true, Opcode: wire.OpBinary, Length: 101}), make([]byte, 101)...), StatusTooBig},
		} {
			t.Run(sv.name+"/"+tc.name, func(t *testing.T) {
				c, nc := pipeConn(t, wire.Client, ConnOptions{PingInterval: -1, ReadLimit: 100, Registry: NoRegistry, Logger: discard})
				peer := newRawPeer(t, nc)
				handled := make(chan string, 4)
				errc := sv.start(t, c, context.Background(), func(_ MessageType, p []byte) error {
					handled <- string(p)
					return nil
				})
				peer.writeFrame(wire.OpText, []byte("fine"))
				if got := <-handled; got != "fine" {
					t.Fatalf("handled %q", got)
				}
				go nc.Write(tc.frame)
				h, p := peer.readFrame()
				if code, _, _ := wire.ParseClose(p); h.Opcode != wire.OpClose || StatusCode(code) != tc.code {
					t.Fatalf("peer got %v %d, want CLOSE %d", h.Opcode, code, tc.code)
				}
				nc.Close() // after failing, the connection waits for the peer to go (Go's done comes after that)
				var ce *CloseError
				if err := <-errc; !errors.As(err, &ce) || ce.Code != tc.code {
					t.Fatalf("%s ended with %v, want close %d", sv.name, err, tc.code)
				}
				if len(handled) != 0 {
					t.Fatalf("bad message handed to handle: %q", <-handled)
				}
			})
		}
	}
}

// TestServingCloseFromHandle: handle may Close the connection on the read
// loop it runs on (the handshake completes once it returns, and serving
// ends with the connection's end), or CloseNow it without waiting for that
// loop.
func TestServingCloseFromHandle(t *testing.T) {
	for _, sv := range servings {
		t.Run(sv.name+"/Close", func(t *testing.T) {
			cc, sc := tcpPair(t, ConnOptions{}, nil)
			errc := sv.start(t, sc, context.Background(), func(typ MessageType, p []byte) error {
				if string(p) == "bye" {
					return sc.Close(StatusGoingAway, "asked to")
				}
				return sc.Write(context.Background(), typ, p)
			})
			buf := make([]byte, 2)
			streamTrip(t, cc, cc, []byte("hi"), buf)
			if err := cc.Write(context.Background(), Text, []byte("bye")); err != nil {
				t.Fatal(err)
			}
			var ce *CloseError
			if _, _, err := cc.Read(context.Background()); !errors.As(err, &ce) || ce.Code != StatusGoingAway {
				t.Fatalf("client read %v, want close 1001", err)
			}
			if err := <-errc; !errors.As(err, &ce) || ce.Code != StatusGoingAway || ce.Rcvd == nil {
				t.Fatalf("serving ended with %v, want 1001 with the peer's answer", err)
			}
		})
		t.Run(sv.name+"/CloseNow", func(t *testing.T) {
			cc, sc := tcpPair(t, ConnOptions{}, nil)
			errc := sv.start(t, sc, context.Background(), func(MessageType, []byte) error {
				return sc.CloseNow()
			})
			if err := cc.Write(context.Background(), Text, []byte("x")); err != nil {
				t.Fatal(err)
			}
			var ce *CloseError
			if err := <-errc; !errors.As(err, &ce) || ce.Code != StatusAbnormal {
				t.Fatalf("serving ended with %v, want 1006", err)
			}
			sc.waitReadDone()
		})
	}
}

// TestServeControlFrames: pings are answered and the connection keeps its
// keepalive bookkeeping while serving.
func TestServeControlFrames(t *testing.T) {
	cc, sc := tcpPair(t, ConnOptions{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := serveAsync(sc, ctx, echoHandle(sc))
	for range 3 {
		if _, err := cc.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := sc.Ping(ctx); err != nil { // the pong is read by the loop that serves
			t.Fatal(err)
		}
	}
	buf := make([]byte, 4)
	streamTrip(t, cc, cc, []byte("ping"), buf)
	// The echo's count goes up once its write returns, which may be after
	// the client has it.
	eventually(t, "the echo counted", func() bool { return sc.Stats().MessagesOut == 1 })
	if st := sc.Stats(); st.MessagesIn != 1 || st.PongsReceived != 3 || st.MessagesOut != 1 {
		t.Fatalf("stats %+v", st)
	}
	cancel()
	<-errc
}

// TestServeCompressed: compressed messages reach handle decompressed, in
// pooled buffers, and a bomb fails with 1009.
func TestServeCompressed(t *testing.T) {
	cc, sc := deflatePair(t, wire.DeflateParams{}, 64<<10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []string
	done := make(chan struct{})
	errc := serveAsync(sc, ctx, func(typ MessageType, p []byte) error {
		got = append(got, string(p))
		if len(got) == 3 {
			close(done)
		}
		return nil
	})
	want := []string{strings.Repeat("tether ", 100), "short", strings.Repeat(`{"k":1}`, 2000)}
	go func() {
		for _, s := range want {
			cc.Write(ctx, Text, []byte(s))
		}
	}()
	<-done
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("message %d: %d bytes, want %d", i, len(got[i]), len(want[i]))
		}
	}
	go cc.Write(ctx, Text, bytes.Repeat([]byte("a"), 100<<10))
	var ce *CloseError
	if err := <-errc; !errors.As(err, &ce) || ce.Code != StatusTooBig {
		t.Fatalf("Serve returned %v, want close 1009", err)
	}
}

// TestServeLeavesNoReference: once Serve returns, the connection holds no
// reference to handle, so a dropped *Conn is still found leaked.
func TestServeLeavesNoReference(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	opts := ConnOptions{PingInterval: -1, Registry: NoRegistry, Logger: discard}
	c := newConn(a, nil, wire.Server, opts.config(), "", "/")
	ctx, cancel := context.WithCancel(context.Background())
	errc := serveAsync(c, ctx, echoHandle(c))
	cancel()
	<-errc
	if c.srv.Load() != nil {
		t.Fatal("Serve left its handler installed")
	}
	c.CloseNow()
}
