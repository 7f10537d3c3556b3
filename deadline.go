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
//
// A connection makes its binding with the first frame written under a
// context that can end: one that writes only under contexts that cannot
// (keepalive's pings, context.Background) never needs one.
type writeBinding struct {
	mu     sync.Mutex
	done   <-chan struct{} // Done of the bound context; nil when none is
	dl     time.Time       // its deadline, zero without one
	stop   func() bool     // undoes the AfterFunc registration
	active bool            // a frame is being written
	ended  bool            // the connection finished: unbind after the active frame
	fired  chan struct{}   // the callback ran; capacity 1
	onDone func()          // the callback, bound once
}

// writeCtxDone runs when the bound context is cancelled: a write blocked now
// or later under it fails at once.
func (c *conn) writeCtxDone() {
	c.nc.SetWriteDeadline(aLongTimeAgo)
	c.wb.Load().fired <- struct{}{}
}

// bindWrite makes the socket's write deadline follow ctx for the frame about
// to be written; endWrite says the frame is done. The caller holds frameSem.
func (c *conn) bindWrite(ctx context.Context) {
	done := ctx.Done()
	wb := c.wb.Load()
	if wb == nil {
		if done == nil {
			return // context.Background and the like, and nothing bound before
		}
		wb = &writeBinding{fired: make(chan struct{}, 1), onDone: c.writeCtxDone}
		c.wb.Store(wb) // only frameSem's holder stores
	}
	var dl time.Time
	if done != nil {
		dl, _ = ctx.Deadline()
	}
	wb.mu.Lock()
	defer wb.mu.Unlock()
	wb.active = true
	if c.isDone() {
		// finish's unbindWrite may have looked before the binding was
		// made: unbind after this frame in its stead.
		wb.ended = true
	}
	if done == wb.done && dl.Equal(wb.dl) {
		return // the common case: the context of the last frame
	}
	wb.unbindLocked(c)
	if done == nil {
		return // context.Background and the like: no deadline, never cancelled
	}
	if !dl.IsZero() {
		c.nc.SetWriteDeadline(dl)
	}
	wb.done, wb.dl = done, dl
	wb.stop = context.AfterFunc(ctx, wb.onDone)
}

// endWrite marks the end of a frame written after bindWrite.
func (c *conn) endWrite() {
	wb := c.wb.Load()
	if wb == nil {
		return
	}
	wb.mu.Lock()
	wb.active = false
	if wb.ended {
		wb.unbindLocked(c)
	}
	wb.mu.Unlock()
}

// unbindWrite drops the binding when the connection ends: at once, or after
// the frame being written.
func (c *conn) unbindWrite() {
	wb := c.wb.Load()
	if wb == nil {
		return // bindWrite makes one ended from now on
	}
	wb.mu.Lock()
	wb.ended = true
	if !wb.active {
		wb.unbindLocked(c)
	}
	wb.mu.Unlock()
}

// unbindLocked undoes the binding, after waiting for a cancellation already
// in progress, so that no deadline of the old context outlives it and
// poisons the next write. The caller holds wb.mu.
func (wb *writeBinding) unbindLocked(c *conn) {
	if wb.done == nil {
		return
	}
	reset := !wb.dl.IsZero()
	if !wb.stop() {
		<-wb.fired
		reset = true
	}
	if reset {
		c.nc.SetWriteDeadline(time.Time{})
	}
	wb.done, wb.dl, wb.stop = nil, time.Time{}, nil
}
