package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tetherws/tether"
	"github.com/tetherws/tether/internal/heapbudget"
)

// serveBudgetConns is how many connections TestServeIdleBudget opens.
const serveBudgetConns = 2000

// serveExtraBudget is what `tether serve` may add to an idle connection's
// live heap beyond the library's own, in bytes: what TestServeIdleBudget
// measured (334-350 B) plus about 15 %. Of that, the dashboard's track and its
// entry are about 180 B, the handler's two closures 40 B, and the
// dashboard's log of the last 4096 events, bounded whatever the count of
// connections, about 110 B a connection at 2,000 (the open events).
const serveExtraBudget = 400

// TestServeIdleBudget measures what an idle /echo connection of `tether
// serve` costs in live heap, dashboard and limits included, beside what the
// library alone costs for the same connection (accepted and served with Go,
// keepalive at its defaults, a registry, a logger enabled at info), and
// fails when serve adds more than serveExtraBudget.
func TestServeIdleBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("opens thousands of connections from another process")
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var cf connFlags
	cf.pingInterval, cf.pingTimeout, cf.maxSize, cf.mode = tether.DefaultPingInterval, tether.DefaultPingTimeout, tether.DefaultReadLimit, "fixed"
	opts, err := cf.options(logger)
	if err != nil {
		t.Fatal(err)
	}

	lib := measureLibrary(t, opts)
	lib.Log(t, "library", 8)

	reg := tether.NewRegistry()
	reg.Logger = logger
	opts.Registry = reg
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := runServeWith(ctx, "127.0.0.1:0", "", opts, clusterFlags{}, serveTLS{}, defaultLimits(), pw)
		pw.Close()
		errc <- err
	}()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	addr := strings.TrimSpace(strings.TrimPrefix(line, "listening on http://"))
	srv := heapbudget.Measure(t, heapbudget.Config{
		Helper: "TestServeIdleBudgetPeer",
		Addr:   addr,
		Path:   "/echo",
		N:      serveBudgetConns,
		Open:   reg.Len,
		// The dashboard reads the registry every 500 ms: let it see
		// every connection twice.
		Settle: func() { time.Sleep(1200 * time.Millisecond) },
	})
	srv.Log(t, "tether serve", 8)
	extra := srv.PerConn - lib.PerConn
	t.Logf("tether serve adds %.0f B per idle connection to the library's %.0f B", extra, lib.PerConn)
	if extra > serveExtraBudget {
		t.Errorf("tether serve adds %.0f B per idle connection, past its budget of %d B", extra, serveExtraBudget)
	}
}

// measureLibrary is the library's cost for the connection TestServeIdleBudget
// opens, with serve's options: accepted, served with Go, echoing.
func measureLibrary(t *testing.T, opts tether.ConnOptions) heapbudget.Result {
	reg := tether.NewRegistry()
	reg.Logger = opts.Logger
	opts.Registry = reg
	aopts := &tether.AcceptOptions{ConnOptions: opts}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := tether.Accept(w, r, aopts)
		if err != nil {
			return
		}
		c.Go(func(typ tether.MessageType, p []byte) error { return c.Write(context.Background(), typ, p) }, nil)
	})}
	go hs.Serve(ln)
	defer func() {
		hs.Close()
		reg.Shutdown(context.Background(), tether.StatusGoingAway, "")
	}()
	return heapbudget.Measure(t, heapbudget.Config{
		Helper: "TestServeIdleBudgetPeer",
		Addr:   ln.Addr().String(),
		Path:   "/echo",
		N:      serveBudgetConns,
		Open:   reg.Len,
	})
}

// TestServeIdleBudgetPeer is the peer process of TestServeIdleBudget.
func TestServeIdleBudgetPeer(t *testing.T) { heapbudget.Peer(t) }
