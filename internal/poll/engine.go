package poll

import (
	"errors"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/tetherws/tether/internal/clock"
)

var (
	// ErrUnsupported is returned by New on systems without epoll or kqueue.
	ErrUnsupported = errors.New("poll: no event engine on this system")
	// ErrNoDescriptor is returned by Adopt for a connection that has no
	// socket descriptor of its own (TLS, net.Pipe, custom net.Conns).
	ErrNoDescriptor = errors.New("poll: connection has no socket descriptor")
	// ErrClosed is what writes return on a connection closed locally, and
	// what OnClose receives for Close and CloseNow.
	ErrClosed = errors.New("poll: connection closed")
	// ErrEngineClosed is what OnClose receives when the engine shuts down,
	// and what Adopt and Post return afterwards.
	ErrEngineClosed = errors.New("poll: engine closed")
	// ErrWouldBlock is Send's answer when the connection's write queue is
	// at its bound: the peer is not reading fast enough.
	ErrWouldBlock = errors.New("poll: write queue full")
)

// Defaults for Options' zero fields.
const (
	DefaultReadBufferSize  = 64 << 10
	DefaultReadsPerEvent   = 3
	DefaultWriteQueueLimit = 256 << 10
	DefaultTaskQueue       = 1024
)

// Options configure an Engine. The zero value is usable.
type Options struct {
	// Loops is the number of event loops (goroutines); default GOMAXPROCS.
	Loops int
	// ReadBufferSize is each loop's read buffer, shared by its
	// connections, so the most one OnData call sees; default 64 KiB.
	ReadBufferSize int
	// ReadsPerEvent bounds the reads made for one connection each time it
	// is readable, so that a fast sender cannot starve the loop's other
	// connections (level-triggered: what is left is reported again).
	ReadsPerEvent int
	// WriteQueueLimit is the number of queued bytes per connection past
	// which Write waits and Send fails; default 256 KiB.
	WriteQueueLimit int
	// TaskQueue bounds each loop's queue of Post calls; default 1024.
	TaskQueue int
	// Clock drives timers; default clock.Real. With another clock (a
	// clock.Fake), timers run only when it fires them, each loop holding
	// one of its timers for its earliest deadline.
	Clock clock.Clock
}

func (o *Options) fill() {
	if o.Loops <= 0 {
		o.Loops = runtime.GOMAXPROCS(0)
	}
	if o.ReadBufferSize <= 0 {
		o.ReadBufferSize = DefaultReadBufferSize
	}
	if o.ReadsPerEvent <= 0 {
		o.ReadsPerEvent = DefaultReadsPerEvent
	}
	if o.WriteQueueLimit <= 0 {
		o.WriteQueueLimit = DefaultWriteQueueLimit
	}
	if o.TaskQueue <= 0 {
		o.TaskQueue = DefaultTaskQueue
	}
	if o.Clock == nil {
		o.Clock = clock.Real
	}
}

// Supported reports whether this system has an engine (epoll or kqueue).
func Supported() bool { return supported }

// Engine is a set of event loops that own adopted sockets.
type Engine struct {
	opt    Options
	loops  []*loop
	wg     sync.WaitGroup
	closed atomic.Bool
}

// New starts an engine's loops.
func New(opt Options) (*Engine, error) {
	opt.fill()
	e := &Engine{opt: opt}
	for i := range opt.Loops {
		l, err := newLoop(e, i)
		if err != nil {
			for _, l := range e.loops {
				l.p.close()
			}
			return nil, err
		}
		e.loops = append(e.loops, l)
	}
	for _, l := range e.loops {
		e.wg.Add(1)
		go l.run()
	}
	return e, nil
}

// Close stops the engine: every connection is closed (OnClose gets
// ErrEngineClosed), tasks not yet run are dropped, and the loops end.
// It waits for them, so it must not be called from a loop's callback.
func (e *Engine) Close() error {
	if !e.closed.CompareAndSwap(false, true) {
		return nil
	}
	for _, l := range e.loops {
		l.quit.Store(true)
		l.p.wake()
	}
	e.wg.Wait()
	return nil
}

// Adopt takes over nc, a socket connection (*net.TCPConn, *net.UnixConn,
// or any net.Conn with SyscallConn over a socket): its descriptor is
// duplicated and nc is closed, even if the engine turns out closed. It is
// registered on the loop with the fewest connections; h's callbacks then
// run there. leftover, bytes already read from nc by the caller (what a
// bufio.Reader holds past a handshake), is copied and delivered to OnData
// before anything read from the socket. Writes may start at once.
//
// Connections without a descriptor return ErrNoDescriptor and are left
// open: the caller keeps driving them its own way.
func (e *Engine) Adopt(nc net.Conn, leftover []byte, h Handler) (*Conn, error) {
	c, err := e.Take(nc, leftover, h)
	if err != nil {
		return nil, err
	}
	if err := c.Start(); err != nil {
		return nil, err
	}
	return c, nil
}

// Take is Adopt in two steps, for a caller that must publish the Conn
// before any callback can run: Take takes nc over (writes and closes work
// at once), Start hands the connection to its loop, which reads it from
// then on. A connection closed before Start is closed on its loop, and
// Start then does nothing.
func (e *Engine) Take(nc net.Conn, leftover []byte, h Handler) (*Conn, error) {
	if e.closed.Load() {
		return nil, ErrEngineClosed
	}
	fd, err := dupConn(nc)
	if err != nil {
		return nil, err
	}
	l := e.leastLoaded()
	c := newConn(l, fd, h, leftover)
	l.nconns.Add(1)
	return c, nil
}

// Start hands a connection from Take to its loop.
func (c *Conn) Start() error {
	if !c.l.enqueue(c, opRegister) {
		c.l.nconns.Add(-1)
		sysClose(int(c.fd))
		return ErrEngineClosed
	}
	return nil
}

func (e *Engine) leastLoaded() *loop {
	best := e.loops[0]
	for _, l := range e.loops[1:] {
		if l.nconns.Load() < best.nconns.Load() {
			best = l
		}
	}
	return best
}

// osErr wraps a system call's error as os.SyscallError, or returns nil.
func osErr(call string, err error) error {
	if err == nil {
		return nil
	}
	return os.NewSyscallError(call, err)
}
