package tether

import (
	"context"
	"sync"
	"time"
)

// aLongTimeAgo is the write deadline that makes a blocked write return at once.
var aLongTimeAgo = time.Unix(1, 0)

// writeBinding makes the socket's write side follow the context of the
// frames being written: its deadline, and an immediate deadline once it is
// cancelled, so a cancelled context aborts a write blocked on a full socket.
//
// Registering for a context's cancellation (context.AfterFunc) allocates, and
// an application writes every message of a connection under the same context
// (the request's, in a handler), so the registration stays in place from one
// frame to the next and is only replaced when a frame comes with another
// context. It is dropped when the connection ends, once no frame is being
// written, so no callback outlives the connection.
type writeBinding struct {
	mu     sync.Mutex
	done   <-chan struct{} // Done of the bound context; nil when none is
	dl     time.Time       // its deadline, zero without one
	stop   func() bool     // undoes the AfterFunc registration
	active bool            // a frame is being written
	ended  bool            // the connection finished: unbind after the active frame
	fired  chan struct{}   // the callback ran; capacity 1, made once
	onDone func()          // the callback, bound once
}

// writeCtxDone runs when the bound context is cancelled: a write blocked now
// or later under it fails at once.
func (c *conn) writeCtxDone() {
	c.nc.SetWriteDeadline(aLongTimeAgo)
	c.wb.fired <- struct{}{}
}

// bindWrite makes the socket's write deadline follow ctx for the frame about
// to be written; endWrite says the frame is done. The caller holds frameSem.
func (c *conn) bindWrite(ctx context.Context) {
	done := ctx.Done()
	var dl time.Time
	if done != nil {
		dl, _ = ctx.Deadline()
	}
	c.wb.mu.Lock()
	defer c.wb.mu.Unlock()
	c.wb.active = true
	if done == c.wb.done && dl.Equal(c.wb.dl) {
		return // the common case: the context of the last frame
	}
	c.unbindLocked()
	if done == nil {
		return // context.Background and the like: no deadline, never cancelled
	}
	if !dl.IsZero() {
		c.nc.SetWriteDeadline(dl)
	}
	if c.wb.onDone == nil { // first registration: most connections never make one
		c.wb.fired = make(chan struct{}, 1)
		c.wb.onDone = c.writeCtxDone
	}
	c.wb.done, c.wb.dl = done, dl
	c.wb.stop = context.AfterFunc(ctx, c.wb.onDone)
}

// endWrite marks the end of a frame written after bindWrite.
func (c *conn) endWrite() {
	c.wb.mu.Lock()
	c.wb.active = false
	if c.wb.ended {
		c.unbindLocked()
	}
	c.wb.mu.Unlock()
}

// unbindWrite drops the binding when the connection ends: at once, or after
// the frame being written.
func (c *conn) unbindWrite() {
	c.wb.mu.Lock()
	c.wb.ended = true
	if !c.wb.active {
		c.unbindLocked()
	}
	c.wb.mu.Unlock()
}

// unbindLocked undoes the binding, after waiting for a cancellation already
// in progress, so that no deadline of the old context outlives it and
// poisons the next write. The caller holds wb.mu.
func (c *conn) unbindLocked() {
	if c.wb.done == nil {
		return
	}
	reset := !c.wb.dl.IsZero()
	if !c.wb.stop() {
		<-c.wb.fired
		reset = true
	}
	if reset {
		c.nc.SetWriteDeadline(time.Time{})
	}
	c.wb.done, c.wb.dl, c.wb.stop = nil, time.Time{}, nil
}
