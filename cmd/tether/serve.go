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
	"github.com/tetherws/tether/internal/serve"
)

func serveCmd() *cobra.Command {
	var (
		cf   connFlags
		addr string
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
			return runServe(ctx, addr, opts, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on (port 0 picks a free port)")
	cf.register(cmd)
	return cmd
}

func runServe(ctx context.Context, addr string, opts tether.ConnOptions, out interface{ Write([]byte) (int, error) }) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s := &serve.Server{Options: tether.AcceptOptions{ConnOptions: opts}}
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
	s.Shutdown(sctx, tether.StatusGoingAway, "server shutting down")
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
