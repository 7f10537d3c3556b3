//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package poll

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newEngine starts an engine closed at the test's end, or skips the test
// where there is none.
func newEngine(t testing.TB, opt Options) *Engine {
	t.Helper()
	if !Supported() {
		t.Skip("no event engine on this system")
	}
	e, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// tcpPair returns a connected loopback pair: the client end and the
// server's *net.TCPConn, which tests adopt.
func tcpPair(t testing.TB) (net.Conn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	cl, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl, r.c.(*net.TCPConn)
}

// recorder is a Handler that keeps what it reads and how the connection ended.
type recorder struct {
	mu     sync.Mutex
	data   bytes.Buffer
	calls  int
	got    chan struct{} // signalled on each OnData
	closed chan error    // receives OnClose's error
	onData func(c *Conn, p []byte)
}

func newRecorder() *recorder {
	return &recorder{got: make(chan struct{}, 1), closed: make(chan error, 1)}
}

func (r *recorder) OnData(c *Conn, p []byte) {
	r.mu.Lock()
	r.data.Write(p)
	r.calls++
	r.mu.Unlock()
	select {
	case r.got <- struct{}{}:
	default:
	}
	if r.onData != nil {
		r.onData(c, p)
	}
}

func (r *recorder) OnClose(c *Conn, err error) { r.closed <- err }

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.data.Bytes()...)
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.data.Len()
}

// waitLen waits until n bytes were read.
func (r *recorder) waitLen(t testing.TB, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for r.len() < n {
		select {
		case <-r.got:
		case <-deadline:
			t.Fatalf("read %d bytes, want %d", r.len(), n)
		}
	}
}

func (r *recorder) waitClosed(t testing.TB) error {
	t.Helper()
	select {
	case err := <-r.closed:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("OnClose not called")
		return nil
	}
}

// echo is a Handler that writes back what it reads, pausing reads while
// its write queue is over the bound and resuming once it drained: the
// way the root package's driver is meant to push back on a peer that
// sends faster than it reads.
type echo struct {
	closed chan error
}

func newEcho() *echo { return &echo{closed: make(chan error, 1)} }

func (h *echo) OnData(c *Conn, p []byte) {
	if err := c.Send(p); err != nil {
		if errors.Is(err, ErrWouldBlock) {
			panic("echo: Send over the bound while reading was meant to be paused")
		}
		return
	}
	if c.Queued() >= c.l.e.opt.WriteQueueLimit {
		c.PauseRead()
	}
}

func (h *echo) OnDrain(c *Conn)            { c.ResumeRead() }
func (h *echo) OnClose(c *Conn, err error) { h.closed <- err }

// openFDs counts this process's open descriptors (Linux).
func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// readAll reads n bytes from c or fails.
func readN(t testing.TB, c net.Conn, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("reading %d bytes: %v", n, err)
	}
	return b
}
