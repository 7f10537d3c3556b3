package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/tetherws/tether"
	"github.com/tetherws/tether/dashboard"
)

func proxyCmd() *cobra.Command {
	var (
		cf       connFlags
		tf       clientTLS
		st       serveTLS
		listen   string
		upstream string
		token    string
	)
	cmd := &cobra.Command{
		Use:   "proxy --upstream ws[s]://HOST[:PORT]",
		Short: "A WebSocket reverse proxy that shows both ends' keepalive on the dashboard",
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
			if !cmd.Flags().Changed("ping-interval") {
				opts.PingInterval = -1 // the peers' keepalive, end to end, is the point
			}
			if err := st.check(); err != nil {
				return err
			}
			if err := checkAddr("--listen", listen); err != nil {
				return err
			}
			tc, err := tf.config()
			if err != nil {
				return err
			}
			p, err := newProxy(upstream, opts, tc)
			if err != nil {
				return err
			}
			if token == "" {
				token = os.Getenv("TETHER_TOKEN")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runProxy(ctx, p, listen, token, st, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&listen, "listen", "127.0.0.1:8080", "address to listen on (port 0 picks a free port)")
	fl.StringVar(&upstream, "upstream", "", "the server to proxy to, ws://HOST[:PORT] or wss://...; the request's path and query are kept")
	fl.StringVar(&token, "token", "", "bearer token for the dashboard, its API and /metrics (default $TETHER_TOKEN; without one, loopback clients only)")
	fl.StringVar(&st.cert, "tls-cert", "", "PEM certificate: accept wss:// and serve the dashboard over https (with --tls-key)")
	fl.StringVar(&st.key, "tls-key", "", "PEM private key of --tls-cert")
	cf.register(cmd)
	tf.register(cmd, "upstream-")
	cmd.MarkFlagRequired("upstream")
	return cmd
}

// runProxy serves p on addr until ctx ends: WebSocket upgrades are proxied,
// everything else (and the dashboard's own feed) is the dashboard. At the
// end every client is closed with 1001 and, through the relay, its
// upstream too.
func runProxy(ctx context.Context, p *proxy, addr, token string, st serveTLS, out io.Writer) error {
	dopts := dashboard.Options{Registry: p.opts.Registry, Authorize: dashboard.Loopback, Logger: p.opts.Logger}
	if token != "" {
		dopts.Authorize = dashboard.BearerToken(token)
	}
	dash := dashboard.New(dopts)
	defer dash.Close()
	ln, scheme, err := st.listen(addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: p.routes(dash), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(p.opts.Logger.Handler(), slog.LevelDebug)}
	fmt.Fprintf(out, "listening on %s://%s\n", scheme, ln.Addr())
	p.opts.Logger.Info("proxying", "listen", ln.Addr().String(), "upstream", p.upstream.Redacted())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	p.opts.Logger.Info("shutting down: closing connections with 1001")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	hs.Shutdown(sctx)
	if err := p.opts.Registry.Shutdown(sctx, tether.StatusGoingAway, "proxy shutting down"); err != nil {
		p.opts.Logger.Warn("shutdown deadline passed", "error", err)
	}
	p.relays.Wait()
	dash.Close()
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// routes sends WebSocket upgrades upstream, except the dashboard's feed.
func (p *proxy) routes(dash http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/feed" && strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			p.ServeHTTP(w, r)
			return
		}
		dash.ServeHTTP(w, r)
	})
}

// forwardedHeaders are the request headers the upstream handshake carries
// over; the WebSocket ones (key, version, extensions, subprotocols) are
// each side's own negotiation.
var forwardedHeaders = []string{"Authorization", "Cookie", "User-Agent", "Accept-Language"}

// upstreamRequest builds the upstream URL and handshake options for r.
func (p *proxy) upstreamRequest(r *http.Request) (string, *tether.DialOptions) {
	u := *p.upstream
	u.Path = strings.TrimSuffix(u.Path, "/") + r.URL.Path
	u.RawQuery = r.URL.RawQuery
	h := http.Header{}
	for _, k := range forwardedHeaders {
		for _, v := range r.Header.Values(k) {
			h.Add(k, v)
		}
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := r.Header.Get("X-Forwarded-For"); prior != "" {
			ip = prior + ", " + ip
		}
		h.Set("X-Forwarded-For", ip)
	}
	h.Set("X-Forwarded-Host", r.Host)
	var subs []string
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				subs = append(subs, s)
			}
		}
	}
	opts := &tether.DialOptions{ConnOptions: p.opts, HTTPHeader: h, Subprotocols: subs,
		Origin: r.Header.Get("Origin"), TLSConfig: p.tls, FanOut: true}
	return u.String(), opts
}

func parseUpstream(s string) (*url.URL, error) {
	if s == "" {
		return nil, fmt.Errorf("--upstream is required: ws://HOST[:PORT] or wss://HOST[:PORT]")
	}
	if !strings.Contains(s, "://") {
		return nil, fmt.Errorf("--upstream %q needs its scheme (hint: ws://%s)", s, s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("--upstream: %w", err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return nil, fmt.Errorf("--upstream %q: the scheme must be ws or wss", s)
	}
	return u, nil
}
