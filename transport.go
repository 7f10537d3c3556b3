package tether

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/http/httpproxy"
)

var timeZero time.Time

// dialTransport opens the byte stream the handshake runs on: TCP, through an
// HTTP CONNECT proxy when one applies, wrapped in TLS for wss://.
func dialTransport(ctx context.Context, u *url.URL, opts *DialOptions) (net.Conn, error) {
	dial := opts.NetDialContext
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	target := hostPort(u)
	proxy, err := proxyFor(u, opts)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	var nc net.Conn
	if proxy == nil {
		if nc, err = dial(ctx, "tcp", target); err != nil {
			return nil, err
		}
	} else {
		if nc, err = dialProxy(ctx, dial, proxy, target, opts.TLSConfig); err != nil {
			return nil, err
		}
	}
	if u.Scheme != "wss" {
		return nc, nil
	}
	cfg := tlsConfig(opts.TLSConfig, u.Hostname())
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, tlsError("", err)
	}
	return tc, nil
}

func tlsConfig(base *tls.Config, host string) *tls.Config {
	cfg := &tls.Config{}
	if base != nil {
		cfg = base.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	cfg.NextProtos = []string{"http/1.1"} // WebSocket over HTTP/2 is not spoken
	return cfg
}

// proxyFor returns the proxy to use for u, or nil. Without a Proxy option the
// environment is read anew at every dial.
func proxyFor(u *url.URL, opts *DialOptions) (*url.URL, error) {
	hu := *u
	hu.Scheme = httpScheme(u)
	if opts.Proxy != nil {
		return opts.Proxy(&http.Request{URL: &hu})
	}
	return httpproxy.FromEnvironment().ProxyFunc()(&hu)
}

// dialProxy opens a tunnel to target through an HTTP(S) proxy with CONNECT.
func dialProxy(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), proxy *url.URL, target string, tlsBase *tls.Config) (net.Conn, error) {
	addr := proxy.Host
	if proxy.Port() == "" {
		port := "80"
		if proxy.Scheme == "https" {
			port = "443"
		}
		addr = net.JoinHostPort(proxy.Hostname(), port)
	}
	nc, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", proxy.Redacted(), err)
	}
	if proxy.Scheme == "https" {
		cfg := tlsConfig(tlsBase, proxy.Hostname())
		cfg.ServerName = proxy.Hostname() // the target's ServerName is not the proxy's
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, tlsError("proxy "+proxy.Redacted()+": ", err)
		}
		nc = tc
	}
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	req := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Opaque: target},
		Host:   target,
		Header: http.Header{},
	}
	if proxy.User != nil {
		pass, _ := proxy.User.Password()
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(proxy.User.Username()+":"+pass)))
	}
	if err := req.Write(nc); err != nil {
		nc.Close()
		return nil, fmt.Errorf("proxy %s: %w", proxy.Redacted(), err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("proxy %s: %w", proxy.Redacted(), err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		nc.Close()
		return nil, fmt.Errorf("proxy %s refused CONNECT: %s", proxy.Redacted(), resp.Status)
	}
	nc.SetDeadline(timeZero)
	if br.Buffered() > 0 {
		return &bufferedConn{Conn: nc, r: br}, nil
	}
	return nc, nil
}

// bufferedConn is a net.Conn whose first bytes were read ahead into r.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// tlsError names a failed TLS handshake once: crypto/tls's own errors
// already start with "tls:", others (EOF, a reset) get the prefix.
func tlsError(prefix string, err error) error {
	if strings.HasPrefix(err.Error(), "tls:") {
		return fmt.Errorf("%s%w", prefix, err)
	}
	return fmt.Errorf("%stls: %w", prefix, err)
}
