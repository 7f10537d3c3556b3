package tether

import (
	"bufio"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tetherws/tether/internal/wire"
)

// countingCtx is a context that implements AfterFunc itself, as
// context.AfterFunc lets a context do, so a test can see how many
// registrations a connection makes and how many are still in place.
type countingCtx struct {
	mu    sync.Mutex
	done  chan struct{} // never closed, but not nil: writes register for it
	fns   map[int]func()
	next  int
	total int // registrations ever made
}

func newCountingCtx() *countingCtx {
	return &countingCtx{done: make(chan struct{}), fns: map[int]func(){}}
}

func (c *countingCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *countingCtx) Done() <-chan struct{}       { return c.done }
func (c *countingCtx) Value(any) any               { return nil }

func (c *countingCtx) Err() error { return nil } // never cancelled

func (c *countingCtx) AfterFunc(f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := c.next
	c.next++
	c.total++
	c.fns[id] = f
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := c.fns[id]
		delete(c.fns, id)
		return ok
	}
}

// counts returns the registrations made and those still in place.
func (c *countingCtx) counts() (total, live int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total, len(c.fns)
}

// TestWriteContextRegisteredOnce: many writes under one context register for
// its cancellation once; another context replaces the registration, and the
// end of the connection removes it.
func TestWriteContextRegisteredOnce(t *testing.T) {
	cc, sc := tcpPair(t, ConnOptions{}, nil)
	ctx := newCountingCtx()
	buf := make([]byte, 64)
	for range 50 {
		streamTripCtx(t, ctx, sc, cc, []byte("hello"), buf)
	}
	if total, live := ctx.counts(); total != 1 || live != 1 {
		t.Fatalf("after 50 writes: %d registrations, %d live; want 1, 1", total, live)
	}
	streamTripCtx(t, context.Background(), sc, cc, []byte("hello"), buf)
	if total, live := ctx.counts(); total != 1 || live != 0 {
		t.Fatalf("after a write under another context: %d registrations, %d live; want 1, 0", total, live)
	}
	streamTripCtx(t, ctx, sc, cc, []byte("hello"), buf)
	if total, live := ctx.counts(); total != 2 || live != 1 {
		t.Fatalf("back to the first context: %d registrations, %d live; want 2, 1", total, live)
	}
	sc.CloseNow()
	if total, live := ctx.counts(); total != 2 || live != 0 {
		t.Fatalf("after the connection closed: %d registrations, %d live; want 2, 0", total, live)
	}
}

// TestWriteCancelUnblocks: cancelling the context of a write blocked on a
// peer that does not read makes it return at once with the context's error,
// whether the context is new to the connection or already bound by earlier
// writes.
func TestWriteCancelUnblocks(t *testing.T) {
	for _, bound := range []bool{false, true} {
		name := "new context"
		if bound {
			name = "bound context"
		}
		t.Run(name, func(t *testing.T) {
			c, nc := pipeConn(t, wire.Server, ConnOptions{PingInterval: -1, Registry: NoRegistry, Logger: discard})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if bound {
				read := make(chan frame, 1)
				go func() {
					f, _ := readRawFrame(bufio.NewReader(nc))
					read <- f // then nobody reads any more: writes to the pipe block
				}()
				if err := c.Write(ctx, Text, []byte("first")); err != nil {
					t.Fatal(err)
				}
				if f := <-read; string(f.payload) != "first" {
					t.Fatalf("peer read %q", f.payload)
				}
			}
			errc := make(chan error, 1)
			go func() { errc <- c.Write(ctx, Binary, make([]byte, 1000)) }()
			select {
			case err := <-errc:
				t.Fatalf("write returned %v before the cancel", err)
			case <-time.After(20 * time.Millisecond):
			}
			cancel()
			select {
			case err := <-errc:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("write = %v, want context.Canceled in its chain", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("write still blocked 5 s after its context was cancelled")
			}
		})
	}
}

// TestWriteCancelledContextKeepsConnection: a write whose context is done
// before it starts sends nothing and returns the context's error, and the
// connection goes on: a cancellation that came while no frame was being
// written does not leave its deadline on the socket.
func TestWriteCancelledContextKeepsConnection(t *testing.T) {
	c, nc := pipeConn(t, wire.Server, ConnOptions{PingInterval: -1, Registry: NoRegistry, Logger: discard})
	peer := newRawPeer(t, nc)
	ctx, cancel := context.WithCancel(context.Background())
	if err := c.Write(ctx, Text, []byte("one")); err != nil {
		t.Fatal(err)
	}
	cancel() // while the context is bound, between writes
	if err := c.Write(ctx, Text, []byte("lost")); !errors.Is(err, context.Canceled) {
		t.Fatalf("write under a cancelled context = %v, want context.Canceled", err)
	}
	other, cancelOther := context.WithCancel(context.Background())
	defer cancelOther()
	for _, ctx := range []context.Context{context.Background(), other} {
		if err := c.Write(ctx, Text, []byte("two")); err != nil {
			t.Fatalf("write after the cancelled one: %v", err)
		}
	}
	for _, want := range []string{"one", "two", "two"} {
		if h, p := peer.readFrame(); h.Opcode != wire.OpText || string(p) != want {
			t.Fatalf("peer read %v %q, want text %q", h.Opcode, p, want)
		}
	}
	if err := c.Err(); err != nil {
		t.Fatalf("connection ended: %v", err)
	}
}

// TestWriteDeadline: a context's deadline bounds a blocked write.
func TestWriteDeadline(t *testing.T) {
	c, _ := pipeConn(t, wire.Server, ConnOptions{PingInterval: -1, Registry: NoRegistry, Logger: discard})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- c.Write(ctx, Binary, make([]byte, 1000)) }()
	select {
	case err := <-errc:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("write = %v, want context.DeadlineExceeded in its chain", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("write still blocked 5 s after its deadline")
	}
}

// TestSteadyStateAllocsWithContext: writing under a cancellable context, as
// a handler does with its request's, allocates nothing per message.
func TestSteadyStateAllocsWithContext(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	cc, sc := tcpPair(t, ConnOptions{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msg := make([]byte, 1024)
	buf := make([]byte, 2048)
	for _, dir := range []struct {
		name string
		w, r *Conn
	}{{"client to server", cc, sc}, {"server to client", sc, cc}} {
		streamTripCtx(t, ctx, dir.w, dir.r, msg, buf) // warm the pools, bind ctx
		allocs := testing.AllocsPerRun(200, func() { streamTripCtx(t, ctx, dir.w, dir.r, msg, buf) })
		if allocs > 0 {
			t.Errorf("%s: %.1f allocations per 1 KiB message, want 0", dir.name, allocs)
		}
	}
}
