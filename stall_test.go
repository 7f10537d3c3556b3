package tether

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherws/tether/internal/clock"
	"github.com/tetherws/tether/internal/wire"
)

// stallPair is an application's connection (fake clock, keepalive 10 s /
// 5 s, 64 KiB of read-ahead) and its live peer on loopback, a Tether
// connection that answers pings by itself and, with flood, sends 1 KiB
// messages without pause until stopFlood.
type stallPair struct {
	app, peer *Conn
	fc        *clock.Fake
	rec       *logRecorder
	stop      atomic.Bool
	flooded   chan int
}

const stallReadAhead = 64 << 10

func newStallPair(t *testing.T, opts ConnOptions) *stallPair {
	t.Helper()
	logger, rec := newLogRecorder()
	s := &stallPair{fc: clock.NewFake(), rec: rec, flooded: make(chan int, 1)}
	a, b := socketPair(t)
	opts.PingInterval, opts.PingTimeout, opts.Clock = 10*time.Second, 5*time.Second, s.fc
	opts.ReadAhead, opts.Logger, opts.Registry = stallReadAhead, logger, NoRegistry
	s.app = newConn(a, nil, wire.Client, opts.config(), "", "ws://loopback")
	s.peer = newConn(b, nil, wire.Server, (&ConnOptions{PingInterval: -1, Logger: discard, Registry: NoRegistry}).config(), "", "/")
	t.Cleanup(func() {
		s.stop.Store(true)
		s.app.CloseNow()
		s.peer.CloseNow()
	})
	return s
}

func (s *stallPair) flood() {
	go func() {
		msg, n := make([]byte, 1024), 0
		for !s.stop.Load() && s.peer.Write(context.Background(), Binary, msg) == nil {
			n++
		}
		s.flooded <- n
	}()
}

// keepaliveFor advances the fake clock by d in steps of a ping timeout.
func (s *stallPair) keepaliveFor(d time.Duration) {
	for range d / (5 * time.Second) {
		s.fc.Advance(5 * time.Second)
	}
}

// TestNotReadingIsNotADeadPeer is issue 16's case: the application never
// reads, the peer keeps sending data and answers every ping. The connection
// reads ahead up to ReadAhead, then stops; keepalive, which cannot see the
// pongs behind the data, suspends its timeout and says why, for twenty
// ping timeouts. Memory stays bounded. When the application reads again,
// the pong comes through and keepalive goes on.
func TestNotReadingIsNotADeadPeer(t *testing.T) {
	s := newStallPair(t, ConnOptions{})
	s.flood()
	eventually(t, "the read loop stalls on a full queue", func() bool { return !s.app.Stats().ReadStalledSince.IsZero() })
	s.keepaliveFor(100 * time.Second)
	if err := s.app.Err(); err != nil {
		t.Fatalf("the connection failed while its application was not reading: %v", err)
	}
	st := s.app.Stats()
	if st.PingTimeouts != 0 || st.ReadStalls != 1 || st.PingsSent == 0 {
		t.Fatalf("pings sent %d, timeouts %d, stalls %d; want some pings, no timeout, one stall", st.PingsSent, st.PingTimeouts, st.ReadStalls)
	}
	if st.QueuedBytes > stallReadAhead+1024+msgOverhead || st.QueuedMessages == 0 {
		t.Fatalf("queued %d messages, %d bytes; want some, at most %d bytes", st.QueuedMessages, st.QueuedBytes, stallReadAhead+1024+msgOverhead)
	}
	warns := s.rec.with("application is not reading")
	if len(warns) != 1 {
		t.Fatalf("%d 'application is not reading' records, want 1", len(warns))
	}
	if q := warns[0].Attrs["queued"].Int64(); q != int64(st.QueuedMessages) {
		t.Fatalf("the warning says %d queued, Stats %d", q, st.QueuedMessages)
	}
	if n := len(s.rec.with("timed out waiting for keepalive pong")); n != 0 {
		t.Fatalf("%d keepalive timeouts logged", n)
	}

	// The application reads again: the pong behind the data comes through.
	s.stop.Store(true)
	deadline := time.Now().Add(10 * time.Second)
	for s.app.Stats().PongsReceived == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no pong after the application read everything")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_, _, err := s.app.Read(ctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
	}
	eventually(t, "the stall over", func() bool { return s.app.Stats().ReadStalledSince.IsZero() })
	if len(s.rec.with("application is reading again")) != 1 {
		t.Fatal("no 'application is reading again' record")
	}
	// Keepalive goes on as usual: pings, answered.
	for range 3 {
		pings, pongs := s.app.Stats().PingsSent, s.app.Stats().PongsReceived
		for i := 0; s.app.Stats().PingsSent == pings; i++ {
			if i == 1000 { // fail rather than spin: a closed connection pings no more
				t.Fatalf("no ping in 1000 s of the fake clock: %v, %+v", s.app.Err(), s.app.Stats())
			}
			s.fc.Advance(time.Second)
		}
		eventually(t, "the pong", func() bool { return s.app.Stats().PongsReceived > pongs })
	}
	if err := s.app.Err(); err != nil {
		t.Fatalf("failed after reading again: %v", err)
	}
}

// TestStallThenDeadPeer: a stall only suspends the timeout. The peer here
// floods data and never answers a ping; once the application has read
// everything, keepalive's wait starts over and the connection fails with
// 1011 within an interval and a timeout.
func TestStallThenDeadPeer(t *testing.T) {
	logger, rec := newLogRecorder()
	fc := clock.NewFake()
	a, b := socketPair(t)
	app := newConn(a, nil, wire.Client, (&ConnOptions{PingInterval: 10 * time.Second, PingTimeout: 5 * time.Second,
		Clock: fc, ReadAhead: stallReadAhead, Logger: logger, Registry: NoRegistry}).config(), "", "ws://loopback")
	defer app.CloseNow()
	var stop atomic.Bool
	flooded := make(chan struct{})
	go func() {
		defer close(flooded)
		frame := wire.AppendHeader(nil, wire.Header{Fin: true, Opcode: wire.OpBinary, Length: 1024})
		frame = append(frame, make([]byte, 1024)...)
		for !stop.Load() {
			b.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			if _, err := b.Write(frame); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
		}
	}()
	eventually(t, "the read loop stalls", func() bool { return !app.Stats().ReadStalledSince.IsZero() })
	for range 12 {
		fc.Advance(5 * time.Second)
	}
	if err := app.Err(); err != nil {
		t.Fatalf("failed while stalled: %v", err)
	}
	stop.Store(true)
	<-flooded
	for app.Stats().QueuedMessages > 0 || !app.Stats().ReadStalledSince.IsZero() {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		app.Read(ctx)
		cancel()
	}
	for range 3 {
		fc.Advance(5 * time.Second)
	}
	eventually(t, "the connection failed", func() bool { return app.Err() != nil })
	if code := CloseStatus(app.Err()); code != StatusInternalError {
		t.Fatalf("ended with %v, want 1011", app.Err())
	}
	if len(rec.with("timed out waiting for keepalive pong")) != 1 || len(rec.with("application is not reading")) != 1 {
		t.Fatal("want one stall warning, then one keepalive timeout")
	}
}

// TestDiscardMessages: a connection the application only writes to drops
// what it receives, counted, and keeps answering pings.
func TestDiscardMessages(t *testing.T) {
	s := newStallPair(t, ConnOptions{})
	if err := s.app.DiscardMessages(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.app.Read(context.Background()); !errors.Is(err, ErrReadConflict) {
		t.Fatalf("Read while discarding: %v, want ErrReadConflict", err)
	}
	msg := make([]byte, 1024)
	const n = 500 // 500 KiB, far past the read-ahead
	for range n {
		if err := s.peer.Write(context.Background(), Binary, msg); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "every message discarded", func() bool { return s.app.Stats().DiscardedMessages == n })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.peer.Ping(ctx); err != nil {
		t.Fatalf("the discarding connection did not answer a ping: %v", err)
	}
	if st := s.app.Stats(); st.QueuedMessages != 0 || st.MessagesIn != n {
		t.Fatalf("queued %d, received %d; want 0 and %d", st.QueuedMessages, st.MessagesIn, n)
	}
}
