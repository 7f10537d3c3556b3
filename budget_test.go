package tether

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"unsafe"

	"github.com/tetherws/tether/internal/heapbudget"
)

// idleConnBudget is the live heap, in bytes, an idle server connection may
// cost: what TestIdleConnBudget measured, plus about 15 %. Its goroutine
// (stack and runtime structure) is not counted: the engine of issue 17
// removes it.
const idleConnBudget = 1560

// budgetConns is how many connections TestIdleConnBudget opens.
const budgetConns = 1000

// TestIdleConnBudget measures what an idle server connection costs in live
// heap, as `tether serve` runs them: accepted over loopback TCP, served
// with Go, keepalive on at its defaults, listed in a registry, and logging
// to a handler that is enabled at info (it discards, but it formats). The
// clients are in another process. It fails past idleConnBudget, and logs
// the cost by the place that allocates it.
func TestIdleConnBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("opens a thousand connections from another process")
	}
	reg := NewRegistry()
	logger := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	reg.Logger = logger
	opts := &AcceptOptions{ConnOptions: ConnOptions{Registry: reg, Logger: logger}}
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
	defer hs.Close()

	res := heapbudget.Measure(t, heapbudget.Config{
		Helper: "TestIdleConnBudgetPeer",
		Addr:   ln.Addr().String(),
		Path:   "/",
		N:      budgetConns,
		Open:   reg.Len,
	})
	res.Log(t, "idle server connection", 4)
	t.Logf("conn struct %d B (unsafe.Sizeof)", unsafe.Sizeof(conn{}))
	if res.Goroutines > 1.05 {
		t.Errorf("%.2f goroutines per idle connection, want 1 (its reader)", res.Goroutines)
	}
	if res.PerConn > idleConnBudget {
		t.Errorf("an idle connection costs %.0f B of live heap, past its budget of %d B", res.PerConn, idleConnBudget)
	}
	reg.Shutdown(t.Context(), StatusGoingAway, "")
}

// TestIdleConnBudgetPeer is the peer process of TestIdleConnBudget.
func TestIdleConnBudgetPeer(t *testing.T) { heapbudget.Peer(t) }
