package tether

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// limitServer accepts with limit and holds each connection until it ends.
func limitServer(t *testing.T, limit *ConnLimit) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, &AcceptOptions{Limit: limit, ConnOptions: ConnOptions{Registry: NoRegistry}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// dialFrom dials url from the local address ip.
func dialFrom(t *testing.T, url, ip string) (*Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, _, err := Dial(ctx, url, &DialOptions{NetDialContext: d.DialContext, ConnOptions: ConnOptions{Registry: NoRegistry}})
	if c != nil {
		t.Cleanup(func() { c.CloseNow() })
	}
	return c, err
}

// refused checks err is the limit's 503 with Retry-After, and that a raw
// upgrade request now reads why in the body.
func refused(t *testing.T, err error, url, why string) {
	t.Helper()
	var he *HandshakeError
	if !errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("got %v, want 503", err)
	}
	if he.Response == nil || he.Response.Header.Get("Retry-After") == "" {
		t.Errorf("refusal without Retry-After")
	}
	resp, body, _ := rawExchange(t, strings.TrimPrefix(url, "ws://"), []string{"GET / HTTP/1.1", "Host: x",
		"Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
		"Sec-WebSocket-Version: 13"}, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, why) {
		t.Errorf("raw upgrade: %d %q, want 503 saying %q", resp.StatusCode, body, why)
	}
}

// TestConnLimitMax: past Max, upgrades get 503 with a reason and
// Retry-After; a connection that ends frees its place.
func TestConnLimitMax(t *testing.T) {
	limit := &ConnLimit{Max: 2}
	url := limitServer(t, limit)
	a, err := dialFrom(t, url, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dialFrom(t, url, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	_, err = dialFrom(t, url, "127.0.0.1")
	refused(t, err, url, "too many connections")
	a.Close(StatusNormal, "")
	eventually(t, "a's place freed", func() bool { return limit.Len() == 1 })
	if _, err := dialFrom(t, url, "127.0.0.1"); err != nil {
		t.Fatalf("after a closed: %v", err)
	}
	if limit.Refused() != 2 { // the dial and the raw request
		t.Errorf("Refused() = %d, want 2", limit.Refused())
	}
}

// TestConnLimitPerHost: PerHost bounds one address, not the others.
func TestConnLimitPerHost(t *testing.T) {
	limit := &ConnLimit{PerHost: 1}
	url := limitServer(t, limit)
	if _, err := dialFrom(t, url, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	_, err := dialFrom(t, url, "127.0.0.1")
	refused(t, err, url, "from 127.0.0.1")
	if _, err := dialFrom(t, url, "127.0.0.2"); err != nil {
		t.Fatalf("another address: %v", err)
	}
}

// TestLimitSlotsShared: a ConnLimit's connections share their slot, one
// for all or one per address with PerHost, so a connection holds nothing
// of its own for it; the address's slot goes with its last connection.
func TestLimitSlotsShared(t *testing.T) {
	all := &ConnLimit{Max: 3}
	a, _ := all.take("10.0.0.1")
	b, _ := all.take("10.0.0.2")
	if a == nil || a != b {
		t.Fatal("connections of a limit without PerHost do not share a slot")
	}
	if _, refusal := all.take("10.0.0.3"); refusal != "" {
		t.Fatalf("third connection refused: %s", refusal)
	}
	if _, refusal := all.take("10.0.0.4"); refusal == "" {
		t.Fatal("fourth connection past Max admitted")
	}
	a.release()
	if all.Len() != 2 {
		t.Fatalf("Len %d after a release, want 2", all.Len())
	}

	per := &ConnLimit{PerHost: 2}
	x, _ := per.take("10.0.0.1")
	y, _ := per.take("10.0.0.1")
	z, _ := per.take("10.0.0.2")
	if x != y || x == z {
		t.Fatal("per-address slots: want one per address")
	}
	if _, refusal := per.take("10.0.0.1"); refusal == "" {
		t.Fatal("third connection from one address admitted with PerHost 2")
	}
	x.release()
	y.release()
	if _, ok := per.hosts["10.0.0.1"]; ok {
		t.Fatal("an address's slot outlives its connections")
	}
	if s, refusal := per.take("10.0.0.1"); refusal != "" || s == x {
		t.Fatalf("after its connections ended the address gets a fresh slot: %v %q", s == x, refusal)
	}
}
