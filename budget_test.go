package tether

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"unsafe"

	"github.com/tetherws/tether/internal/clock"
	"github.com/tetherws/tether/internal/heapbudget"
)

// idleConnBudget is the live heap, in bytes, an idle server connection may
// cost under either engine, plus about 10 %: the event engine measured
// 1,416-1,419 B (conn 576, driver 256, the engine's socket 128, its timer
// 48 and closure 16, Go's server 64, registry and loop tables ~90, cleanup
// 24, the loops' read buffers amortized), the goroutine engine 1,331-1,347 B
// without its goroutine (stack and runtime structure, not counted: see
// TestIdleConnsOwnNoGoroutine for what the event engine saves there), of
// which the net.Conn (296 B), the runtime timer (131 B) and the reader
// (112 B) are that engine's own.
const idleConnBudget = 1550

// budgetConns is how many connections TestIdleConnBudget opens.
const budgetConns = 1000

// TestIdleConnBudget measures what an idle server connection costs in live
// heap, as `tether serve` runs them: accepted over loopback TCP, served
// with Go, keepalive on, listed in a registry, and logging to a handler
// that is enabled at info (it discards, but it formats). The clients are in
// another process. It measures connections just opened with keepalive at
// its defaults, and connections that have answered three keepalive pings
// (on a clock the test advances: no ping is under way when it reads the
// heap), fails past idleConnBudget for either, and logs the cost by the
// place that allocates it.
func TestIdleConnBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("opens a thousand connections from another process")
	}
	t.Run("opened", func(t *testing.T) {
		res := measureIdle(t, ConnOptions{}, nil)
		res.Log(t, "idle server connection, keepalive at its defaults", 4)
		t.Logf("conn struct %d B (unsafe.Sizeof), connReader %d B, server (Go) %d B",
			unsafe.Sizeof(conn{}), unsafe.Sizeof(connReader{}), unsafe.Sizeof(server{}))
		checkIdle(t, res)
	})
	t.Run("pinged", func(t *testing.T) {
		// Keepalive at its defaults on a clock the test advances, so that
		// no ping is under way when the heap is read. A timer of the fake
		// clock costs less than a runtime timer (about 56 B against 131).
		fc := clock.NewFake()
		res := measureIdle(t, ConnOptions{Clock: fc}, func(reg *Registry) {
			for round := range int64(3) {
				fc.Advance(DefaultPingInterval)
				eventually(t, "every connection's ping answered", func() bool {
					all := true
					reg.Range(func(ci ConnInfo) bool {
						all = ci.PongsReceived > round
						return all
					})
					return all
				})
			}
		})
		res.Log(t, "idle server connection after three keepalive pings", 4)
		checkIdle(t, res)
	})
}

func checkIdle(t *testing.T, res heapbudget.Result) {
	t.Helper()
	if res.Goroutines > 1.05 {
		t.Errorf("%.2f goroutines per idle connection, want 1 (its reader)", res.Goroutines)
	}
	if res.PerConn > idleConnBudget {
		t.Errorf("an idle connection costs %.0f B of live heap, past its budget of %d B", res.PerConn, idleConnBudget)
	}
}

// measureIdle serves budgetConns connections accepted with o and served
// with Go, and measures them once settle, if set, has returned.
func measureIdle(t *testing.T, o ConnOptions, settle func(*Registry)) heapbudget.Result {
	reg := NewRegistry()
	logger := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	reg.Logger = logger
	o.Registry, o.Logger = reg, logger
	opts := &AcceptOptions{ConnOptions: o}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, opts)
		if err != nil {
			return
		}
		c.Go(func(typ MessageType, p []byte) error { return c.Write(context.Background(), typ, p) }, nil)
	})}
	go hs.Serve(ln)
	defer func() {
		hs.Close()
		reg.Shutdown(context.Background(), StatusGoingAway, "")
	}()
	cfg := heapbudget.Config{
		Helper: "TestIdleConnBudgetPeer",
		Addr:   ln.Addr().String(),
		Path:   "/",
		N:      budgetConns,
		Open:   reg.Len,
	}
	if settle != nil {
		cfg.Settle = func() { settle(reg) }
	}
	return heapbudget.Measure(t, cfg)
}

// TestIdleConnBudgetPeer is the peer process of TestIdleConnBudget.
func TestIdleConnBudgetPeer(t *testing.T) { heapbudget.Peer(t) }
