//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package poll

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func pattern(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{1})
	r.Read(b)
	return b
}

// Bytes written one at a time come back whole, in order.
func TestEchoOneByteWrites(t *testing.T) {
	e := newEngine(t, Options{})
	cl, sv := tcpPair(t)
	h := newEcho()
	if _, err := e.Adopt(sv, nil, h); err != nil {
		t.Fatal(err)
	}
	want := pattern(3000)
	go func() {
		for i := range want {
			cl.Write(want[i : i+1])
		}
	}()
	if got := readN(t, cl, len(want)); !bytes.Equal(got, want) {
		t.Fatal("echo differs")
	}
}

// Far more than the socket buffers hold, to a reader that takes its time:
// the echo queues, pauses reading at its bound, resumes when drained.
func TestEchoLargeSlowReader(t *testing.T) {
	e := newEngine(t, Options{WriteQueueLimit: 64 << 10})
	cl, sv := tcpPair(t)
	h := newEcho()
	if _, err := e.Adopt(sv, nil, h); err != nil {
		t.Fatal(err)
	}
	want := pattern(24 << 20)
	go func() {
		for p := want; len(p) > 0; {
			n := min(len(p), 1<<20+rand.IntN(1<<20))
			cl.Write(p[:n])
			p = p[n:]
		}
	}()
	got := make([]byte, 0, len(want))
	buf := make([]byte, 100<<10)
	cl.SetReadDeadline(time.Now().Add(60 * time.Second))
	for len(got) < len(want) {
		n, err := cl.Read(buf[:rand.IntN(len(buf))+1])
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
		got = append(got, buf[:n]...)
		if rand.IntN(50) == 0 {
			time.Sleep(time.Millisecond) // slow: the engine's queue fills
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatal("echo differs")
	}
	if q := e.Stats().QueuedBytes(); q != 0 {
		t.Fatalf("%d bytes still queued", q)
	}
}

// Writes from many goroutines at once are each written whole.
func TestConcurrentWritesStayWhole(t *testing.T) {
	e := newEngine(t, Options{WriteQueueLimit: 16 << 10})
	cl, sv := tcpPair(t)
	r := newRecorder()
	c, err := e.Adopt(sv, nil, r)
	if err != nil {
		t.Fatal(err)
	}
	const writers, records, size = 8, 200, 4000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rec := make([]byte, size)
			for i := range records {
				for k := 0; k+8 <= size; k += 8 {
					binary.LittleEndian.PutUint64(rec[k:], uint64(w<<32|i))
				}
				if err := c.Write(context.Background(), rec); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	got := readN(t, cl, writers*records*size)
	wg.Wait()
	next := make([]int, writers)
	for off := 0; off < len(got); off += size {
		rec := got[off : off+size]
		v := binary.LittleEndian.Uint64(rec)
		for k := 0; k+8 <= size; k += 8 {
			if binary.LittleEndian.Uint64(rec[k:]) != v {
				t.Fatalf("record at %d is cut", off)
			}
		}
		w, i := int(v>>32), int(v&0xffffffff)
		if i != next[w] {
			t.Fatalf("writer %d: record %d, want %d", w, i, next[w])
		}
		next[w]++
	}
}

// Bytes the caller read before adopting (a bufio.Reader's) come first,
// before those waiting in the socket.
func TestLeftoverFirst(t *testing.T) {
	e := newEngine(t, Options{})
	cl, sv := tcpPair(t)
	cl.Write([]byte("GET / HTTP/1.1\r\n\r\nearly"))
	br := bufio.NewReader(sv)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	left, _ := br.Peek(br.Buffered())
	if string(left) != "early" {
		t.Fatalf("buffered %q", left)
	}
	cl.Write([]byte("-late"))
	time.Sleep(20 * time.Millisecond) // in the socket before adoption
	r := newRecorder()
	if _, err := e.Adopt(sv, left, r); err != nil {
		t.Fatal(err)
	}
	left[0] = 'X' // Adopt copied it
	r.waitLen(t, len("early-late"))
	if got := string(r.bytes()); got != "early-late" {
		t.Fatalf("read %q", got)
	}
}

// A leftover is held back while reading is paused, then delivered first.
func TestLeftoverWaitsForResume(t *testing.T) {
	e := newEngine(t, Options{})
	cl, sv := tcpPair(t)
	r := newRecorder()
	var once sync.Once
	paused := make(chan *Conn, 1)
	r.onData = func(c *Conn, p []byte) {
		once.Do(func() { c.PauseRead(); paused <- c })
	}
	cl.Write([]byte("socket"))
	time.Sleep(20 * time.Millisecond)
	c, err := e.Adopt(sv, []byte("left-"), r)
	if err != nil {
		t.Fatal(err)
	}
	<-paused
	time.Sleep(20 * time.Millisecond)
	if got := string(r.bytes()); got != "left-" {
		t.Fatalf("read %q while paused", got)
	}
	c.ResumeRead()
	r.waitLen(t, len("left-socket"))
	if got := string(r.bytes()); got != "left-socket" {
		t.Fatalf("read %q", got)
	}
}

// Unix sockets are adopted like TCP ones.
func TestAdoptUnix(t *testing.T) {
	e := newEngine(t, Options{})
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		done <- c
	}()
	cl, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	sv := <-done
	if _, ok := sv.(*net.UnixConn); !ok {
		t.Fatalf("accepted a %T", sv)
	}
	h := newEcho()
	if _, err := e.Adopt(sv, nil, h); err != nil {
		t.Fatal(err)
	}
	want := pattern(1 << 20)
	go cl.Write(want)
	if got := readN(t, cl, len(want)); !bytes.Equal(got, want) {
		t.Fatal("echo differs")
	}
	cl.Close()
	if err := <-h.closed; err == nil {
		t.Fatal("OnClose without an error")
	}
}

// A connection without a descriptor is refused and left open.
func TestAdoptPipe(t *testing.T) {
	e := newEngine(t, Options{})
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := e.Adopt(a, nil, newRecorder()); err != ErrNoDescriptor {
		t.Fatalf("Adopt(net.Pipe) = %v", err)
	}
	go a.Write([]byte("x"))
	readN(t, b, 1)
}

// Tiny read buffers and one read per event: every byte comes through the
// level-triggered re-reports, and reads that find the socket empty
// (EAGAIN, after a read that filled the buffer exactly) are harmless.
func TestEchoSmallReadBuffer(t *testing.T) {
	for _, size := range []int{1, 7, 16} {
		e := newEngine(t, Options{ReadBufferSize: size, ReadsPerEvent: 1})
		cl, sv := tcpPair(t)
		if _, err := e.Adopt(sv, nil, newEcho()); err != nil {
			t.Fatal(err)
		}
		want := pattern(64 << 10)
		go func() {
			for p := want; len(p) > 0; p = p[16:] {
				cl.Write(p[:16])
			}
		}()
		if got := readN(t, cl, len(want)); !bytes.Equal(got, want) {
			t.Fatalf("buffer %d: echo differs", size)
		}
	}
}

// counter is a Handler that only counts what it reads.
type counter struct{ n atomic.Int64 }

func (h *counter) OnData(_ *Conn, p []byte) { h.n.Add(int64(len(p))) }
func (h *counter) OnClose(*Conn, error)     {}

// A peer that never stops sending does not starve another connection of
// the same loop: the flood gets ReadsPerEvent reads per turn, then the
// other connection's turn comes.
func TestFairness(t *testing.T) {
	e := newEngine(t, Options{Loops: 1})
	flood, sv1 := tcpPair(t)
	sink := &counter{}
	if _, err := e.Adopt(sv1, nil, sink); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		p := make([]byte, 256<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			flood.SetWriteDeadline(time.Now().Add(time.Second))
			flood.Write(p)
		}
	}()
	for sink.n.Load() < 1<<20 {
		time.Sleep(time.Millisecond)
	}
	cl, sv2 := tcpPair(t)
	if _, err := e.Adopt(sv2, nil, newEcho()); err != nil {
		t.Fatal(err)
	}
	msg := []byte("ping")
	start := time.Now()
	for range 100 {
		cl.Write(msg)
		readN(t, cl, len(msg))
	}
	el := time.Since(start)
	t.Logf("100 round trips in %v beside a flood (%d MiB sunk)", el, sink.n.Load()>>20)
	if el > 10*time.Second {
		t.Fatal("starved")
	}
}
