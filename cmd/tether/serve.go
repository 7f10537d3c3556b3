package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/tetherws/tether"
	"github.com/tetherws/tether/dashboard"
	"github.com/tetherws/tether/internal/serve"
)

func serveCmd() *cobra.Command {
	var (
		cf    connFlags
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
			opts, err := cf.options(logger)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if token == "" {
				token = os.Getenv("TETHER_TOKEN")
			}
			return runServeToken(ctx, addr, token, opts, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on (port 0 picks a free port)")
	cmd.Flags().StringVar(&token, "token", "", "bearer token for the dashboard, its API and /metrics; without one only loopback clients see them (default $TETHER_TOKEN)")
	cf.register(cmd)
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
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if opts.Registry == nil { // the dashboard shows this server's connections, no others
		opts.Registry = tether.NewRegistry()
		opts.Registry.Logger = opts.Logger
	}
	authorize := dashboard.Loopback
	if token != "" {
		authorize = dashboard.BearerToken(token)
	}
	dash := dashboard.New(dashboard.Options{Registry: opts.Registry, Authorize: authorize, Logger: opts.Logger})
	defer dash.Close()
	s := &serve.Server{Options: tether.AcceptOptions{ConnOptions: opts}, Dashboard: dash,
		HandshakeFailed: func(err error) { dash.Metrics().HandshakeFailed(dashboard.HandshakeReason(err)) }}
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "listening on http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
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
