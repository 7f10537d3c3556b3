package tether

import (
	"context"
	"sync"
)

// sema is a one-slot semaphore whose waiters may give up: what a channel of
// capacity one did for the write locks, without the channel, which every
// connection held two of (112 bytes each on the heap). Taking or giving
// back a free one locks a mutex; only a writer that has to wait makes
// something to wait on, and it is pooled. Waiters are served in order, the
// semaphore handed from one to the next, as a channel hands its slot to
// the first blocked sender.
type sema struct {
	mu      sync.Mutex
	held    bool
	waiters *semaWaiter // in arrival order
}

// semaWaiter is a goroutine waiting for a sema.
type semaWaiter struct {
	ch   chan struct{} // capacity 1: receives the semaphore
	next *semaWaiter
}

var semaWaiters = sync.Pool{New: func() any { return &semaWaiter{ch: make(chan struct{}, 1)} }}

// tryAcquire takes the semaphore if it is free.
func (s *sema) tryAcquire() bool {
	s.mu.Lock()
	ok := !s.held
	s.held = true
	s.mu.Unlock()
	return ok
}

// acquire takes the semaphore, waiting for it until ctx is done or, when
// done is not nil, done is closed: then it returns errSemaCtx or
// errSemaDone without it.
func (s *sema) acquire(ctx context.Context, done <-chan struct{}) error {
	s.mu.Lock()
	if !s.held {
		s.held = true
		s.mu.Unlock()
		return nil
	}
	w := semaWaiters.Get().(*semaWaiter)
	p := &s.waiters
	for *p != nil {
		p = &(*p).next
	}
	*p = w
	s.mu.Unlock()

	var err error
	select {
	case <-w.ch:
		semaWaiters.Put(w)
		return nil
	case <-done:
		err = errSemaDone
	case <-ctx.Done():
		err = errSemaCtx
	}
	s.mu.Lock()
	removed := s.remove(w)
	s.mu.Unlock()
	if !removed {
		// The semaphore came as we gave up: pass it on.
		<-w.ch
		s.release()
	}
	semaWaiters.Put(w)
	return err
}

// remove takes w out of the waiters; false if it is no longer there (it
// was handed the semaphore). The caller holds s.mu.
func (s *sema) remove(w *semaWaiter) bool {
	for p := &s.waiters; *p != nil; p = &(*p).next {
		if *p == w {
			*p = w.next
			w.next = nil
			return true
		}
	}
	return false
}

// release gives the semaphore back, or hands it to the first waiter.
func (s *sema) release() {
	s.mu.Lock()
	w := s.waiters
	if w == nil {
		s.held = false
		s.mu.Unlock()
		return
	}
	s.waiters = w.next
	w.next = nil
	s.mu.Unlock()
	w.ch <- struct{}{}
}

// Why sema.acquire gave up; the connection's acquire turns them into its
// errors.
var (
	errSemaDone = semaError("connection done")
	errSemaCtx  = semaError("context done")
)

type semaError string

func (e semaError) Error() string { return string(e) }
