//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package poll

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Wake-ups from many goroutines at once are never lost: every posted task
// runs though the loop sleeps without a timeout between them.
func TestNoLostWakeups(t *testing.T) {
	e := newEngine(t, Options{Loops: 1})
	_, sv := tcpPair(t)
	c, err := e.Adopt(sv, nil, newRecorder())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			ran := make(chan struct{}, 1)
			for range 5000 {
				if err := c.Post(context.Background(), func() { ran <- struct{}{} }); err != nil {
					t.Error(err)
					return
				}
				select {
				case <-ran:
				case <-time.After(10 * time.Second):
					t.Error("a posted task never ran: lost wake-up")
					return
				}
			}
		})
	}
	wg.Wait()
}
