package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/tetherws/tether"
	"github.com/tetherws/tether/dashboard"
	"github.com/tetherws/tether/hub"
	"github.com/tetherws/tether/hub/natsbroker"
	"github.com/tetherws/tether/internal/serve"
)

func serveCmd() *cobra.Command {
	var (
		cf    connFlags
		cl    clusterFlags
		st    serveTLS
		lim   serveLimits
		addr  string
		token string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve /echo, /broadcast and the live dashboard",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := cf.logger(os.Stderr)
			if err != nil {
				return err
			}
			if err := cl.check(cmd); err != nil {
				return err
			}
			opts, err := cf.options(logger)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if token == "" {
				token = os.Getenv("TETHER_TOKEN")
			}
			if err := st.check(); err != nil {
				return err
			}
			if err := checkAddr("--addr", addr); err != nil {
				return err
			}
			return runServeWith(ctx, addr, token, opts, cl, st, lim, cmd.OutOrStdout())
		},
	}
	lim.register(cmd)
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on (port 0 picks a free port)")
	cmd.Flags().StringVar(&token, "token", "", "bearer token for the dashboard, its API and /metrics; without one only loopback clients see them (default $TETHER_TOKEN)")
	cmd.Flags().StringVar(&st.cert, "tls-cert", "", "PEM certificate (chain): serve wss:// and https:// (with --tls-key; tether cert makes one for testing)")
	cmd.Flags().StringVar(&st.key, "tls-key", "", "PEM private key of --tls-cert")
	cmd.Flags().BoolVar(&st.reusePort, "reuseport", false, "listen with SO_REUSEPORT, so several tether serve processes share --addr's port (past one process's open-file limit)")
	cf.register(cmd)
	cl.register(cmd)
	return cmd
}

// runServe is runServeToken without a token: the dashboard for loopback
// clients only.
func runServe(ctx context.Context, addr string, opts tether.ConnOptions, out interface{ Write([]byte) (int, error) }) error {
	return runServeToken(ctx, addr, "", opts, out)
}

// runServeToken serves with the dashboard at /: to holders of token, or to
// loopback clients only when token is empty.
func runServeToken(ctx context.Context, addr, token string, opts tether.ConnOptions, out interface{ Write([]byte) (int, error) }) error {
	return runServeCluster(ctx, addr, token, opts, clusterFlags{}, out)
}

// runServeCluster is runServeToken as one node of a cluster when cl names
// a NATS server: /broadcast spans the cluster, and the dashboard lists
// every node's connections and serves the broker's metrics.
func runServeCluster(ctx context.Context, addr, token string, opts tether.ConnOptions, cl clusterFlags, out interface{ Write([]byte) (int, error) }) error {
	return runServeWith(ctx, addr, token, opts, cl, serveTLS{}, defaultLimits(), out)
}

// runServeWith is runServeCluster serving TLS (wss and https) when st
// names a certificate, with lim's bounds on connections and request
// headers.
func runServeWith(ctx context.Context, addr, token string, opts tether.ConnOptions, cl clusterFlags, st serveTLS, lim serveLimits, out interface{ Write([]byte) (int, error) }) error {
	if opts.Registry == nil { // the dashboard shows this server's connections, no others
		opts.Registry = tether.NewRegistry()
		opts.Registry.Logger = opts.Logger
	}
	limit := &tether.ConnLimit{Max: lim.maxConns, PerHost: lim.maxConnsPerIP}
	s := &serve.Server{Options: tether.AcceptOptions{ConnOptions: opts, Limit: limit}}
	dopts := dashboard.Options{Registry: opts.Registry, Authorize: dashboard.Loopback, Logger: opts.Logger}
	if token != "" {
		dopts.Authorize = dashboard.BearerToken(token)
	}
	if cl.nats != "" {
		b := natsbroker.New(cl.brokerOptions(opts.Logger))
		s.Broadcast = hub.Options{Broker: b, Node: cl.nodeName()}
		if err := s.Init(); err != nil { // starts the broker: Collector and presence need it started
			return fmt.Errorf("cluster: %w", err)
		}
		node := s.Hub().Node()
		dopts.Node, dopts.Presence = node, b.RemotePresence
		dopts.Collectors = []prometheus.Collector{b.Collector()}
		opts.Logger.Info("cluster mode", "node", node, "nats", redactURLs(cl.nats), "jetstream", cl.jetstream)
	} else if err := s.Init(); err != nil {
		return err
	}
	ln, scheme, err := st.listen(addr)
	if err != nil {
		s.Shutdown(context.Background(), tether.StatusGoingAway, "") // closes the broker
		return err
	}
	dash := dashboard.New(dopts)
	defer dash.Close()
	s.Dashboard = dash
	s.HandshakeFailed = func(err error) { dash.Metrics().HandshakeFailed(dashboard.HandshakeReason(err)) }
	hs := newHTTPServer(s.Handler(), opts.Logger, lim.maxHeaderBytes)
	fmt.Fprintf(out, "listening on %s://%s\n", scheme, ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		s.Shutdown(context.Background(), tether.StatusGoingAway, "server failed") // and the broker
		return err
	case <-ctx.Done():
	}
	opts.Logger.Info("shutting down: closing connections with 1001")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	hs.Shutdown(sctx) // stops listening; hijacked connections are ours to close
	if err := s.Shutdown(sctx, tether.StatusGoingAway, "server shutting down"); err != nil {
		opts.Logger.Warn("shutdown deadline passed", "error", err)
	}
	dash.Close() // its page feeds get 1001 too
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// DefaultMaxHeaderBytes bounds the request header block `tether serve`
// reads (net/http's default is 1 MiB): a client still sending its headers
// holds about this much, plus a 4 KiB read buffer, until the handshake
// timeout. 16 KiB is ample for a WebSocket upgrade with cookies and a
// bearer token; a larger block is refused with 431.
const DefaultMaxHeaderBytes = 16 << 10

// DefaultMaxConns bounds the WebSocket connections of `tether serve`: half
// the 20,000 open files a process commonly gets, leaving room for the
// handshakes under way, NATS and the dashboard.
const DefaultMaxConns = 10_000

// handshakeTimeout bounds the time a client may take to send its request
// headers (slowloris).
const handshakeTimeout = 10 * time.Second

// serveLimits are `tether serve`'s bounds on what clients may hold.
type serveLimits struct {
	maxConns       int
	maxConnsPerIP  int
	maxHeaderBytes int
}

func defaultLimits() serveLimits {
	return serveLimits{maxConns: DefaultMaxConns, maxHeaderBytes: DefaultMaxHeaderBytes}
}

func (l *serveLimits) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.IntVar(&l.maxConns, "max-conns", DefaultMaxConns, "most WebSocket connections held; past it upgrades get 503 with Retry-After (0: no limit)")
	fl.IntVar(&l.maxConnsPerIP, "max-conns-per-ip", 0, "most WebSocket connections from one remote IP address (0: no limit; clients behind a proxy or NAT share one)")
	fl.IntVar(&l.maxHeaderBytes, "max-header-bytes", DefaultMaxHeaderBytes, "largest request header block; larger ones get 431")
}

// newHTTPServer returns the HTTP server of `tether serve`: header limit,
// handshake timeout, and net/http's own error lines (accept errors, bad
// TLS handshakes) routed through logger at warn level, so that a
// --log-format json stream stays JSON.
func newHTTPServer(h http.Handler, logger *slog.Logger, maxHeaderBytes int) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: handshakeTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}
