//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package poll

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// While paused, the engine reads nothing: a peer writing without pause
// fills the socket buffers and blocks. Resumed, everything comes through.
func TestPauseStopsReading(t *testing.T) {
	e := newEngine(t, Options{})
	cl, sv := tcpPair(t)
	r := newRecorder()
	var once sync.Once
	paused := make(chan *Conn, 1)
	r.onData = func(c *Conn, p []byte) {
		once.Do(func() { c.PauseRead(); paused <- c })
	}
	if _, err := e.Adopt(sv, nil, r); err != nil {
		t.Fatal(err)
	}
	written := make(chan int, 1)
	go func() {
		p := make([]byte, 32<<10)
		total := 0
		for {
			cl.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
			n, err := cl.Write(p)
			total += n
			if err != nil {
				written <- total
				return
			}
		}
	}()
	c := <-paused
	var total int
	select {
	case total = <-written:
	case <-time.After(20 * time.Second):
		t.Fatal("the peer never blocked: the engine kept reading")
	}
	before := r.len()
	time.Sleep(50 * time.Millisecond)
	if r.len() != before || before >= total {
		t.Fatalf("read %d then %d of %d bytes while paused", before, r.len(), total)
	}
	t.Logf("peer blocked after %d bytes; %d read before the pause", total, before)
	c.ResumeRead()
	r.waitLen(t, total)
	cl.Close()
	if err := r.waitClosed(t); err != io.EOF {
		t.Fatalf("OnClose(%v)", err)
	}
}

// A peer that resets while reading is paused does not spin the loop (a
// hang-up is reported whatever the interest, level-triggered), and the
// end is seen once reading resumes.
func TestHangupWhilePaused(t *testing.T) {
	e := newEngine(t, Options{Loops: 1})
	cl, sv := tcpPair(t)
	r := newRecorder()
	var once sync.Once
	paused := make(chan *Conn, 1)
	r.onData = func(c *Conn, p []byte) {
		once.Do(func() { c.PauseRead(); paused <- c })
	}
	if _, err := e.Adopt(sv, nil, r); err != nil {
		t.Fatal(err)
	}
	cl.Write([]byte("a"))
	c := <-paused
	cl.(*net.TCPConn).SetLinger(0)
	cl.Close()
	cpu0 := cpuTime()
	time.Sleep(200 * time.Millisecond)
	if used := cpuTime() - cpu0; used > 100*time.Millisecond {
		t.Fatalf("%v of CPU in 200ms while paused on a hung-up socket", used)
	}
	select {
	case err := <-r.closed:
		t.Fatalf("closed while paused: %v", err)
	default:
	}
	c.ResumeRead()
	if err := r.waitClosed(t); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("OnClose(%v)", err)
	}
}

// cpuTime is the CPU this process used so far.
func cpuTime() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
