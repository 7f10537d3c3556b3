package tether

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// socketPair returns the two ends of a loopback TCP connection, closed
// when the test ends.
func socketPair(tb testing.TB) (net.Conn, net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, _ := ln.Accept()
		accepted <- nc
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	b := <-accepted
	tb.Cleanup(func() {
		a.Close()
		b.Close()
	})
	return a, b
}

func TestRawSocketKinds(t *testing.T) {
	a, _ := socketPair(t)
	if _, ok := rawSocket(a); !ok {
		t.Error("TCP connection: no raw I/O")
	}
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if _, ok := rawSocket(p1); ok {
		t.Error("net.Pipe: raw I/O, want net.Conn's")
	}
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	u, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if _, ok := rawSocket(u); !ok {
		t.Error("Unix connection: no raw I/O")
	}
}

// TestSockWriteBlocks: a write far larger than the socket buffers waits for
// the reader (EAGAIN, then the poller) and arrives whole and in order.
func TestSockWriteBlocks(t *testing.T) {
	a, b := socketPair(t)
	rc, _ := rawSocket(a)
	msg := make([]byte, 8<<20)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	got := make(chan []byte, 1)
	go func() {
		var buf bytes.Buffer
		chunk := make([]byte, 64<<10)
		for buf.Len() < len(msg) {
			time.Sleep(time.Millisecond) // a slow reader
			n, err := b.Read(chunk)
			buf.Write(chunk[:n])
			if err != nil {
				break
			}
		}
		got <- buf.Bytes()
	}()
	if err := sockWrite(a, rc, msg); err != nil {
		t.Fatal(err)
	}
	if g := <-got; !bytes.Equal(g, msg) {
		t.Fatalf("received %d bytes, not the %d written", len(g), len(msg))
	}
}

// TestSockErrors: raw I/O fails as net.Conn does: an *net.OpError naming
// the operation, io.EOF at the end, the deadline and a closed connection
// recognizable with errors.Is.
func TestSockErrors(t *testing.T) {
	a, b := socketPair(t)
	r := newConnReader(a, nil)
	a.SetReadDeadline(time.Now().Add(-time.Second))
	_, err := r.sockRead(make([]byte, 10))
	var oe *net.OpError
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("read past the deadline: %v, want a read OpError for the deadline", err)
	}
	a.SetReadDeadline(time.Time{})
	b.Write([]byte("hi"))
	b.Close()
	buf := make([]byte, 10)
	if n, err := r.sockRead(buf); n != 2 || err != nil || string(buf[:2]) != "hi" {
		t.Fatalf("read = %d %v, want the 2 bytes sent", n, err)
	}
	if n, err := r.sockRead(buf); n != 0 || err != io.EOF {
		t.Fatalf("read at the end = %d %v, want 0, io.EOF", n, err)
	}

	rc, _ := rawSocket(a)
	deadline := time.Now().Add(5 * time.Second)
	for err = nil; err == nil && time.Now().Before(deadline); {
		err = sockWrite(a, rc, make([]byte, 64<<10)) // the peer is gone: EPIPE or ECONNRESET soon
	}
	if !errors.As(err, &oe) || oe.Op != "write" {
		t.Fatalf("write to a closed peer: %v, want a write OpError", err)
	}
	var se *os.SyscallError
	if !errors.As(err, &se) {
		t.Errorf("write to a closed peer: %v, want the system call's error inside", err)
	}
	a.Close()
	if err := sockWrite(a, rc, []byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write on a closed connection: %v, want net.ErrClosed", err)
	}
	if _, err := r.sockRead(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read on a closed connection: %v, want net.ErrClosed", err)
	}
}
