// Package poll is Tether's event engine: a few event loops that own
// adopted sockets, read them into one buffer per loop, run timers and
// flush queued writes, so that an idle connection costs a small struct (no
// goroutine, no buffer, no runtime timer). It knows descriptors,
// readiness, timers and write queues, and nothing of WebSocket: the root
// package's driver feeds what OnData gives it to its protocol core and
// writes frames with Write and Send. It runs on epoll (Linux) and kqueue
// (macOS and the BSDs); elsewhere New returns ErrUnsupported and callers
// keep a goroutine per connection.
//
// # Threading
//
// Each loop is one goroutine, blocked in epoll_wait or kevent when it has
// nothing to do. On it run, one at a time: a connection's Handler methods
// (OnData, OnClose, OnDrain), the functions of its Timers, and functions
// given to Post. They must not block, since while one runs no other
// connection of the loop is served; slow work belongs on a worker, which
// may then call back into the Conn.
//
// Conn's methods may be called from any goroutine, callbacks included,
// with three exceptions that would wait for the loop itself: Write (which
// waits for room in the write queue: use Send on the loop), Post (which
// waits for room in the task queue: on the loop, just call the function)
// and Engine.Close. A fake clock's Advance likewise waits for the loops to
// run the timers it makes due, so it must not be called from a loop.
//
// # Level-triggered
//
// Descriptors are watched level-triggered: a socket that still has bytes
// after the loop's few reads (ReadsPerEvent, for fairness), or that a
// paused connection leaves unread, is simply reported again. Edge-triggered
// polling saves a system call now and then but loses wake-ups whenever a
// reader stops before EAGAIN, which is exactly what fairness and pausing
// do (gobwas/ws #121 and #143 show the bugs). Write interest is armed only
// while a connection has bytes queued, and a paused connection is taken
// out of the poller altogether, because a hung-up socket is reported
// whatever its mask and would otherwise wake the loop in a spin.
//
// # Memory
//
// Every queue is bounded: a connection's write queue by
// Options.WriteQueueLimit (Write waits, Send fails with ErrWouldBlock),
// each loop's tasks by Options.TaskQueue (Post waits), and the requests a
// connection makes of its loop (register, close, resume) by one pending
// entry per connection. Pause reading (PauseRead) to stop taking bytes from
// a peer: TCP then pushes back on it.
package poll
