package tether

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tetherws/tether/internal/wire"
)

// maxRedirects is how many redirects Dial follows, as net/http does.
const maxRedirects = 10

// HandshakeError is an opening handshake that failed at the HTTP level: the
// server answered with something other than a valid 101, or (from Accept) the
// request was refused. Response is the server's answer, with up to 1 KiB of
// its body readable after the connection has closed; it is nil for Accept.
type HandshakeError struct {
	StatusCode int
	Reason     string
	Response   *http.Response
	// Body is the first line of the response's body, trimmed, often the
	// server's own reason (which origin it refused, which token it
	// rejected); empty for Accept or an empty body.
	Body string
}

func (e *HandshakeError) Error() string {
	msg := fmt.Sprintf("websocket handshake failed: %d %s: %s", e.StatusCode, http.StatusText(e.StatusCode), e.Reason)
	if e.Body != "" {
		msg += " (server said: " + e.Body + ")"
	}
	return msg
}

// Dial opens a client connection to a ws:// or wss:// URL (http:// and
// https:// are taken as their WebSocket equivalents). It goes through an HTTP
// proxy with CONNECT when the environment or DialOptions.Proxy names one,
// sends credentials from user:pass@ in the URL as HTTP Basic auth, and
// follows up to 10 redirects, dropping Authorization and Cookie headers when
// a redirect leaves the origin.
//
// The handshake, proxying included, is bounded by ctx and by
// HandshakeTimeout. The *http.Response is the server's answer, also on a
// failed handshake; its body is already closed on success.
func Dial(ctx context.Context, rawURL string, opts *DialOptions) (*Conn, *http.Response, error) {
	if opts == nil {
		opts = &DialOptions{}
	}
	site := captureSite()
	u, err := parseWSURL(rawURL)
	if err != nil {
		return nil, nil, err
	}
	timeout := opts.HandshakeTimeout
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	header := opts.HTTPHeader.Clone()
	if header == nil {
		header = http.Header{}
	}
	origin := u
	var offer *wire.DeflateParams
	if cfg, ok := opts.deflateConfig(); ok {
		o := wire.DeflateOffer(cfg)
		offer = &o
	}
	for range maxRedirects + 1 {
		neg := &negotiation{offer: offer}
		nc, br, resp, err := handshake(ctx, u, header, opts, neg)
		if err != nil {
			return nil, resp, fmt.Errorf("tether: dial %s: %w", redact(u), err)
		}
		if nc != nil {
			cfg := opts.config()
			cfg.fanOut, cfg.callSite, cfg.deflate = opts.FanOut, site, neg.result
			return newConn(nc, br, wire.Client, cfg, resp.Header.Get("Sec-WebSocket-Protocol"), redact(u)), resp, nil
		}
		next, err := u.Parse(resp.Header.Get("Location"))
		if err != nil {
			return nil, resp, fmt.Errorf("tether: dial %s: bad redirect: %w", redact(u), err)
		}
		if next, err = parseWSURL(next.String()); err != nil {
			return nil, resp, err
		}
		if !sameOrigin(origin, next) {
			header.Del("Authorization")
			header.Del("Cookie")
			next.User = nil
		}
		u = next
	}
	return nil, nil, fmt.Errorf("tether: dial %s: stopped after %d redirects", redact(u), maxRedirects)
}

func parseWSURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("tether: bad URL: %w", err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return nil, fmt.Errorf("tether: URL scheme must be ws or wss, got %q", u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("tether: URL %q has no host", raw)
	}
	return u, nil
}

func sameOrigin(a, b *url.URL) bool {
	return a.Scheme == b.Scheme && strings.EqualFold(hostPort(a), hostPort(b))
}

// hostPort returns host:port with the scheme's default port filled in.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "wss" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// redact hides a password in a URL meant for logs and errors.
func redact(u *url.URL) string { return u.Redacted() }

// handshake runs one opening handshake. It returns the connection on a 101,
// a nil connection and the response on a redirect, and an error otherwise.
// negotiation carries the client's extension offer into a handshake and
// the accepted parameters out of it.
type negotiation struct {
	offer  *wire.DeflateParams
	result *wire.DeflateParams
}

func handshake(ctx context.Context, u *url.URL, header http.Header, opts *DialOptions, neg *negotiation) (net.Conn, *bufio.Reader, *http.Response, error) {
	nc, err := dialTransport(ctx, u, opts)
	if err != nil {
		return nil, nil, nil, ctxErr(ctx, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	ok := false
	defer func() {
		stop()
		if !ok {
			nc.Close()
		}
	}()

	key := newKey()
	req := buildRequest(u, header, key, opts)
	if neg.offer != nil {
		req.Header.Set("Sec-WebSocket-Extensions", neg.offer.String())
	}
	if err := req.Write(nc); err != nil {
		return nil, nil, nil, ctxErr(ctx, fmt.Errorf("write request: %w", err))
	}
	br := bufio.NewReaderSize(nc, 4096)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, nil, nil, ctxErr(ctx, fmt.Errorf("read response: %w", err))
	}
	if isRedirect(resp.StatusCode) && resp.Header.Get("Location") != "" {
		keepBody(resp)
		return nil, nil, resp, nil
	}
	if err := wire.CheckResponse(resp.StatusCode, resp.Header, key, opts.Subprotocols); err != nil {
		body := keepBody(resp)
		var he *wire.HandshakeError
		errors.As(err, &he)
		return nil, nil, resp, &HandshakeError{StatusCode: resp.StatusCode, Reason: he.Reason, Response: resp, Body: firstLine(body)}
	}
	if neg.result, err = checkDeflateResponse(resp.Header, neg.offer); err != nil {
		keepBody(resp)
		return nil, nil, resp, &HandshakeError{StatusCode: resp.StatusCode, Reason: "Sec-WebSocket-Extensions: " + err.Error(), Response: resp}
	}
	if !stop() {
		return nil, nil, resp, ctx.Err()
	}
	nc.SetDeadline(timeZero)
	ok = true
	return nc, br, resp, nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	// The connection's deadline is the context's, and it can expire a moment
	// before the context's own timer marks the context done.
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	return err
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// keepBody reads up to 1 KiB of a refused handshake's body so the caller can
// read it after the connection is gone.
func keepBody(resp *http.Response) []byte {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return b
}

// firstLine is the body's first non-empty line, trimmed and cut to 200
// bytes, for an error message; "" when it is not valid UTF-8 text.
func firstLine(b []byte) string {
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			if len(l) > 200 {
				l = l[:200]
			}
			if !utf8.ValidString(l) {
				return ""
			}
			return l
		}
	}
	return ""
}

func newKey() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

func buildRequest(u *url.URL, header http.Header, key string, opts *DialOptions) *http.Request {
	h := header.Clone()
	h.Set("Upgrade", "websocket")
	h.Set("Connection", "Upgrade")
	h.Set("Sec-WebSocket-Key", key)
	h.Set("Sec-WebSocket-Version", wire.Version)
	if len(opts.Subprotocols) > 0 {
		h.Set("Sec-WebSocket-Protocol", strings.Join(opts.Subprotocols, ", "))
	}
	if opts.Origin != "" {
		h.Set("Origin", opts.Origin)
	}
	if u.User != nil && h.Get("Authorization") == "" {
		pass, _ := u.User.Password()
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pass)))
	}
	if h.Get("User-Agent") == "" {
		h.Set("User-Agent", "tether")
	}
	host := u.Host
	if hh := h.Get("Host"); hh != "" {
		host = hh
		h.Del("Host")
	}
	return &http.Request{
		Method:     http.MethodGet,
		URL:        &url.URL{Scheme: httpScheme(u), Host: u.Host, Opaque: u.EscapedPath(), RawQuery: u.RawQuery},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       host,
	}
}

func httpScheme(u *url.URL) string {
	if u.Scheme == "wss" {
		return "https"
	}
	return "http"
}
