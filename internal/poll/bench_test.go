//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package poll

import (
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tetherws/tether/internal/clock"
)

// idleConns is how many socket pairs the idle-memory benchmarks open: two
// descriptors each, under the 20,000 open files a process may have here.
const idleConns = 8000

// liveBytes is the heap in use plus goroutine stacks, after collecting.
func liveBytes() uint64 {
	var m runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return m.HeapAlloc + m.StackInuse
}

// socketPairs opens n connected Unix socket pairs as bare descriptors, so
// that they hold no Go memory of their own.
func socketPairs(b *testing.B, n int) [][2]int {
	b.Helper()
	ps := make([][2]int, n)
	for i := range ps {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
		if err != nil {
			b.Fatalf("pair %d: %v", i, err)
		}
		ps[i] = fds
	}
	b.Cleanup(func() {
		for _, p := range ps {
			syscall.Close(p[1]) // p[0] is fileConn's
		}
	})
	return ps
}

// fileConn makes a net.Conn of fd, which it closes (net.FileConn
// duplicates it; closing the os.File now rather than leaving it to its
// finalizer, which would close whatever has the number by then).
func fileConn(b *testing.B, fd int) net.Conn {
	f := os.NewFile(uintptr(fd), "")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	return nc
}

type idleHandler struct{}

func (idleHandler) OnData(*Conn, []byte) {}
func (idleHandler) OnClose(*Conn, error) {}

var idleResults sync.Map // name → bytes per connection, measured once

// measureOnce runs f once per process and reports its figure on every call
// of the benchmark (the figure is per connection, not per iteration).
func measureOnce(b *testing.B, name string, f func() float64) {
	b.StopTimer()
	v, ok := idleResults.Load(name)
	if !ok {
		v = f()
		idleResults.Store(name, v)
	}
	b.ReportMetric(v.(float64), "B/conn")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkIdleConn measures the live memory (heap and stacks) one idle
// adopted connection costs, the descriptors' own Go objects collected:
// bare, and with one armed timer as keepalive will have.
func BenchmarkIdleConn(b *testing.B) {
	for _, withTimer := range []bool{false, true} {
		name := "bare"
		if withTimer {
			name = "timer"
		}
		b.Run(name, func(b *testing.B) {
			measureOnce(b, "idle/"+name, func() float64 {
				e := newEngine(b, Options{})
				ps := socketPairs(b, idleConns)
				f := func() {}
				before := liveBytes()
				for _, p := range ps {
					c, err := e.Adopt(fileConn(b, p[0]), nil, idleHandler{})
					if err != nil {
						b.Fatal(err)
					}
					if withTimer {
						c.AfterFunc(time.Hour, f)
					}
				}
				time.Sleep(100 * time.Millisecond) // registered on the loops
				if n := e.Stats().Conns(); n != idleConns {
					b.Fatalf("%d connections registered", n)
				}
				return float64(liveBytes()-before) / idleConns
			})
		})
	}
}

// BenchmarkIdleGoroutineConn is the same for today's design, for
// comparison: a net.Conn with a goroutine parked in Read.
func BenchmarkIdleGoroutineConn(b *testing.B) {
	measureOnce(b, "idle/goroutine", func() float64 {
		ps := socketPairs(b, idleConns)
		before := liveBytes()
		var wg sync.WaitGroup
		conns := make([]net.Conn, len(ps))
		for i, p := range ps {
			nc := fileConn(b, p[0])
			conns[i] = nc
			wg.Go(func() {
				var buf [1]byte
				nc.Read(buf[:])
			})
		}
		time.Sleep(100 * time.Millisecond) // all parked
		per := float64(liveBytes()-before) / idleConns
		for _, nc := range conns {
			nc.Close()
		}
		wg.Wait()
		return per
	})
}

// BenchmarkEcho is throughput through the engine's echo (write back what
// is read, pausing at the write bound) over loopback TCP: ping-pong of
// 1 KiB messages (latency-bound) and a stream of 64 KiB writes.
func BenchmarkEcho(b *testing.B) {
	b.Run("pingpong-1KiB", func(b *testing.B) {
		cl := echoPeer(b)
		msg := make([]byte, 1024)
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			cl.Write(msg)
			if _, err := io.ReadFull(cl, msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stream-64KiB", func(b *testing.B) {
		streamEcho(b, echoPeer(b))
	})
}

// streamEcho writes b.N 64 KiB chunks to cl while reading the echo back.
func streamEcho(b *testing.B, cl net.Conn) {
	msg := make([]byte, 64<<10)
	b.SetBytes(int64(len(msg)))
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for n := 0; n < b.N*len(msg); {
			k, err := cl.Read(buf)
			if err != nil {
				return
			}
			n += k
		}
	}()
	for range b.N {
		cl.Write(msg)
	}
	<-done
}

func echoPeer(b *testing.B) net.Conn {
	e := newEngine(b, Options{})
	cl, sv := tcpPair(b)
	if _, err := e.Adopt(sv, nil, newEcho()); err != nil {
		b.Fatal(err)
	}
	return cl
}

// BenchmarkEchoGoroutine is the same echo with a goroutine per connection
// (io.Copy), for comparison. Its ping-pong is flattered: the client's and
// the server's sockets are on the same (the runtime's) poller, so one
// thread can run both ends, where with the engine each round trip crosses
// between the loop's thread and the runtime's twice. A client in another
// process, the real case, pays that either way.
func BenchmarkEchoGoroutine(b *testing.B) {
	b.Run("pingpong-1KiB", func(b *testing.B) {
		cl := goroutineEchoPeer(b)
		msg := make([]byte, 1024)
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			cl.Write(msg)
			if _, err := io.ReadFull(cl, msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stream-64KiB", func(b *testing.B) {
		cl := goroutineEchoPeer(b)
		streamEcho(b, cl)
	})
}

func goroutineEchoPeer(b *testing.B) net.Conn {
	cl, sv := tcpPair(b)
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(sv, sv)
	}()
	b.Cleanup(func() { sv.Close(); <-done })
	return cl
}

// manualClock is a clock whose time a benchmark sets, and whose timers
// never fire on their own: the benchmark calls runTimers itself.
type manualClock struct{ now time.Time }

func (m *manualClock) Now() time.Time                              { return m.now }
func (m *manualClock) AfterFunc(time.Duration, func()) clock.Timer { return noTimer{} }

type noTimer struct{}

func (noTimer) Stop() bool               { return false }
func (noTimer) Reset(time.Duration) bool { return false }

// BenchmarkTimerPass is the loop's cost per due timer, keepalive-style:
// 20,000 timers spread over one second, each re-arming itself for a second
// later when it runs; one op is one timer run (pop, call, Reset).
func BenchmarkTimerPass(b *testing.B) {
	if !Supported() {
		b.Skip()
	}
	const n = 20000
	clk := &manualClock{now: time.Unix(0, 0)}
	e := &Engine{opt: Options{Clock: clk}}
	e.opt.fill()
	l, err := newLoop(e, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer l.p.close()
	ran := 0
	for i := range n {
		var t *Timer
		t = l.afterFunc(time.Duration(i)*time.Second/n, func() {
			ran++
			t.Reset(time.Second)
		})
	}
	b.ResetTimer()
	for ran < b.N {
		clk.now = clk.now.Add(50 * time.Millisecond) // a 50 ms tick: ~1,000 due each pass
		l.runTimers()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(ran), "ns/timer")
}
