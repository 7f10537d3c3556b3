package tether

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// rfcKey and rfcAccept are the sample handshake of RFC 6455 section 1.3.
const (
	rfcKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	rfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

// hsRecord is what a handshake test server saw of one request.
type hsRecord struct {
	Method string
	Path   string
	Host   string
	Header http.Header
	// Accepted is set for requests that reached Accept; AcceptErr and
	// Subprotocol are its results.
	Accepted    bool
	AcceptErr   error
	Subprotocol string

	done chan struct{} // closed once the fields above are final
}

// hsServer is an httptest server that records every request, optionally
// lets pre answer it (redirects, errors), and otherwise accepts a WebSocket
// and echoes every message until the peer goes away.
type hsServer struct {
	*httptest.Server
	WS string // ws:// or wss:// base URL

	mu   sync.Mutex
	recs []*hsRecord
}

type hsConfig struct {
	tls  bool
	opts *AcceptOptions
	// pre runs before Accept; it returns true when it answered the request.
	pre func(w http.ResponseWriter, r *http.Request) bool
	// beforeAccept runs just before Accept, e.g. to set response headers.
	beforeAccept func(w http.ResponseWriter, r *http.Request)
}

func startHSServer(t *testing.T, cfg hsConfig) *hsServer {
	t.Helper()
	s := &hsServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Record the request before answering it, so that the client
		// never sees a response the server has not recorded.
		rec := &hsRecord{Method: r.Method, Path: r.URL.RequestURI(), Host: r.Host, Header: r.Header.Clone(), done: make(chan struct{})}
		if cfg.pre != nil {
			s.add(rec)
			if cfg.pre(w, r) {
				close(rec.done)
				return
			}
			s.mu.Lock()
			rec.Accepted = true
			s.mu.Unlock()
		} else {
			rec.Accepted = true
			s.add(rec)
		}
		if cfg.beforeAccept != nil {
			cfg.beforeAccept(w, r)
		}
		c, err := Accept(w, r, cfg.opts)
		s.mu.Lock()
		rec.AcceptErr = err
		if c != nil {
			rec.Subprotocol = c.Subprotocol()
		}
		s.mu.Unlock()
		close(rec.done)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := context.Background()
		for {
			typ, p, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, p); err != nil {
				return
			}
		}
	}))
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // TLS handshake failures are expected in some tests
	if cfg.tls {
		s.StartTLS()
		s.WS = "wss" + strings.TrimPrefix(s.URL, "https")
	} else {
		s.Start()
		s.WS = "ws" + strings.TrimPrefix(s.URL, "http")
	}
	t.Cleanup(s.Close)
	return s
}

func (s *hsServer) add(r *hsRecord) {
	s.mu.Lock()
	s.recs = append(s.recs, r)
	s.mu.Unlock()
}

// records returns what the server has seen so far. Every request the client
// got an answer to is in it.
func (s *hsServer) records() []hsRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]hsRecord, len(s.recs))
	for i, r := range s.recs {
		out[i] = *r
	}
	return out
}

// lastRecord returns the latest request, once its handling is complete.
func (s *hsServer) lastRecord(t *testing.T) hsRecord {
	t.Helper()
	s.mu.Lock()
	var last *hsRecord
	if len(s.recs) > 0 {
		last = s.recs[len(s.recs)-1]
	}
	s.mu.Unlock()
	if last == nil {
		t.Fatal("server saw no request")
	}
	select {
	case <-last.done:
	case <-time.After(5 * time.Second):
		t.Fatal("server did not finish handling the request")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return *last
}

// addr returns the server's host:port.
func (s *hsServer) addr() string { return s.Listener.Addr().String() }

// rawExchange sends a hand-written HTTP request (lines without the final
// blank line, plus any extra bytes) and reads the response. The connection
// stays open until the test ends.
func rawExchange(t *testing.T, addr string, lines []string, extra []byte) (*http.Response, string, *bufio.Reader) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	msg := append([]byte(strings.Join(lines, "\r\n")+"\r\n\r\n"), extra...)
	if _, err := nc.Write(msg); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	var body []byte
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, err = io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("read body: %v", err)
		}
	}
	return resp, string(body), br
}

// acceptFor computes Sec-WebSocket-Accept independently of the package.
func acceptFor(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

func hasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func TestAcceptFor(t *testing.T) {
	t.Parallel()
	if got := acceptFor(rfcKey); got != rfcAccept {
		t.Fatalf("acceptFor(%q) = %q, want %q (RFC 6455 section 1.3)", rfcKey, got, rfcAccept)
	}
}

func TestAcceptRequestValidation(t *testing.T) {
	t.Parallel()
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	for _, tc := range []struct {
		name     string
		method   string
		headers  []string
		want     int
		wantBody string // substring of the error body
	}{
		{
			name:    "valid",
			headers: []string{"Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: " + rfcKey},
			want:    101,
		},
		{
			name:    "tokens in lists and mixed case",
			headers: []string{"Upgrade: WebSocket", "Connection: keep-alive, Upgrade", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: " + rfcKey},
			want:    101,
		},
		{
			name:    "lower-case names and upper-case values",
			headers: []string{"upgrade: WEBSOCKET", "connection: UPGRADE", "sec-websocket-version: 13", "sec-websocket-key: " + rfcKey},
			want:    101,
		},
		{
			name:    "Connection split over two lines",
			headers: []string{"Upgrade: websocket", "Connection: keep-alive", "Connection: upgrade", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: " + rfcKey},
			want:    101,
		},
		{
			name:     "POST",
			method:   "POST",
			headers:  []string{"Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: " + rfcKey, "Content-Length: 0"},
			want:     400,
			wantBody: "GET",
		},
		{
			name:     "no Upgrade",
			headers:  []string{"Connection: Upgrade", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: " + rfcKey},
			want:     400,
			wantBody: "Upgrade",
		},
		{
			name:     "Upgrade to another protocol",
			headers:  []string{"Upgrade: h2c", "Connection: Upgrade", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: " + rfcKey},
			want:     400,
			wantBody: "Upgrade",
		},
		{
			name:     "Connection without upgrade",
			headers:  []string{"Upgrade: websocket", "Connection: keep-alive", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: " + rfcKey},
			want:     400,
			wantBody: "Connection",
		},
		{
			name:     "Connection token is not a substring match",
			headers:  []string{"Upgrade: websocket", "Connection: upgraded", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: " + rfcKey},
			want:     400,
			wantBody: "Connection",
		},
		{
			name:    "version 8",
			headers: []string{"Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 8", "Sec-WebSocket-Key: " + rfcKey},
			want:    426,
		},
		{
			name:    "version missing",
			headers: []string{"Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: " + rfcKey},
			want:    426,
		},
		{
			name:     "key missing",
			headers:  []string{"Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13"},
			want:     400,
			wantBody: "Sec-WebSocket-Key",
		},
		{
			name:     "key not base64",
			headers:  []string{"Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: not*base64*at*all*here!"},
			want:     400,
			wantBody: "Sec-WebSocket-Key",
		},
		{
			name:     "key of 15 bytes",
			headers:  []string{"Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: " + b64(15)},
			want:     400,
			wantBody: "Sec-WebSocket-Key",
		},
		{
			name:     "key of 17 bytes",
			headers:  []string{"Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: " + b64(17)},
			want:     400,
			wantBody: "Sec-WebSocket-Key",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startHSServer(t, hsConfig{})
			method := tc.method
			if method == "" {
				method = "GET"
			}
			lines := append([]string{method + " /chat HTTP/1.1", "Host: " + s.addr()}, tc.headers...)
			resp, body, _ := rawExchange(t, s.addr(), lines, nil)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, body, tc.want)
			}
			rec := s.lastRecord(t)
			if !rec.Accepted {
				t.Fatal("request did not reach Accept")
			}
			switch tc.want {
			case http.StatusSwitchingProtocols:
				if rec.AcceptErr != nil {
					t.Fatalf("Accept: %v", rec.AcceptErr)
				}
				if got := resp.Header.Get("Sec-WebSocket-Accept"); got != rfcAccept {
					t.Errorf("Sec-WebSocket-Accept = %q, want %q", got, rfcAccept)
				}
				if !hasToken(resp.Header, "Upgrade", "websocket") || !hasToken(resp.Header, "Connection", "upgrade") {
					t.Errorf("101 without Upgrade/Connection tokens: %v", resp.Header)
				}
				if v := resp.Header.Values("Sec-WebSocket-Protocol"); len(v) != 0 {
					t.Errorf("subprotocol %q selected without an offer", v)
				}
			default:
				var he *HandshakeError
				if !errors.As(rec.AcceptErr, &he) || he.StatusCode != tc.want {
					t.Fatalf("Accept error = %#v, want *HandshakeError with status %d", rec.AcceptErr, tc.want)
				}
				if resp.Header.Get("Sec-WebSocket-Accept") != "" {
					t.Error("refused request got Sec-WebSocket-Accept")
				}
				if strings.TrimSpace(body) == "" || len(body) > 200 {
					t.Errorf("body %q: want a short reason", body)
				}
				if !strings.Contains(body, tc.wantBody) {
					t.Errorf("body %q does not mention %q", body, tc.wantBody)
				}
				if tc.want == http.StatusUpgradeRequired {
					if got := resp.Header.Get("Sec-WebSocket-Version"); got != "13" {
						t.Errorf("426 with Sec-WebSocket-Version %q, want 13", got)
					}
				} else if got := resp.Header.Get("Sec-WebSocket-Version"); got != "" {
					t.Errorf("%d with Sec-WebSocket-Version %q", tc.want, got)
				}
			}
		})
	}
}

func TestAcceptSubprotocol(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		supported []string
		offered   []string
		want      string
	}{
		{"client preference wins", []string{"chat", "superchat"}, []string{"superchat", "chat"}, "superchat"},
		{"first supported offer", []string{"b", "c"}, []string{"a", "b", "c"}, "b"},
		{"case-sensitive", []string{"Chat"}, []string{"chat"}, ""},
		{"no overlap", []string{"x"}, []string{"a", "b"}, ""},
		{"client offers none", []string{"a"}, nil, ""},
		{"server supports none", nil, []string{"a"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startHSServer(t, hsConfig{opts: &AcceptOptions{Subprotocols: tc.supported}})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, resp, err := Dial(ctx, s.WS, &DialOptions{Subprotocols: tc.offered})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if got := c.Subprotocol(); got != tc.want {
				t.Errorf("client Subprotocol() = %q, want %q", got, tc.want)
			}
			if got := resp.Header.Values("Sec-WebSocket-Protocol"); (tc.want == "" && len(got) != 0) || (tc.want != "" && !slices.Equal(got, []string{tc.want})) {
				t.Errorf("response Sec-WebSocket-Protocol = %q, want %q", got, tc.want)
			}
			rec := s.lastRecord(t)
			if rec.Subprotocol != tc.want {
				t.Errorf("server Subprotocol() = %q, want %q", rec.Subprotocol, tc.want)
			}
			if len(tc.offered) > 0 {
				if got := strings.Join(rec.Header.Values("Sec-WebSocket-Protocol"), ","); got != strings.Join(tc.offered, ", ") {
					t.Errorf("server saw offer %q, want %q", got, strings.Join(tc.offered, ", "))
				}
			}
			roundTrip(t, c)
		})
	}

	t.Run("offers over several header lines", func(t *testing.T) {
		t.Parallel()
		s := startHSServer(t, hsConfig{opts: &AcceptOptions{Subprotocols: []string{"b", "c"}}})
		resp, body, _ := rawExchange(t, s.addr(), []string{
			"GET / HTTP/1.1", "Host: " + s.addr(), "Upgrade: websocket", "Connection: Upgrade",
			"Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: " + rfcKey,
			"Sec-WebSocket-Protocol: a", "Sec-WebSocket-Protocol: c, b",
		}, nil)
		if resp.StatusCode != 101 {
			t.Fatalf("status %d %q", resp.StatusCode, body)
		}
		if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "c" {
			t.Errorf("selected %q, want c", got)
		}
	})
}

func TestAcceptOrigin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		origin   string // "HOST" is replaced by the server's host:port
		patterns []string
		want     int
	}{
		{"no Origin", "", nil, 101},
		{"same host", "http://HOST", nil, 101},
		{"same host, https", "https://HOST", nil, 101},
		{"other host", "https://evil.example", nil, 403},
		{"same IP, other port", "http://127.0.0.1:1", nil, 403},
		{"null origin", "null", nil, 403},
		{"wildcard subdomain", "https://app.example.com", []string{"*.example.com"}, 101},
		{"wildcard subdomain with port", "https://app.example.com:8443", []string{"*.example.com"}, 101},
		{"pattern case-insensitive", "https://App.Example.COM", []string{"*.EXAMPLE.com"}, 101},
		{"wildcard needs a subdomain", "https://example.com", []string{"*.example.com"}, 403},
		{"suffix is not enough", "https://evilexample.com", []string{"*.example.com"}, 403},
		{"other domain with patterns", "https://app.evil.com", []string{"*.example.com", "example.org"}, 403},
		{"exact pattern", "https://example.org", []string{"*.example.com", "example.org"}, 101},
		{"host:port pattern", "https://example.org:8443", []string{"example.org:8443"}, 101},
		{"star allows all", "https://anything.test", []string{"*"}, 101},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startHSServer(t, hsConfig{opts: &AcceptOptions{OriginPatterns: tc.patterns}})
			lines := []string{"GET / HTTP/1.1", "Host: " + s.addr(), "Upgrade: websocket", "Connection: Upgrade",
				"Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: " + rfcKey}
			if tc.origin != "" {
				lines = append(lines, "Origin: "+strings.ReplaceAll(tc.origin, "HOST", s.addr()))
			}
			resp, body, _ := rawExchange(t, s.addr(), lines, nil)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, body, tc.want)
			}
			rec := s.lastRecord(t)
			if tc.want == 101 {
				if rec.AcceptErr != nil {
					t.Fatalf("Accept: %v", rec.AcceptErr)
				}
				return
			}
			if rec.AcceptErr == nil {
				t.Fatal("Accept returned no error for a refused origin")
			}
			var he *HandshakeError
			if !errors.As(rec.AcceptErr, &he) || he.StatusCode != http.StatusForbidden {
				t.Errorf("Accept error = %#v, want *HandshakeError with status 403", rec.AcceptErr)
			}
			if !strings.Contains(strings.ToLower(body), "origin") {
				t.Errorf("403 body %q does not mention the origin", body)
			}
		})
	}
}

func TestAcceptResponseHeaders(t *testing.T) {
	t.Parallel()
	s := startHSServer(t, hsConfig{
		opts: &AcceptOptions{Subprotocols: []string{"chat"}},
		beforeAccept: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Tether-Test", "yes")
			w.Header().Add("Set-Cookie", "a=1")
			w.Header().Add("Set-Cookie", "b=2")
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := Dial(ctx, s.WS, &DialOptions{Subprotocols: []string{"chat"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("status %d, want 101", resp.StatusCode)
	}
	if got := resp.Header.Get("X-Tether-Test"); got != "yes" {
		t.Errorf("X-Tether-Test = %q, want yes", got)
	}
	if got := resp.Header.Values("Set-Cookie"); !slices.Equal(got, []string{"a=1", "b=2"}) {
		t.Errorf("Set-Cookie = %q, want [a=1 b=2]", got)
	}
	if got := resp.Header.Values("Sec-WebSocket-Protocol"); !slices.Equal(got, []string{"chat"}) {
		t.Errorf("Sec-WebSocket-Protocol = %q, want [chat]", got)
	}
	roundTrip(t, c)
}

// TestAcceptEarlyData sends the first frame in the same packet as the request:
// the bytes the HTTP server read ahead must reach the connection.
func TestAcceptEarlyData(t *testing.T) {
	t.Parallel()
	s := startHSServer(t, hsConfig{})
	key := [4]byte{1, 2, 3, 4}
	frame := []byte{0x81, 0x80 | 2, key[0], key[1], key[2], key[3], 'h' ^ key[0], 'i' ^ key[1]}
	resp, body, br := rawExchange(t, s.addr(), []string{
		"GET / HTTP/1.1", "Host: " + s.addr(), "Upgrade: websocket", "Connection: Upgrade",
		"Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: " + rfcKey,
	}, frame)
	if resp.StatusCode != 101 {
		t.Fatalf("status %d %q", resp.StatusCode, body)
	}
	echo := make([]byte, 4)
	if _, err := io.ReadFull(br, echo); err != nil {
		t.Fatalf("reading echo: %v", err)
	}
	if want := []byte{0x81, 2, 'h', 'i'}; string(echo) != string(want) {
		t.Fatalf("echo frame % x, want % x", echo, want)
	}
}

func TestAcceptWithoutHijacker(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "http://example.com/ws", nil)
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Sec-WebSocket-Version", "13")
	r.Header.Set("Sec-WebSocket-Key", rfcKey)
	w := httptest.NewRecorder() // not an http.Hijacker, as with HTTP/2
	c, err := Accept(w, r, nil)
	if err == nil || c != nil {
		t.Fatalf("Accept = %v, %v; want an error", c, err)
	}
	if w.Code != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", w.Code)
	}
}

// roundTrip checks that c echoes a message through the test server and closes
// it with a closing handshake.
func roundTrip(t *testing.T, c *Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, Text, []byte("hello")); err != nil {
		t.Fatalf("write: %v", err)
	}
	typ, p, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != Text || string(p) != "hello" {
		t.Fatalf("echo = %v %q, want text \"hello\"", typ, p)
	}
	if err := c.Close(StatusNormal, ""); err != nil {
		t.Fatalf("close: %v", err)
	}
}
