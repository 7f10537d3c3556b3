package tether

import (
	"context"
	"fmt"
	"sync"

	"github.com/tetherws/tether/internal/wire"
)

// Shutdown closes every server connection registered in r, all in parallel,
// with code and reason (StatusGoingAway for a server going down), and waits
// for their closing handshakes until ctx ends. Whatever is still open then
// is dropped at once, without waiting further, and Shutdown returns an
// error that counts it. Client connections in r are left alone.
//
// Call it after the listener has stopped accepting: http.Server.Shutdown
// does not close hijacked connections, so WebSocket connections are left to
// this. A server connection that registers while Shutdown runs (its upgrade
// was under way) is closed too. Each connection still logs its own
// "connection closed" record.
func (r *Registry) Shutdown(ctx context.Context, code StatusCode, reason string) error {
	if r.disabled {
		return nil
	}
	if !wire.ValidCloseCode(uint16(code)) {
		return fmt.Errorf("tether: close code %d may not be sent", code)
	}
	handled := map[*conn]bool{}
	var closing sync.WaitGroup
	for {
		batch := r.serverConns(handled)
		if len(batch) == 0 {
			return nil
		}
		for _, c := range batch {
			handled[c] = true
			closing.Go(func() { c.close(code, reason) })
		}
		done := make(chan struct{})
		go func() {
			closing.Wait()
			close(done)
		}()
		select {
		case <-done:
			continue // look for connections that registered meanwhile
		case <-ctx.Done():
		}
		dropped := r.drop(handled)
		<-done
		if dropped == 0 {
			return nil
		}
		r.logger().Warn("shutdown deadline: dropped connections without a closing handshake",
			"dropped", dropped, "code", int(code))
		return fmt.Errorf("tether: shutdown: %d connections dropped without a closing handshake: %w", dropped, ctx.Err())
	}
}

// serverConns returns the registered server connections not in skip.
func (r *Registry) serverConns(skip map[*conn]bool) []*conn {
	var out []*conn
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for c := range s.all() {
			if c.role == wire.Server && !skip[c] {
				out = append(out, c)
			}
		}
		s.mu.Unlock()
	}
	return out
}

// drop ends at once, in parallel, every connection of conns not yet done,
// and returns how many there were.
func (r *Registry) drop(conns map[*conn]bool) int {
	var wg sync.WaitGroup
	n := 0
	for c := range conns {
		if c.isDone() {
			continue
		}
		n++
		wg.Go(func() { c.closeNow() })
	}
	wg.Wait()
	return n
}
