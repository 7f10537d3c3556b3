package tether

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherws/tether/internal/clock"
)

// Issue 17's promise, second half: a handler that blocks for a minute on
// one connection delays no other connection's messages or pongs, and its
// own connection's memory stays bounded while its peer keeps sending.

const (
	blockConns     = 200
	blockReadAhead = 64 << 10
	blockMsgSize   = 1 << 10
)

// blockServer is a server of blockConns connections, each accepted and
// served with Go: a handle that echoes what it gets, except "block", on
// which it waits for release, and numbered binary messages (the first 8
// bytes count from 0), which it checks are in order and counts.
type blockServer struct {
	fc      *clock.Fake
	conns   []*Conn // by the index in the request's path
	release chan struct{}
	blocked chan struct{} // closed when the handle blocks

	mu       sync.Mutex
	handled  int    // numbered messages handled, in order
	disorder string // the first one out of order
}

func (s *blockServer) handle(c *Conn) func(MessageType, []byte) error {
	return func(typ MessageType, p []byte) error {
		switch {
		case typ == Text && string(p) == "block":
			close(s.blocked)
			<-s.release // as long as the test says: "a minute"
			return nil
		case typ == Binary:
			n := int(binary.BigEndian.Uint64(p))
			s.mu.Lock()
			if n != s.handled && s.disorder == "" {
				s.disorder = fmt.Sprintf("message %d came where %d was due", n, s.handled)
			}
			s.handled++
			s.mu.Unlock()
			return nil
		}
		return c.Write(context.Background(), typ, p)
	}
}

func (s *blockServer) numbered() (int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handled, s.disorder
}

// TestBlockingHandlerStallsOnlyItself: of 200 connections served with Go,
// one's handle blocks (until the test releases it: it stands for a
// minute, and the keepalive clock, a fake one, moves a minute meanwhile),
// and its peer keeps sending 1 KiB messages, numbered. Meanwhile every
// other connection echoes and answers the server's pings as if nothing
// happened. After the release the handle gets every message, in order.
//
// What becomes of the blocked connection depends on the engine. On the
// event engine its messages wait in its queue up to ReadAhead, then the
// loop stops reading its socket (TCP pushes back on the peer, whose
// writes then block) and keepalive suspends its ping timeout, since the
// pongs wait unseen behind the data: the connection stays open through
// the minute, and goes on normally afterwards. Under the goroutine engine
// handle runs on the connection's reader goroutine (serve.go, Serve's
// documentation), so a blocked handle stops reading at once: nothing is
// queued, the pongs are not seen, and keepalive fails the connection with
// 1011 once its ping timeout has passed; the handle has then had a prefix
// of the messages, in order.
func TestBlockingHandlerStallsOnlyItself(t *testing.T) {
	s := &blockServer{fc: clock.NewFake(), conns: make([]*Conn, blockConns),
		release: make(chan struct{}), blocked: make(chan struct{})}
	released := false
	defer func() {
		if !released {
			close(s.release)
		}
	}()
	opts := &AcceptOptions{ConnOptions: ConnOptions{
		PingInterval: 10 * time.Second, PingTimeout: 5 * time.Second, Clock: s.fc,
		ReadAhead: blockReadAhead, Logger: discard, Registry: NoRegistry,
	}}
	var mu sync.Mutex
	accepted := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/c/"))
		if err != nil || i < 0 || i >= blockConns {
			http.NotFound(w, r)
			return
		}
		c, err := Accept(w, r, opts)
		if err != nil {
			return
		}
		if err := c.Go(s.handle(c), nil); err != nil {
			t.Errorf("Go: %v", err)
		}
		mu.Lock()
		s.conns[i] = c
		accepted++
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang fails, not a slow machine
	defer cancel()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	// Uncompressed, so that what the peer sends is what crosses TCP (its
	// messages, mostly zeros, would deflate to a few bytes each).
	dopts := &DialOptions{ConnOptions: ConnOptions{PingInterval: -1, CompressionMode: CompressionDisabled,
		Logger: discard, Registry: NoRegistry}}
	clients := make([]*Conn, blockConns)
	for i := range clients {
		c, _, err := Dial(ctx, url+"/c/"+strconv.Itoa(i), dopts)
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = c
	}
	t.Cleanup(func() {
		for i, c := range clients {
			c.CloseNow()
			if sc := s.conns[i]; sc != nil {
				sc.CloseNow()
			}
		}
	})
	eventually(t, "every connection accepted", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return accepted == blockConns
	})
	echo := func(i int, msg string) {
		t.Helper()
		if err := clients[i].Write(ctx, Text, []byte(msg)); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if _, p, err := clients[i].Read(ctx); err != nil || string(p) != msg {
			t.Fatalf("connection %d: echo %q, %v; want %q", i, p, err, msg)
		}
	}
	for i := range clients {
		echo(i, "hello")
	}

	// Connection 0's handle blocks; its peer sends until its writes block.
	const b = 0
	bc, peer := s.conns[b], clients[b]
	onLoop := bc.loop() != nil
	if err := peer.Write(ctx, Text, []byte("block")); err != nil {
		t.Fatal(err)
	}
	<-s.blocked
	var stop atomic.Bool
	var sent atomic.Int64
	flooded := make(chan error, 1)
	go func() {
		msg := make([]byte, blockMsgSize)
		for !stop.Load() {
			binary.BigEndian.PutUint64(msg, uint64(sent.Load()))
			if err := peer.Write(context.Background(), Binary, msg); err != nil {
				flooded <- err
				return
			}
			sent.Add(1)
		}
		flooded <- nil
	}()
	// The peer sends more than the connection may hold: the rest waits in
	// TCP's buffers, and in the peer's queue until its writes block.
	eventually(t, "the peer to send more than the connection may hold", func() bool {
		return sent.Load()*blockMsgSize > blockReadAhead+blockMsgSize+msgOverhead
	})
	if onLoop {
		eventually(t, "reading to stop on the full queue", func() bool { return !bc.Stats().ReadStalledSince.IsZero() })
	}
	if peer.loop() != nil {
		// The peer's queue is at its bound, and its Write waits: TCP
		// pushes back all the way. (A peer with a reader goroutine
		// blocks in the socket's write, out of sight.)
		eventually(t, "the peer's writes to block", func() bool { return peer.loop().pc.Queued() >= writeQueueLimit })
	}

	// A minute on the keepalive clock: six pings on every connection.
	const rounds = 6
	for r := int64(1); r <= rounds; r++ {
		s.fc.Advance(10 * time.Second)
		for i := range clients {
			if i != b {
				echo(i, "round "+strconv.FormatInt(r, 10))
			}
		}
		for i, c := range s.conns {
			if i == b {
				continue
			}
			for deadline := time.Now().Add(30 * time.Second); c.Stats().PongsReceived < r; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("round %d: connection %d got %d pongs, err %v", r, i, c.Stats().PongsReceived, c.Err())
				}
			}
			if st := c.Stats(); st.PingsSent != r || st.PingTimeouts != 0 || c.Err() != nil {
				t.Fatalf("round %d: connection %d: %d pings, %d timeouts, err %v", r, i, st.PingsSent, st.PingTimeouts, c.Err())
			}
		}
		st := bc.Stats()
		if st.QueuedBytes > blockReadAhead+blockMsgSize+msgOverhead {
			t.Fatalf("round %d: the blocked connection holds %d bytes, past %d", r, st.QueuedBytes, blockReadAhead+blockMsgSize+msgOverhead)
		}
		if onLoop {
			if st.QueuedBytes < blockReadAhead || st.ReadStalledSince.IsZero() {
				t.Fatalf("round %d: the blocked connection holds %d bytes, stalled since %v; want its read-ahead, stalled",
					r, st.QueuedBytes, st.ReadStalledSince)
			}
			if err := bc.Err(); err != nil || st.PingTimeouts != 0 {
				t.Fatalf("round %d: the blocked connection: %v, %d ping timeouts; want it open", r, err, st.PingTimeouts)
			}
		} else if st.QueuedBytes != 0 {
			// The reader goroutine is inside handle: nothing is read.
			t.Fatalf("round %d: the blocked connection queued %d bytes; its reader is in handle", r, st.QueuedBytes)
		}
	}
	st := bc.Stats()
	if onLoop && st.ReadStalls != 1 {
		// Keepalive missed its pong, and said so once, rather than fail.
		t.Fatalf("%d stalls seen by keepalive, want 1", st.ReadStalls)
	}
	if !onLoop {
		if code := CloseStatus(bc.Err()); code != StatusInternalError || st.PingTimeouts != 1 {
			t.Fatalf("the blocked connection: %v, %d ping timeouts; want 1011 after one", bc.Err(), st.PingTimeouts)
		}
	}
	t.Logf("engine %s: the peer sent %d KiB while the handle was blocked; the connection held %d B",
		map[bool]string{true: "poll", false: "goroutine"}[onLoop], sent.Load(), st.QueuedBytes)

	// Release: the handle gets every message sent, in order.
	stop.Store(true)
	released = true
	close(s.release)
	ferr := <-flooded
	total := int(sent.Load())
	if !onLoop {
		// The connection failed: the peer's writes fail sooner or later,
		// and the handle got what was read before, in order.
		eventually(t, "the blocked connection to end", func() bool { return bc.Err() != nil })
		if n, bad := s.numbered(); bad != "" || n > total {
			t.Fatalf("handled %d of %d: %s", n, total, bad)
		}
		return
	}
	if ferr != nil {
		t.Fatalf("the peer's write: %v", ferr)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		n, bad := s.numbered()
		if bad != "" {
			t.Fatal(bad)
		}
		if n == total {
			break
		}
		if n > total || time.Now().After(deadline) {
			t.Fatalf("handled %d messages, sent %d", n, total)
		}
	}
	// And the connection goes on as usual: no longer stalled, it echoes,
	// and keepalive gets its pongs.
	eventually(t, "the stall to end", func() bool { return bc.Stats().ReadStalledSince.IsZero() })
	echo(b, "after")
	// The pongs that waited behind the data come in; then a new ping.
	eventually(t, "the pongs behind the data", func() bool { return bc.Stats().PongsReceived > 0 })
	pings, pongs := bc.Stats().PingsSent, bc.Stats().PongsReceived
	for i := 0; bc.Stats().PingsSent == pings; i++ {
		if i == 100 {
			t.Fatalf("no ping in 100 s of the fake clock: %v, %+v", bc.Err(), bc.Stats())
		}
		s.fc.Advance(time.Second)
	}
	eventually(t, "the pong", func() bool { return bc.Stats().PongsReceived > pongs })
	if st := bc.Stats(); bc.Err() != nil || st.PingTimeouts != 0 || st.QueuedBytes != 0 {
		t.Fatalf("after the release: %v, %d ping timeouts, %d bytes queued", bc.Err(), st.PingTimeouts, st.QueuedBytes)
	}
}
