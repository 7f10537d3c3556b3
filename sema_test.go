package tether

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestSemaOrder: waiters get the semaphore in the order they came.
func TestSemaOrder(t *testing.T) {
	var s sema
	if !s.tryAcquire() || s.tryAcquire() {
		t.Fatal("tryAcquire: want the first to take it and the second not")
	}
	got := make(chan int, 3)
	for i := range 3 {
		go func() {
			if err := s.acquire(context.Background(), nil); err != nil {
				t.Error(err)
			}
			got <- i
			s.release()
		}()
		eventually(t, "a waiter queued", func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			n := 0
			for w := s.waiters; w != nil; w = w.next {
				n++
			}
			return n == i+1
		})
	}
	s.release()
	for i := range 3 {
		if g := <-got; g != i {
			t.Fatalf("waiter %d served in place %d", g, i)
		}
	}
	if !s.tryAcquire() {
		t.Fatal("free after the last release: want tryAcquire to take it")
	}
}

// TestSemaGiveUp: a waiter whose context ends or whose done channel closes
// leaves without the semaphore, and the next release finds no one.
func TestSemaGiveUp(t *testing.T) {
	var s sema
	s.tryAcquire()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := s.acquire(ctx, nil); err != errSemaCtx {
		t.Fatalf("acquire with a context that ends: %v, want errSemaCtx", err)
	}
	done := make(chan struct{})
	close(done)
	if err := s.acquire(context.Background(), done); err != errSemaDone {
		t.Fatalf("acquire after done: %v, want errSemaDone", err)
	}
	if s.waiters != nil {
		t.Fatal("a waiter that gave up is still queued")
	}
	s.release()
	if !s.tryAcquire() {
		t.Fatal("not free after release")
	}
}

// TestSemaHandedWhileGivingUp: waiters that give up as the semaphore is
// handed to them pass it on; none is lost and no two hold it.
func TestSemaHandedWhileGivingUp(t *testing.T) {
	var (
		s       sema
		holders int
		mu      sync.Mutex
		wg      sync.WaitGroup
	)
	for i := range 8 {
		wg.Go(func() {
			for j := range 500 {
				ctx, cancel := context.WithCancel(context.Background())
				if (i+j)%3 == 0 {
					cancel()
				}
				if s.acquire(ctx, nil) == nil {
					mu.Lock()
					holders++
					if holders > 1 {
						t.Error("two holders")
					}
					holders--
					mu.Unlock()
					s.release()
				}
				cancel()
			}
		})
	}
	wg.Wait()
	if !s.tryAcquire() {
		t.Fatal("the semaphore was lost")
	}
}
