package tether

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/tetherws/tether/internal/bufpool"
	"github.com/tetherws/tether/internal/wire"
)

// Accept upgrades an HTTP request to a WebSocket connection (RFC 6455 section
// 4.2). It works inside any net/http handler. On a bad request it writes the
// HTTP error itself (400, 403, or 426 for a wrong version) and returns an
// error; the handler should then just return.
//
// Headers set on w before the call are sent with the 101 response. With
// AcceptOptions.Limit full, it answers 503 instead.
func Accept(w http.ResponseWriter, r *http.Request, opts *AcceptOptions) (*Conn, error) {
	if opts == nil {
		opts = &AcceptOptions{}
	}
	key, herr := wire.CheckRequest(r.Method, r.Header)
	if herr != nil {
		if herr.Status == http.StatusUpgradeRequired {
			w.Header().Set("Sec-WebSocket-Version", wire.Version)
		}
		http.Error(w, herr.Reason, herr.Status)
		return nil, &HandshakeError{StatusCode: herr.Status, Reason: herr.Reason}
	}
	if err := checkOrigin(r, opts.OriginPatterns); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return nil, &HandshakeError{StatusCode: http.StatusForbidden, Reason: err.Error()}
	}
	subprotocol := wire.SelectSubprotocol(wire.Tokens(r.Header, wire.HeaderProtocol), opts.Subprotocols)
	slot, err := opts.Limit.admit(w, r)
	if err != nil {
		return nil, err
	}

	nc, brw, err := hijack(w)
	if err != nil {
		slot.release()
		return nil, err
	}
	nc.SetDeadline(time.Time{}) // the HTTP server's deadlines do not apply to the WebSocket
	negotiated, extHeader := acceptDeflate(r.Header, &opts.ConnOptions)
	if err := writeSwitching(nc, key, subprotocol, extHeader, w.Header()); err != nil {
		nc.Close()
		slot.release()
		return nil, fmt.Errorf("tether: write handshake response: %w", err)
	}

	var br *bufio.Reader
	if brw != nil && brw.Reader.Size() >= wire.MaxHeaderSize {
		br = brw.Reader // keeps any bytes the client sent early
	}
	cfg := opts.config()
	cfg.callSite = captureSite()
	cfg.client = clientOf(r, nc)
	cfg.deflate = negotiated
	cfg.slot = slot
	c := newConn(nc, br, wire.Server, cfg, subprotocol, r.URL.RequestURI())
	if brw != nil {
		// The connection copied what it needed. net/http keeps this 4 KiB
		// reader (it is its connection's own) for as long as the handler
		// runs, which for a WebSocket is the connection's life, and never
		// touches it after a hijack: let it go.
		*brw.Reader = bufio.Reader{}
	}
	return c, nil
}

// hijack takes the connection over from net/http, or answers 500.
func hijack(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		err := errors.New("tether: response writer does not support hijacking (HTTP/2?)")
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return nil, nil, err
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		err = fmt.Errorf("tether: hijack: %w", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return nil, nil, err
	}
	return nc, brw, nil
}

// writeSwitching writes the 101 response, in one write from a pooled buffer.
func writeSwitching(nc net.Conn, key, subprotocol, extHeader string, extra http.Header) error {
	bp := bufpool.Get(512)
	defer bufpool.Put(bp)
	b := append(*bp, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	b = wire.AppendAcceptKey(b, key)
	b = append(b, "\r\n"...)
	if subprotocol != "" {
		b = append(append(append(b, "Sec-WebSocket-Protocol: "...), subprotocol...), "\r\n"...)
	}
	if extHeader != "" {
		b = append(append(append(b, "Sec-WebSocket-Extensions: "...), extHeader...), "\r\n"...)
	}
	for k, vs := range extra {
		for _, v := range vs {
			b = append(append(append(append(b, k...), ": "...), v...), "\r\n"...)
		}
	}
	b = append(b, "\r\n"...)
	*bp = b // a grown buffer goes back to the pool, not the first one
	_, err := nc.Write(b)
	return err
}

// checkOrigin allows requests without Origin (not from a browser), requests
// whose Origin host is the request's Host, and hosts matching patterns.
func checkOrigin(r *http.Request, patterns []string) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return fmt.Errorf("tether: bad Origin header %q", origin)
	}
	if strings.EqualFold(u.Host, r.Host) {
		return nil
	}
	for _, p := range patterns {
		p = strings.ToLower(p)
		if ok, _ := path.Match(p, strings.ToLower(u.Host)); ok {
			return nil
		}
		if ok, _ := path.Match(p, strings.ToLower(u.Hostname())); ok {
			return nil
		}
	}
	return fmt.Errorf("tether: origin %q not allowed for host %q", u.Host, r.Host)
}
