package tether

import (
	"net"
	"os"
	"sync"
	"time"

	"github.com/tetherws/tether/internal/poll"
)

// Engine chooses what drives a connection: what reads its socket, answers
// pings and hands messages over. Both engines run the same protocol code,
// keepalive, dispatch and closing, so a connection behaves, logs and
// measures the same under either; what differs is what an idle connection
// costs (docs/scale.md).
type Engine uint8

const (
	// EngineAuto gives TCP and Unix sockets to the event engine where the
	// system has one (epoll on Linux, kqueue on macOS and the BSDs), and
	// every other connection (TLS, net.Pipe, custom net.Conns, connections
	// with a Relay) a reader goroutine of its own.
	EngineAuto Engine = iota
	// EngineGoroutine gives the connection a reader goroutine of its own,
	// as gorilla/websocket and coder/websocket do: about 2.5 KiB more per
	// idle connection than the event engine.
	EngineGoroutine
	// EnginePoll asks for the event engine: the socket leaves Go's poller
	// for one of a few event loops (about one per core), which read it into
	// a buffer of their own, answer pings and measure pongs, and hand whole
	// messages to Read or, for Serve and Go, to a goroutine started only
	// while the connection has messages to handle. An idle connection owns
	// no goroutine and no buffer. Connections without a socket descriptor
	// fall back to EngineGoroutine.
	EnginePoll
)

// String returns "auto", "goroutine" or "poll".
func (e Engine) String() string {
	switch e {
	case EngineGoroutine:
		return "goroutine"
	case EnginePoll:
		return "poll"
	}
	return "auto"
}

// envEngine is TETHER_ENGINE, read once: it overrides ConnOptions.Engine
// for the whole process, so a test suite can run under either engine.
var envEngine = sync.OnceValue(func() Engine {
	switch os.Getenv("TETHER_ENGINE") {
	case "goroutine":
		return EngineGoroutine
	case "poll":
		return EnginePoll
	}
	return EngineAuto
})

// wantsLoop reports whether a connection over nc goes to the event engine.
func (cfg *config) wantsLoop(nc net.Conn) bool {
	e := cfg.engine
	if env := envEngine(); env != EngineAuto {
		e = env
	}
	if e == EngineGoroutine || cfg.relay != nil || !poll.Supported() {
		return false
	}
	switch nc.(type) {
	case *net.TCPConn, *net.UnixConn:
		return true
	}
	return false
}

// engine is the process's event engine, started with the first connection
// it takes and stopped engineLinger after the last one ends, so a process
// (or a test) without connections on it has no loop goroutines, and one
// whose connections come and go (a client that reconnects, short-lived
// connections one at a time) does not start it for each.
var engine struct {
	mu    sync.Mutex
	e     *poll.Engine
	conns int         // adopted and not yet closed (OnClose not yet run)
	idle  *time.Timer // stops the engine: armed while conns is 0
}

const engineLinger = 100 * time.Millisecond

// writeQueueLimit bounds what an engine connection queues beyond what its
// socket takes: past it Write waits, as a write on a full socket blocks
// under the goroutine engine, so a slow reader is found as soon (the
// hub's slow-consumer policy) and costs little more memory.
const writeQueueLimit = 16 << 10

// takeSocket hands nc to the engine, which calls h once the connection is
// started. It fails, leaving nc open, when nc has no descriptor or the
// engine cannot start.
func takeSocket(nc net.Conn, early []byte, h poll.Handler) (*poll.Conn, error) {
	engine.mu.Lock()
	defer engine.mu.Unlock()
	if engine.idle != nil {
		engine.idle.Stop()
		engine.idle = nil
	}
	if engine.e == nil {
		e, err := poll.New(poll.Options{WriteQueueLimit: writeQueueLimit})
		if err != nil {
			return nil, err
		}
		engine.e = e
		workers.mu.Lock()
		workers.quit = make(chan struct{})
		workers.mu.Unlock()
	}
	pc, err := engine.e.Take(nc, early, h)
	if err != nil {
		return nil, err
	}
	engine.conns++
	return pc, nil
}

// socketReleased is called, on a loop, when an adopted connection has
// closed; after the last one the engine stops, unless another comes within
// engineLinger.
func socketReleased() {
	engine.mu.Lock()
	defer engine.mu.Unlock()
	engine.conns--
	if engine.conns == 0 && engine.e != nil && engine.idle == nil {
		engine.idle = time.AfterFunc(engineLinger, stopIdleEngine)
	}
}

// stopIdleEngine stops the engine if it still has no connection. It runs on
// a goroutine of its own: Close waits for the loops.
func stopIdleEngine() {
	engine.mu.Lock()
	if engine.conns != 0 || engine.e == nil || engine.idle == nil {
		engine.mu.Unlock()
		return // a connection came, or this timer was stopped too late
	}
	e := engine.e
	engine.idle, engine.e = nil, nil
	workers.mu.Lock()
	close(workers.quit) // idle workers end with the engine
	workers.mu.Unlock()
	engine.mu.Unlock()
	e.Close() // outside the lock: a new engine may start meanwhile
}

// workers call Serve's and Go's handle for the engine's connections. A
// connection with a message to handle gets one (an idle one, or a new one
// when none is idle) until it has none left, so a handle that blocks holds
// up only its own connection, and an idle connection holds no goroutine.
// Up to maxIdleWorkers wait for work once done, so a busy server does not
// start a goroutine per message (nor grow a new one's stack for the write
// path: with 64 kept and 100 busy connections, 6 % of an echo's CPU went
// to copying stacks); they end with the engine.
var workers struct {
	work chan *driver // unbuffered: taken only by a worker waiting for it
	mu   sync.Mutex
	idle int
	quit chan struct{} // closed when the engine stops
}

const maxIdleWorkers = 256

func init() { workers.work = make(chan *driver) }

// startWorker has a worker serve d.
func startWorker(d *driver) {
	select {
	case workers.work <- d:
	default:
		go worker(d)
	}
}

func worker(d *driver) {
	for {
		d.serve()
		workers.mu.Lock()
		if workers.idle >= maxIdleWorkers {
			workers.mu.Unlock()
			return
		}
		workers.idle++
		quit := workers.quit
		workers.mu.Unlock()
		select {
		case d = <-workers.work:
		case <-quit:
			d = nil
		}
		workers.mu.Lock()
		workers.idle--
		workers.mu.Unlock()
		if d == nil {
			return
		}
	}
}

// EngineStats describes the event engine's current state.
type EngineStats struct {
	Running bool // the engine has loops: some connection is on it
	Conns   int  // connections on the engine
}

// ReadEngineStats returns the event engine's state: how many connections it
// drives now. With no connection on it, it runs no goroutine.
func ReadEngineStats() EngineStats {
	engine.mu.Lock()
	defer engine.mu.Unlock()
	return EngineStats{Running: engine.e != nil, Conns: engine.conns}
}
