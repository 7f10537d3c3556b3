//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package poll

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestPeerEOF(t *testing.T) {
	e := newEngine(t, Options{})
	cl, sv := tcpPair(t)
	r := newRecorder()
	if _, err := e.Adopt(sv, nil, r); err != nil {
		t.Fatal(err)
	}
	cl.Write([]byte("bye"))
	cl.Close()
	if err := r.waitClosed(t); err != io.EOF {
		t.Fatalf("OnClose(%v), want io.EOF", err)
	}
	if got := string(r.bytes()); got != "bye" {
		t.Fatalf("read %q", got)
	}
}

func TestPeerReset(t *testing.T) {
	e := newEngine(t, Options{})
	cl, sv := tcpPair(t)
	r := newRecorder()
	if _, err := e.Adopt(sv, nil, r); err != nil {
		t.Fatal(err)
	}
	cl.(*net.TCPConn).SetLinger(0) // close sends RST
	cl.Close()
	err := r.waitClosed(t)
	var se *os.SyscallError
	if !errors.Is(err, syscall.ECONNRESET) || !errors.As(err, &se) {
		t.Fatalf("OnClose(%v), want a reset", err)
	}
}

// queueUp writes to c until n bytes wait in its queue (the peer not reading).
func queueUp(t *testing.T, c *Conn, n int) int {
	t.Helper()
	p := make([]byte, 64<<10)
	total := 0
	for c.Queued() < n {
		if err := c.Send(p); err != nil {
			t.Fatal(err)
		}
		total += len(p)
	}
	return total
}

// Close writes what is queued, then closes; writes fail from then on.
func TestCloseFlushesQueue(t *testing.T) {
	e := newEngine(t, Options{WriteQueueLimit: 64 << 20})
	cl, sv := tcpPair(t)
	r := newRecorder()
	c, err := e.Adopt(sv, nil, r)
	if err != nil {
		t.Fatal(err)
	}
	total := queueUp(t, c, 4<<20)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Send([]byte("x")); err != ErrClosed {
		t.Fatalf("Send after Close = %v", err)
	}
	if err := c.Close(); err != ErrClosed {
		t.Fatalf("second Close = %v", err)
	}
	cl.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, err := io.Copy(io.Discard, cl)
	if err != nil || n != int64(total) {
		t.Fatalf("peer read %d bytes (%v), want %d then EOF", n, err, total)
	}
	if err := r.waitClosed(t); err != ErrClosed {
		t.Fatalf("OnClose(%v)", err)
	}
	if q := e.Stats().QueuedBytes(); q != 0 {
		t.Fatalf("%d bytes still counted as queued", q)
	}
}

// CloseNow drops the queue.
func TestCloseNowDropsQueue(t *testing.T) {
	e := newEngine(t, Options{WriteQueueLimit: 64 << 20})
	cl, sv := tcpPair(t)
	r := newRecorder()
	c, err := e.Adopt(sv, nil, r)
	if err != nil {
		t.Fatal(err)
	}
	total := queueUp(t, c, 8<<20)
	c.CloseNow()
	if err := r.waitClosed(t); err != ErrClosed {
		t.Fatalf("OnClose(%v)", err)
	}
	if q := e.Stats().QueuedBytes(); q != 0 {
		t.Fatalf("%d bytes still counted as queued", q)
	}
	cl.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, _ := io.Copy(io.Discard, cl)
	if n >= int64(total) {
		t.Fatalf("peer read all %d bytes", n)
	}
}

// Past the bound, Write waits for room until its context ends, Send
// refuses; once the peer reads, writes go on.
func TestWriteWaitsForRoom(t *testing.T) {
	e := newEngine(t, Options{WriteQueueLimit: 64 << 10})
	cl, sv := tcpPair(t)
	c, err := e.Adopt(sv, nil, newRecorder())
	if err != nil {
		t.Fatal(err)
	}
	total := queueUp(t, c, 64<<10)
	if err := c.Send([]byte("x")); err != ErrWouldBlock {
		t.Fatalf("Send over the bound = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Write(ctx, []byte("x")); err != context.DeadlineExceeded {
		t.Fatalf("Write over the bound = %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Write(context.Background(), []byte("!")) }()
	got := readN(t, cl, total+1)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got[total] != '!' {
		t.Fatalf("last byte %q", got[total])
	}
}

// A write to a peer that reset fails with the system's error, and the
// connection ends with it.
func TestWriteAfterReset(t *testing.T) {
	e := newEngine(t, Options{})
	cl, sv := tcpPair(t)
	r := newRecorder()
	r.onData = func(*Conn, []byte) {}
	c, err := e.Adopt(sv, nil, r)
	if err != nil {
		t.Fatal(err)
	}
	c.PauseRead() // so the reset is seen by a write, not a read
	cl.(*net.TCPConn).SetLinger(0)
	cl.Close()
	time.Sleep(20 * time.Millisecond)
	var werr error
	for range 100 {
		if werr = c.Send([]byte("ping")); werr != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if !errors.Is(werr, syscall.ECONNRESET) && !errors.Is(werr, syscall.EPIPE) {
		t.Fatalf("Send to a reset peer = %v", werr)
	}
	if err := r.waitClosed(t); err != werr {
		t.Fatalf("OnClose(%v), want %v", err, werr)
	}
	if err := c.Send([]byte("x")); err != werr {
		t.Fatalf("Send after = %v", err)
	}
}

// Closing the engine closes its connections and refuses new work.
func TestEngineClose(t *testing.T) {
	if !Supported() {
		t.Skip()
	}
	e, err := New(Options{Loops: 2})
	if err != nil {
		t.Fatal(err)
	}
	var rs []*recorder
	var conns []*Conn
	for range 4 {
		_, sv := tcpPair(t)
		r := newRecorder()
		c, err := e.Adopt(sv, nil, r)
		if err != nil {
			t.Fatal(err)
		}
		rs, conns = append(rs, r), append(conns, c)
	}
	if s := e.Stats(); s.Loops[0].Conns != 2 || s.Loops[1].Conns != 2 {
		t.Fatalf("connections per loop: %+v", s.Loops)
	}
	e.Close()
	for _, r := range rs {
		if err := r.waitClosed(t); err != ErrEngineClosed {
			t.Fatalf("OnClose(%v)", err)
		}
	}
	_, sv := tcpPair(t)
	defer sv.Close()
	if _, err := e.Adopt(sv, nil, newRecorder()); err != ErrEngineClosed {
		t.Fatalf("Adopt after Close = %v", err)
	}
	if err := conns[0].Post(context.Background(), func() {}); err != ErrEngineClosed {
		t.Fatalf("Post after Close = %v", err)
	}
	if err := conns[0].Send([]byte("x")); err != ErrEngineClosed {
		t.Fatalf("Send after Close = %v", err)
	}
}

// Post runs on the loop, in order, and waits while the queue is full.
func TestPostBounded(t *testing.T) {
	e := newEngine(t, Options{Loops: 1, TaskQueue: 2})
	_, sv := tcpPair(t)
	c, err := e.Adopt(sv, nil, newRecorder())
	if err != nil {
		t.Fatal(err)
	}
	hold, held := make(chan struct{}), make(chan struct{})
	if err := c.Post(context.Background(), func() { close(held); <-hold }); err != nil {
		t.Fatal(err)
	}
	<-held
	var order []int
	for i := range 2 {
		if err := c.Post(context.Background(), func() { order = append(order, i) }); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Post(ctx, func() {}); err != context.DeadlineExceeded {
		t.Fatalf("Post to a full queue = %v", err)
	}
	if s := e.Stats(); s.Loops[0].Tasks != 2 {
		t.Fatalf("tasks waiting: %d", s.Loops[0].Tasks)
	}
	close(hold)
	ran := make(chan struct{})
	c.Post(context.Background(), func() { close(ran) })
	<-ran
	if len(order) != 2 || order[0] != 0 || order[1] != 1 {
		t.Fatalf("ran %v", order)
	}
}

// Stats counts queued bytes while a peer does not read, and none after.
func TestStatsQueued(t *testing.T) {
	e := newEngine(t, Options{Loops: 1, WriteQueueLimit: 8 << 20})
	cl, sv := tcpPair(t)
	c, err := e.Adopt(sv, nil, newRecorder())
	if err != nil {
		t.Fatal(err)
	}
	total := queueUp(t, c, 1<<20)
	s := e.Stats()
	if s.Conns() != 1 || s.QueuedBytes() != int64(c.Queued()) || s.QueuedBytes() < 1<<20 {
		t.Fatalf("stats %+v, queued %d", s, c.Queued())
	}
	readN(t, cl, total)
	if q := e.Stats().QueuedBytes(); q != 0 {
		t.Fatalf("%d bytes queued after the peer read everything", q)
	}
}
