package tether

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// tlsClientConfig trusts the certificate of an httptest TLS server.
func tlsClientConfig(s *hsServer) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	return &tls.Config{RootCAs: pool}
}

func dialCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDialSchemes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		tls    bool
		scheme string // replaces the server URL's scheme
	}{
		{"ws", false, "ws"},
		{"http taken as ws", false, "http"},
		{"wss", true, "wss"},
		{"https taken as wss", true, "https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startHSServer(t, hsConfig{tls: tc.tls})
			u := tc.scheme + s.WS[strings.Index(s.WS, ":"):] + "/path?q=1"
			opts := &DialOptions{}
			if tc.tls {
				opts.TLSConfig = tlsClientConfig(s)
			}
			c, resp, err := Dial(dialCtx(t), u, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if resp == nil || resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("resp = %v, want a 101", resp)
			}
			rec := s.lastRecord(t)
			if rec.Path != "/path?q=1" || rec.Method != "GET" {
				t.Errorf("server saw %s %s, want GET /path?q=1", rec.Method, rec.Path)
			}
			if got := c.Role(); got != "client" {
				t.Errorf("Role() = %q", got)
			}
			roundTrip(t, c)
		})
	}
}

func TestDialTLSConfig(t *testing.T) {
	t.Parallel()
	s := startHSServer(t, hsConfig{tls: true})

	t.Run("untrusted certificate", func(t *testing.T) {
		t.Parallel()
		c, _, err := Dial(dialCtx(t), s.WS, &DialOptions{TLSConfig: &tls.Config{RootCAs: x509.NewCertPool()}})
		if err == nil {
			c.CloseNow()
			t.Fatal("Dial trusted a certificate from an unknown authority")
		}
		var ua x509.UnknownAuthorityError
		if !errors.As(err, &ua) {
			t.Errorf("error %v, want x509.UnknownAuthorityError in the chain", err)
		}
	})
	t.Run("server's client pool", func(t *testing.T) {
		t.Parallel()
		base := s.Client().Transport.(*http.Transport).TLSClientConfig
		cfg := &tls.Config{RootCAs: base.RootCAs}
		c, _, err := Dial(dialCtx(t), s.WS, &DialOptions{TLSConfig: cfg})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		roundTrip(t, c)
		if cfg.ServerName != "" || cfg.NextProtos != nil {
			t.Error("Dial modified the caller's tls.Config")
		}
	})
	t.Run("ServerName from the config", func(t *testing.T) {
		t.Parallel()
		// The httptest certificate is valid for example.com; a wrong
		// ServerName must fail verification.
		cfg := tlsClientConfig(s)
		cfg.ServerName = "not-example.invalid"
		c, _, err := Dial(dialCtx(t), s.WS, &DialOptions{TLSConfig: cfg})
		if err == nil {
			c.CloseNow()
			t.Fatal("Dial ignored TLSConfig.ServerName")
		}
		cfg.ServerName = "example.com"
		c, _, err = Dial(dialCtx(t), s.WS, &DialOptions{TLSConfig: cfg})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		roundTrip(t, c)
	})
}

func TestDialBadURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"ftp://example.com/", "ws://", "example.com/ws", "ws://[::1"} {
		t.Run(u, func(t *testing.T) {
			t.Parallel()
			c, resp, err := Dial(dialCtx(t), u, nil)
			if err == nil {
				c.CloseNow()
				t.Fatalf("Dial(%q) succeeded", u)
			}
			if c != nil || resp != nil {
				t.Errorf("Dial(%q) = %v, %v with error", u, c, resp)
			}
		})
	}
}

func TestDialRequestHeaders(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		opts  func(s *hsServer) *DialOptions
		check func(t *testing.T, h http.Header)
	}{
		{
			name: "HTTPHeader",
			opts: func(*hsServer) *DialOptions {
				return &DialOptions{HTTPHeader: http.Header{"X-Custom": {"one", "two"}, "Cookie": {"session=abc"}}}
			},
			check: func(t *testing.T, h http.Header) {
				if got := h.Values("X-Custom"); !slices.Equal(got, []string{"one", "two"}) {
					t.Errorf("X-Custom = %q", got)
				}
				if got := h.Get("Cookie"); got != "session=abc" {
					t.Errorf("Cookie = %q", got)
				}
			},
		},
		{
			name: "handshake headers",
			opts: func(*hsServer) *DialOptions { return nil },
			check: func(t *testing.T, h http.Header) {
				if !hasToken(h, "Upgrade", "websocket") || !hasToken(h, "Connection", "upgrade") {
					t.Errorf("Upgrade/Connection missing: %v", h)
				}
				if got := h.Get("Sec-WebSocket-Version"); got != "13" {
					t.Errorf("Sec-WebSocket-Version = %q", got)
				}
				k, err := base64.StdEncoding.DecodeString(h.Get("Sec-WebSocket-Key"))
				if err != nil || len(k) != 16 {
					t.Errorf("Sec-WebSocket-Key %q is not 16 bytes of base64", h.Get("Sec-WebSocket-Key"))
				}
				if h.Get("User-Agent") == "" {
					t.Error("no User-Agent")
				}
				if h.Get("Origin") != "" || h.Get("Authorization") != "" || h.Get("Sec-WebSocket-Protocol") != "" {
					t.Errorf("unexpected headers: %v", h)
				}
			},
		},
		{
			name: "User-Agent override",
			opts: func(*hsServer) *DialOptions { return &DialOptions{HTTPHeader: http.Header{"User-Agent": {"probe/1"}}} },
			check: func(t *testing.T, h http.Header) {
				if got := h.Values("User-Agent"); !slices.Equal(got, []string{"probe/1"}) {
					t.Errorf("User-Agent = %q", got)
				}
			},
		},
		{
			name: "Origin",
			opts: func(s *hsServer) *DialOptions { return &DialOptions{Origin: "http://" + s.addr()} },
			check: func(t *testing.T, h http.Header) {
				if got := h.Get("Origin"); !strings.HasPrefix(got, "http://127.0.0.1:") {
					t.Errorf("Origin = %q", got)
				}
			},
		},
		{
			name: "subprotocols",
			opts: func(*hsServer) *DialOptions { return &DialOptions{Subprotocols: []string{"v2.chat", "v1.chat"}} },
			check: func(t *testing.T, h http.Header) {
				if got := strings.Join(h.Values("Sec-WebSocket-Protocol"), ","); got != "v2.chat, v1.chat" {
					t.Errorf("Sec-WebSocket-Protocol = %q", got)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startHSServer(t, hsConfig{})
			opts := tc.opts(s)
			var before http.Header
			if opts != nil {
				before = opts.HTTPHeader.Clone()
			}
			c, _, err := Dial(dialCtx(t), s.WS, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			tc.check(t, s.lastRecord(t).Header)
			if opts != nil && fmt.Sprint(opts.HTTPHeader) != fmt.Sprint(before) {
				t.Errorf("Dial modified HTTPHeader: %v, was %v", opts.HTTPHeader, before)
			}
			roundTrip(t, c)
		})
	}
}

func TestDialOriginRefused(t *testing.T) {
	t.Parallel()
	s := startHSServer(t, hsConfig{opts: &AcceptOptions{OriginPatterns: []string{"*.example.com"}}})

	c, resp, err := Dial(dialCtx(t), s.WS, &DialOptions{Origin: "https://evil.example"})
	if err == nil {
		c.CloseNow()
		t.Fatal("Dial with a foreign Origin succeeded")
	}
	var he *HandshakeError
	if !errors.As(err, &he) || he.StatusCode != http.StatusForbidden {
		t.Fatalf("error %v, want *HandshakeError 403", err)
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("resp = %v, want the 403", resp)
	}

	c, _, err = Dial(dialCtx(t), s.WS, &DialOptions{Origin: "https://app.example.com"})
	if err != nil {
		t.Fatalf("Origin matching a pattern: %v", err)
	}
	defer c.CloseNow()
	roundTrip(t, c)
}

func TestDialBasicAuth(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		userinfo string
		header   http.Header
		want     string // Authorization the server must see; "" for none
	}{
		{"user and password", "alice:s3cret@", nil, "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))},
		{"escaped password", "alice:p%40ss%3Aw%2F@", nil, "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:p@ss:w/"))},
		{"user only", "bob@", nil, "Basic " + base64.StdEncoding.EncodeToString([]byte("bob:"))},
		{"explicit header wins", "alice:s3cret@", http.Header{"Authorization": {"Bearer tok"}}, "Bearer tok"},
		{"no credentials", "", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startHSServer(t, hsConfig{})
			u := "ws://" + tc.userinfo + s.addr() + "/"
			c, _, err := Dial(dialCtx(t), u, &DialOptions{HTTPHeader: tc.header})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if got := s.lastRecord(t).Header.Values("Authorization"); (tc.want == "" && len(got) != 0) || (tc.want != "" && !slices.Equal(got, []string{tc.want})) {
				t.Errorf("Authorization = %q, want %q", got, tc.want)
			}
			if strings.Contains(c.Path(), "s3cret") {
				t.Errorf("connection URL %q shows the password", c.Path())
			}
			roundTrip(t, c)
		})
	}

	t.Run("password not in errors", func(t *testing.T) {
		t.Parallel()
		ln := silentListener(t)
		_, _, err := Dial(dialCtx(t), "ws://alice:s3cret@"+ln.Addr().String()+"/", &DialOptions{HandshakeTimeout: 100 * time.Millisecond})
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("error %v: want a failure that hides the password", err)
		}
	})
}

func TestDialHandshakeError(t *testing.T) {
	t.Parallel()
	s := startHSServer(t, hsConfig{pre: func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("X-Why", "missing")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "nope")
		return true
	}})
	c, resp, err := Dial(dialCtx(t), s.WS+"/missing", nil)
	if err == nil {
		c.CloseNow()
		t.Fatal("Dial succeeded against a 404")
	}
	if c != nil {
		t.Error("Dial returned a Conn with an error")
	}
	var he *HandshakeError
	if !errors.As(err, &he) {
		t.Fatalf("error %T %v, want *HandshakeError in the chain", err, err)
	}
	if he.StatusCode != http.StatusNotFound {
		t.Errorf("StatusCode = %d, want 404", he.StatusCode)
	}
	if he.Response == nil || he.Response.StatusCode != http.StatusNotFound {
		t.Fatalf("Response = %v, want the 404", he.Response)
	}
	if resp != he.Response {
		t.Errorf("Dial returned resp %p, HandshakeError.Response %p; want the same response", resp, he.Response)
	}
	if got := resp.Header.Get("X-Why"); got != "missing" {
		t.Errorf("X-Why = %q", got)
	}
	body, err := io.ReadAll(he.Response.Body)
	if err != nil || string(body) != "nope" {
		t.Errorf("body = %q, %v; want \"nope\"", body, err)
	}
	if !strings.Contains(he.Error(), "404") {
		t.Errorf("Error() = %q does not name the status", he.Error())
	}
}

// fakeServer answers one request (a handshake, or a proxy's CONNECT) with a
// hand-written response, then waits for the client to close the connection
// and reports that it did.
func fakeServer(t *testing.T, respond func(key string) string) (addr string, closed <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(nc)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.WriteString(nc, respond(req.Header.Get("Sec-WebSocket-Key")))
		io.Copy(io.Discard, br) // until the client closes
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String(), done
}

func TestDialBadResponse(t *testing.T) {
	t.Parallel()
	ok := func(key string, extra ...string) string {
		return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
			acceptFor(key) + "\r\n" + strings.Join(extra, "") + "\r\n"
	}
	for _, tc := range []struct {
		name    string
		offered []string
		respond func(key string) string
		wantErr string // substring of the error; "" means Dial succeeds
	}{
		{"valid", nil, func(key string) string { return ok(key) }, ""},
		{"valid with offered subprotocol", []string{"a", "b"}, func(key string) string { return ok(key, "Sec-WebSocket-Protocol: b\r\n") }, ""},
		{"wrong accept", nil, func(key string) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + rfcAccept + "\r\n\r\n"
		}, "Sec-WebSocket-Accept"},
		{"accept of the key itself", nil, func(key string) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + key + "\r\n\r\n"
		}, "Sec-WebSocket-Accept"},
		{"unoffered subprotocol", []string{"a"}, func(key string) string { return ok(key, "Sec-WebSocket-Protocol: b\r\n") }, "subprotocol"},
		{"subprotocol without an offer", nil, func(key string) string { return ok(key, "Sec-WebSocket-Protocol: a\r\n") }, "subprotocol"},
		{"no Upgrade header", nil, func(key string) string {
			return "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acceptFor(key) + "\r\n\r\n"
		}, "Upgrade"},
		{"200 instead of 101", nil, func(key string) string {
			return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSec-WebSocket-Accept: " + acceptFor(key) + "\r\n\r\nhi"
		}, "200"},
		{"redirect without Location", nil, func(string) string {
			return "HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n"
		}, "302"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr, closed := fakeServer(t, tc.respond)
			c, resp, err := Dial(dialCtx(t), "ws://"+addr+"/", &DialOptions{Subprotocols: tc.offered})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				if resp.StatusCode != 101 {
					t.Errorf("status %d", resp.StatusCode)
				}
				c.CloseNow()
			} else {
				if err == nil {
					c.CloseNow()
					t.Fatal("Dial accepted a bad handshake response")
				}
				if c != nil {
					t.Error("Dial returned a Conn with an error")
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %q does not mention %q", err, tc.wantErr)
				}
				var he *HandshakeError
				if !errors.As(err, &he) || resp == nil || he.StatusCode != resp.StatusCode {
					t.Errorf("error %v, resp %v: want *HandshakeError with the response's status", err, resp)
				}
			}
			select {
			case <-closed:
			case <-time.After(5 * time.Second):
				t.Fatal("the client did not close the connection")
			}
		})
	}
}

// silentListener accepts TCP connections and never answers. Its cleanup
// closes everything it accepted.
func silentListener(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, nc := range conns {
			nc.Close()
		}
	})
	return ln
}

func TestDialHandshakeTimeout(t *testing.T) {
	t.Parallel()

	t.Run("server never answers", func(t *testing.T) {
		t.Parallel()
		// Accept connections, read the request, never answer, and report
		// when the client gives up and closes.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		gotEOF := make(chan error, 1)
		served := make(chan struct{})
		go func() {
			defer close(served)
			nc, err := ln.Accept()
			if err != nil {
				gotEOF <- err
				return
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			_, err = io.Copy(io.Discard, nc)
			gotEOF <- err
		}()
		defer func() {
			ln.Close()
			<-served
		}()

		start := time.Now()
		c, _, err := Dial(context.Background(), "ws://"+ln.Addr().String()+"/", &DialOptions{HandshakeTimeout: 200 * time.Millisecond})
		elapsed := time.Since(start)
		if err == nil {
			c.CloseNow()
			t.Fatal("Dial succeeded against a silent server")
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v, want context.DeadlineExceeded in the chain", err)
		}
		if elapsed > 3*time.Second {
			t.Errorf("Dial took %v with a 200ms handshake timeout", elapsed)
		}
		select {
		case err := <-gotEOF:
			if err != nil {
				t.Errorf("server side: %v, want EOF from the client closing", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("client left the connection open")
		}
	})

	t.Run("parent context shorter", func(t *testing.T) {
		t.Parallel()
		ln := silentListener(t)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		c, _, err := Dial(ctx, "ws://"+ln.Addr().String()+"/", &DialOptions{HandshakeTimeout: time.Minute})
		if err == nil {
			c.CloseNow()
			t.Fatal("Dial succeeded against a silent server")
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v, want context.DeadlineExceeded in the chain", err)
		}
	})

	t.Run("parent context cancelled", func(t *testing.T) {
		t.Parallel()
		ln := silentListener(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		time.AfterFunc(100*time.Millisecond, cancel)
		c, _, err := Dial(ctx, "ws://"+ln.Addr().String()+"/", nil)
		if err == nil {
			c.CloseNow()
			t.Fatal("Dial succeeded against a silent server")
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled in the chain", err)
		}
	})

	t.Run("proxy never answers CONNECT", func(t *testing.T) {
		t.Parallel()
		ln := silentListener(t)
		proxy := &url.URL{Scheme: "http", Host: ln.Addr().String()}
		c, _, err := Dial(context.Background(), "ws://127.0.0.1:1/", &DialOptions{
			HandshakeTimeout: 200 * time.Millisecond,
			Proxy:            http.ProxyURL(proxy),
		})
		if err == nil {
			c.CloseNow()
			t.Fatal("Dial succeeded through a silent proxy")
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v, want context.DeadlineExceeded in the chain", err)
		}
	})

	t.Run("TLS server never answers", func(t *testing.T) {
		t.Parallel()
		ln := silentListener(t)
		c, _, err := Dial(context.Background(), "wss://"+ln.Addr().String()+"/", &DialOptions{HandshakeTimeout: 200 * time.Millisecond})
		if err == nil {
			c.CloseNow()
			t.Fatal("Dial succeeded against a silent server")
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v, want context.DeadlineExceeded in the chain", err)
		}
	})

	t.Run("default is 10s", func(t *testing.T) {
		t.Parallel()
		if DefaultHandshakeTimeout != 10*time.Second {
			t.Fatalf("DefaultHandshakeTimeout = %v", DefaultHandshakeTimeout)
		}
		// Observe the deadline Dial puts on the handshake without waiting
		// for it: the dialer sees it on its context.
		errStop := errors.New("stop here")
		var deadline time.Time
		var hasDeadline bool
		start := time.Now()
		_, _, err := Dial(context.Background(), "ws://example.invalid/", &DialOptions{
			NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				deadline, hasDeadline = ctx.Deadline()
				return nil, errStop
			},
		})
		if !errors.Is(err, errStop) {
			t.Fatalf("Dial error %v, want the dialer's", err)
		}
		if !hasDeadline {
			t.Fatal("handshake context has no deadline")
		}
		if d := deadline.Sub(start); d < 9*time.Second || d > 11*time.Second {
			t.Errorf("handshake deadline %v after start, want about 10s", d)
		}
	})
}

// connectProxy is a minimal HTTP proxy that serves CONNECT only. It records
// every request and tunnels bytes to the target, which resolve may rewrite.
// It dials nothing but loopback addresses.
type connectProxy struct {
	ln       net.Listener
	resolve  map[string]string
	wantAuth string // required Proxy-Authorization; "" for none
	scheme   string

	mu    sync.Mutex
	reqs  []proxyRequest
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

type proxyRequest struct {
	Method, Target, Auth string
}

// startConnectProxy starts a proxy; with tlsCfg it is an HTTPS proxy.
func startConnectProxy(t *testing.T, wantAuth string, resolve map[string]string, tlsCfg *tls.Config) *connectProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &connectProxy{ln: ln, resolve: resolve, wantAuth: wantAuth, conns: map[net.Conn]struct{}{}, scheme: "http"}
	if tlsCfg != nil {
		p.ln, p.scheme = tls.NewListener(ln, tlsCfg), "https"
	}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *connectProxy) URL() *url.URL { return &url.URL{Scheme: p.scheme, Host: p.ln.Addr().String()} }

func (p *connectProxy) requests() []proxyRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.reqs)
}

func (p *connectProxy) track(nc net.Conn) {
	p.mu.Lock()
	p.conns[nc] = struct{}{}
	p.mu.Unlock()
}

func (p *connectProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for nc := range p.conns {
		nc.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *connectProxy) serve() {
	defer p.wg.Done()
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.track(nc)
		p.wg.Add(1)
		go p.handle(nc)
	}
}

func (p *connectProxy) handle(nc net.Conn) {
	defer p.wg.Done()
	defer nc.Close()
	br := bufio.NewReader(nc)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.reqs = append(p.reqs, proxyRequest{req.Method, req.Host, req.Header.Get("Proxy-Authorization")})
	p.mu.Unlock()
	if req.Method != http.MethodConnect {
		io.WriteString(nc, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
		return
	}
	if p.wantAuth != "" && req.Header.Get("Proxy-Authorization") != p.wantAuth {
		io.WriteString(nc, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
		return
	}
	target := req.Host
	if to, ok := p.resolve[target]; ok {
		target = to
	}
	if host, _, _ := net.SplitHostPort(target); host != "127.0.0.1" {
		io.WriteString(nc, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		return
	}
	up, err := net.Dial("tcp", target)
	if err != nil {
		io.WriteString(nc, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		return
	}
	p.track(up)
	defer up.Close()
	io.WriteString(nc, "HTTP/1.1 200 Connection established\r\n\r\n")
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, br); done <- struct{}{} }()
	go func() { io.Copy(nc, up); done <- struct{}{} }()
	<-done
	nc.Close()
	up.Close()
	<-done
}

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestDialProxy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		tls      bool
		proxyTLS bool // an https:// proxy
		wantAuth string
		user     *url.Userinfo
		wantErr  string // "" when Dial must succeed
	}{
		{name: "ws"},
		{name: "wss", tls: true},
		{name: "ws through https proxy", proxyTLS: true},
		{name: "wss through https proxy with credentials", tls: true, proxyTLS: true, wantAuth: basicAuth("u", "p"), user: url.UserPassword("u", "p")},
		{name: "with credentials", wantAuth: basicAuth("proxyuser", "proxy:pass"), user: url.UserPassword("proxyuser", "proxy:pass")},
		{name: "wss with credentials", tls: true, wantAuth: basicAuth("u", "p"), user: url.UserPassword("u", "p")},
		{name: "credentials missing", wantAuth: basicAuth("u", "p"), wantErr: "407"},
		{name: "wrong credentials", wantAuth: basicAuth("u", "p"), user: url.UserPassword("u", "wrong"), wantErr: "407"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startHSServer(t, hsConfig{tls: tc.tls})
			// httptest servers share one certificate; take it from a TLS
			// server for the proxy.
			certSrv := startHSServer(t, hsConfig{tls: true})
			var proxyTLS *tls.Config
			if tc.proxyTLS {
				proxyTLS = certSrv.TLS.Clone()
			}
			p := startConnectProxy(t, tc.wantAuth, nil, proxyTLS)
			pu := p.URL()
			pu.User = tc.user
			var proxied []string
			opts := &DialOptions{Proxy: func(r *http.Request) (*url.URL, error) {
				proxied = append(proxied, r.URL.String())
				return pu, nil
			}}
			if tc.tls || tc.proxyTLS {
				opts.TLSConfig = tlsClientConfig(certSrv)
			}
			c, _, err := Dial(dialCtx(t), s.WS+"/via-proxy", opts)
			reqs := p.requests()
			if len(reqs) != 1 || reqs[0].Method != http.MethodConnect || reqs[0].Target != s.addr() {
				t.Errorf("proxy saw %+v, want one CONNECT %s", reqs, s.addr())
			}
			wantURL := "http://" + s.addr() + "/via-proxy"
			if tc.tls {
				wantURL = "https://" + s.addr() + "/via-proxy"
			}
			if !slices.Equal(proxied, []string{wantURL}) {
				t.Errorf("Proxy func asked for %q, want %q", proxied, wantURL)
			}
			if tc.wantErr != "" {
				if err == nil {
					c.CloseNow()
					t.Fatal("Dial succeeded through a refusing proxy")
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %q does not mention %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "wrong") {
					t.Errorf("error %q shows the proxy password", err)
				}
				if n := len(s.records()); n != 0 {
					t.Errorf("server saw %d requests through a refusing proxy", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if len(reqs) == 1 {
				want := ""
				if tc.user != nil {
					want = tc.wantAuth
				}
				if reqs[0].Auth != want {
					t.Errorf("Proxy-Authorization = %q, want %q", reqs[0].Auth, want)
				}
			}
			rec := s.lastRecord(t)
			if rec.Path != "/via-proxy" || rec.Header.Get("Proxy-Authorization") != "" {
				t.Errorf("server saw %s with Proxy-Authorization %q", rec.Path, rec.Header.Get("Proxy-Authorization"))
			}
			roundTrip(t, c)
		})
	}
}

func TestDialProxyFunc(t *testing.T) {
	t.Parallel()
	t.Run("nil proxy goes direct", func(t *testing.T) {
		t.Parallel()
		s := startHSServer(t, hsConfig{})
		called := false
		c, _, err := Dial(dialCtx(t), s.WS, &DialOptions{Proxy: func(*http.Request) (*url.URL, error) {
			called = true
			return nil, nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		if !called {
			t.Error("Proxy func not consulted")
		}
		roundTrip(t, c)
	})
	t.Run("error fails the dial", func(t *testing.T) {
		t.Parallel()
		errNo := errors.New("no proxy for you")
		c, _, err := Dial(dialCtx(t), "ws://127.0.0.1:1/", &DialOptions{Proxy: func(*http.Request) (*url.URL, error) {
			return nil, errNo
		}})
		if err == nil {
			c.CloseNow()
			t.Fatal("Dial succeeded")
		}
		if !errors.Is(err, errNo) {
			t.Errorf("error %v, want the Proxy func's error in the chain", err)
		}
	})
}

// setProxyEnv sets the proxy environment for one test, in both spellings,
// since httpproxy reads the lower-case one first.
func setProxyEnv(t *testing.T, httpProxy, httpsProxy, noProxy string) {
	for _, kv := range [][2]string{{"http_proxy", httpProxy}, {"https_proxy", httpsProxy}, {"no_proxy", noProxy}} {
		t.Setenv(kv[0], kv[1])
		t.Setenv(strings.ToUpper(kv[0]), kv[1])
	}
	t.Setenv("REQUEST_METHOD", "") // CGI mode ignores HTTP_PROXY
}

// TestDialProxyFromEnvironment cannot run in parallel: it sets the
// environment. The target is named example.com (which the httptest
// certificate covers) and the dialer maps it to the test server, so nothing
// leaves the machine and the name does not look like loopback, which the
// environment proxy rules skip.
func TestDialProxyFromEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		host                  string // default example.com
		tls                   bool
		httpProxy, httpsProxy bool
		noProxy               string
		wantProxied           bool
	}{
		{name: "ws uses HTTP_PROXY", httpProxy: true, wantProxied: true},
		{name: "wss uses HTTPS_PROXY", tls: true, httpsProxy: true, wantProxied: true},
		{name: "ws ignores HTTPS_PROXY", httpsProxy: true},
		{name: "wss ignores HTTP_PROXY", tls: true, httpProxy: true},
		{name: "NO_PROXY host", httpProxy: true, noProxy: "example.com"},
		{name: "NO_PROXY domain covers subdomains", host: "ws.example.com", httpProxy: true, noProxy: "other.test,example.com"},
		{name: "NO_PROXY leading dot", host: "ws.example.com", httpProxy: true, noProxy: ".example.com"},
		{name: "NO_PROXY leading dot excludes the domain itself", httpProxy: true, noProxy: ".example.com", wantProxied: true},
		{name: "NO_PROXY with port", httpProxy: true, noProxy: "example.com:1", wantProxied: true},
		{name: "NO_PROXY other host", httpProxy: true, noProxy: "other.test", wantProxied: true},
		{name: "NO_PROXY star", tls: true, httpsProxy: true, noProxy: "*"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startHSServer(t, hsConfig{tls: tc.tls})
			_, port, _ := net.SplitHostPort(s.addr())
			host := tc.host
			if host == "" {
				host = "example.com"
			}
			name := net.JoinHostPort(host, port)
			p := startConnectProxy(t, "", map[string]string{name: s.addr()}, nil)
			var hp, hsp string
			if tc.httpProxy {
				hp = p.URL().String()
			}
			if tc.httpsProxy {
				hsp = p.URL().String()
			}
			setProxyEnv(t, hp, hsp, tc.noProxy)

			var mu sync.Mutex
			var dialed []string
			opts := &DialOptions{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				mu.Lock()
				dialed = append(dialed, addr)
				mu.Unlock()
				switch addr {
				case name:
					addr = s.addr()
				case p.ln.Addr().String():
				default:
					return nil, fmt.Errorf("test dialer: refusing %s", addr)
				}
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			}}
			if tc.tls {
				opts.TLSConfig = tlsClientConfig(s)
			}
			scheme := "ws"
			if tc.tls {
				scheme = "wss"
			}
			c, _, err := Dial(dialCtx(t), scheme+"://"+name+"/env", opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()

			reqs := p.requests()
			mu.Lock()
			gotDialed := slices.Clone(dialed)
			mu.Unlock()
			if tc.wantProxied {
				if len(reqs) != 1 || reqs[0].Method != http.MethodConnect || reqs[0].Target != name {
					t.Errorf("proxy saw %+v, want one CONNECT %s", reqs, name)
				}
				if !slices.Equal(gotDialed, []string{p.ln.Addr().String()}) {
					t.Errorf("dialed %q, want only the proxy", gotDialed)
				}
			} else {
				if len(reqs) != 0 {
					t.Errorf("proxy saw %+v, want none", reqs)
				}
				if !slices.Equal(gotDialed, []string{name}) {
					t.Errorf("dialed %q, want only %s", gotDialed, name)
				}
			}
			if rec := s.lastRecord(t); rec.Host != name {
				t.Errorf("server saw Host %q, want %q", rec.Host, name)
			}
			roundTrip(t, c)
		})
	}
}

func TestDialRedirect(t *testing.T) {
	t.Parallel()
	// redirector answers /r?code=N&to=L with a redirect and /hop/N with a
	// chain of N redirects; anything else reaches Accept.
	redirector := func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case r.URL.Path == "/r":
			code, _ := strconv.Atoi(r.URL.Query().Get("code"))
			w.Header().Set("Location", r.URL.Query().Get("to"))
			w.WriteHeader(code)
			io.WriteString(w, "moved")
			return true
		case strings.HasPrefix(r.URL.Path, "/hop/"):
			n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/hop/"))
			if n == 0 {
				return false
			}
			w.Header().Set("Location", fmt.Sprintf("/hop/%d", n-1))
			w.WriteHeader(http.StatusFound)
			return true
		case r.URL.Path == "/loop":
			w.Header().Set("Location", "/loop")
			w.WriteHeader(http.StatusTemporaryRedirect)
			return true
		}
		return false
	}
	creds := http.Header{"Authorization": {"Bearer secret-token"}, "Cookie": {"session=abc"}, "X-Keep": {"kept"}}

	for _, tc := range []struct {
		name     string
		code     int
		cross    bool // redirect to the other server (another port)
		absolute bool // absolute Location on the same server
		userinfo bool // credentials in the URL instead of headers
		toUser   bool // credentials in the Location URL
	}{
		{name: "301 same origin", code: 301},
		{name: "302 same origin", code: 302},
		{name: "307 same origin", code: 307},
		{name: "308 same origin", code: 308},
		{name: "308 same origin absolute", code: 308, absolute: true},
		{name: "301 other port", code: 301, cross: true},
		{name: "302 other port", code: 302, cross: true},
		{name: "307 other port", code: 307, cross: true},
		{name: "308 other port", code: 308, cross: true},
		{name: "302 same origin URL credentials", code: 302, userinfo: true},
		{name: "302 other port URL credentials", code: 302, cross: true, userinfo: true},
		{name: "307 other port, credentials in Location", code: 307, cross: true, userinfo: true, toUser: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := startHSServer(t, hsConfig{pre: redirector})
			b := startHSServer(t, hsConfig{pre: redirector})
			to := "/final"
			if tc.absolute {
				to = "http://" + a.addr() + "/final"
			}
			final := a
			if tc.cross {
				to = "ws://" + b.addr() + "/final"
				if tc.toUser {
					to = "ws://mallory:pw2@" + b.addr() + "/final"
				}
				final = b
			}
			u := a.WS + "/r?code=" + strconv.Itoa(tc.code) + "&to=" + url.QueryEscape(to)
			opts := &DialOptions{HTTPHeader: creds}
			wantAuth := "Bearer secret-token"
			if tc.userinfo {
				u = "ws://alice:pw@" + strings.TrimPrefix(u, "ws://")
				opts = &DialOptions{HTTPHeader: http.Header{"Cookie": {"session=abc"}, "X-Keep": {"kept"}}}
				wantAuth = basicAuth("alice", "pw")
			}
			c, resp, err := Dial(dialCtx(t), u, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if resp.StatusCode != 101 {
				t.Errorf("final status %d", resp.StatusCode)
			}

			first := a.records()[0]
			if first.Path != "/r?code="+strconv.Itoa(tc.code)+"&to="+url.QueryEscape(to) || first.Header.Get("Authorization") != wantAuth {
				t.Errorf("first request %s with Authorization %q", first.Path, first.Header.Get("Authorization"))
			}
			rec := final.lastRecord(t)
			if rec.Path != "/final" || !rec.Accepted || rec.AcceptErr != nil {
				t.Fatalf("final request %+v, want /final accepted", rec)
			}
			if tc.cross {
				if n := len(a.records()); n != 1 {
					t.Errorf("first server saw %d requests, want 1", n)
				}
				if rec.Header.Get("Authorization") != "" || rec.Header.Get("Cookie") != "" {
					t.Errorf("cross-origin redirect kept Authorization %q, Cookie %q", rec.Header.Get("Authorization"), rec.Header.Get("Cookie"))
				}
			} else {
				if rec.Header.Get("Authorization") != wantAuth || rec.Header.Get("Cookie") != "session=abc" {
					t.Errorf("same-origin redirect lost credentials: Authorization %q, Cookie %q", rec.Header.Get("Authorization"), rec.Header.Get("Cookie"))
				}
			}
			if rec.Header.Get("X-Keep") != "kept" {
				t.Errorf("redirect dropped X-Keep")
			}
			roundTrip(t, c)
		})
	}

	t.Run("ws to wss is cross-origin", func(t *testing.T) {
		t.Parallel()
		a := startHSServer(t, hsConfig{pre: redirector})
		b := startHSServer(t, hsConfig{tls: true, pre: redirector})
		u := a.WS + "/r?code=307&to=" + url.QueryEscape(b.WS+"/final")
		c, _, err := Dial(dialCtx(t), u, &DialOptions{HTTPHeader: creds, TLSConfig: tlsClientConfig(b)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		rec := b.lastRecord(t)
		if rec.Path != "/final" || rec.Header.Get("Authorization") != "" || rec.Header.Get("Cookie") != "" {
			t.Errorf("TLS server saw %s with Authorization %q, Cookie %q", rec.Path, rec.Header.Get("Authorization"), rec.Header.Get("Cookie"))
		}
		roundTrip(t, c)
	})

	t.Run("ten redirects are followed", func(t *testing.T) {
		t.Parallel()
		a := startHSServer(t, hsConfig{pre: redirector})
		c, _, err := Dial(dialCtx(t), a.WS+"/hop/10", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		if n := len(a.records()); n != 11 {
			t.Errorf("server saw %d requests, want 11", n)
		}
		roundTrip(t, c)
	})

	for _, path := range []string{"/hop/11", "/loop"} {
		t.Run("eleven redirects fail "+path, func(t *testing.T) {
			t.Parallel()
			a := startHSServer(t, hsConfig{pre: redirector})
			c, _, err := Dial(dialCtx(t), a.WS+path, nil)
			if err == nil {
				c.CloseNow()
				t.Fatal("Dial followed more than 10 redirects")
			}
			if !strings.Contains(err.Error(), "redirect") {
				t.Errorf("error %q does not mention redirects", err)
			}
			recs := a.records()
			if len(recs) != 11 {
				t.Errorf("server saw %d requests, want 11 (the first and 10 redirects)", len(recs))
			}
			for _, r := range recs {
				if r.Accepted {
					t.Errorf("request %s reached Accept", r.Path)
				}
			}
		})
	}
}

// TestDialProxyEarlyBytes has a proxy send the server's answer in the same
// write as its 200: bytes read ahead while parsing the CONNECT response must
// not be lost.
func TestDialProxyEarlyBytes(t *testing.T) {
	t.Parallel()
	addr, _ := fakeServer(t, func(string) string {
		return "HTTP/1.1 200 Connection established\r\n\r\n" +
			"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope"
	})
	proxy := &url.URL{Scheme: "http", Host: addr}
	c, resp, err := Dial(dialCtx(t), "ws://127.0.0.1:1/", &DialOptions{
		Proxy:            http.ProxyURL(proxy),
		HandshakeTimeout: 5 * time.Second,
	})
	if err == nil {
		c.CloseNow()
		t.Fatal("Dial succeeded against a 404")
	}
	var he *HandshakeError
	if !errors.As(err, &he) || he.StatusCode != http.StatusNotFound || resp == nil {
		t.Fatalf("error %v, want *HandshakeError 404 with the response", err)
	}
	if body, _ := io.ReadAll(resp.Body); string(body) != "nope" {
		t.Errorf("body %q, want \"nope\"", body)
	}
}
