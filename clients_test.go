package tether

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherws/tether/internal/clock"
	"github.com/tetherws/tether/internal/wire"
)

// rawClient is a hand-made WebSocket client that sends what a test says:
// here, pings at chosen moments of a fake clock.
type rawClient struct {
	t  *testing.T
	nc net.Conn
}

func dialRaw(t *testing.T, addr, path, agent string) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	fmt.Fprintf(nc, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nUser-Agent: %s\r\n\r\n", path, addr, agent)
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	return &rawClient{t: t, nc: nc}
}

// ping sends a masked ping.
func (c *rawClient) ping(payload []byte) {
	c.t.Helper()
	h := wire.Header{Fin: true, Opcode: wire.OpPing, Length: int64(len(payload)), Masked: true, Key: [4]byte{1, 2, 3, 4}}
	p := append([]byte(nil), payload...)
	wire.Mask(h.Key, 0, p)
	if _, err := c.nc.Write(append(wire.AppendHeader(nil, h), p...)); err != nil {
		c.t.Fatal(err)
	}
}

// clientsServer accepts on /echo into reg with the fake clock, and serves
// each connection with DiscardMessages.
func clientsServer(t *testing.T, reg *Registry, fc *clock.Fake) string {
	t.Helper()
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1) // before the hijack, so that srv.Close waits for this Add
		c, err := Accept(w, r, &AcceptOptions{ConnOptions: ConnOptions{Registry: reg, Clock: fc, PingInterval: -1, Logger: discard}})
		if err != nil {
			wg.Done()
			return
		}
		c.Go(func(MessageType, []byte) error { return nil }, func(error) { wg.Done() })
	}))
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		reg.Shutdown(ctx, StatusGoingAway, "")
		wg.Wait()
	})
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestServerSeesClientCadences is the report seen from the server: three
// connections from one client process to /echo whose peers ping every 2 s,
// 0.5 s and 0.5 s. The registry warns once that one client holds three
// connections, once that their peers ping at different intervals, and its
// findings say so; a client from elsewhere (another User-Agent) is not
// mixed in.
func TestServerSeesClientCadences(t *testing.T) {
	fc := clock.NewFake()
	reg := NewRegistry()
	logger, rec := newLogRecorder()
	reg.Logger = logger
	addr := clientsServer(t, reg, fc)
	const agent = "Python/3.11 websockets/10.4"
	clients := []*rawClient{dialRaw(t, addr, "/echo", agent), dialRaw(t, addr, "/echo", agent), dialRaw(t, addr, "/echo", agent)}
	other := dialRaw(t, addr, "/echo", "Go-http-client/1.1")
	eventually(t, "four connections", func() bool { return reg.Len() == 4 })
	// The registry counts a connection (Len) before it warns about it.
	eventually(t, "the warning", func() bool { return len(rec.with("several connections from one client to one endpoint")) > 0 })
	if n := len(rec.with("several connections from one client to one endpoint")); n != 1 {
		t.Fatalf("%d warnings of several connections, want 1", n)
	}
	every := []int{4, 1, 1} // in steps of 500 ms
	total := int64(0)
	for step := range 17 { // 8 s
		for i, c := range clients {
			if step%every[i] == 0 {
				c.ping([]byte{byte(step)})
				total++
			}
		}
		other.ping(nil)
		total++
		eventually(t, "the pings received", func() bool {
			var n int64
			reg.Range(func(ci ConnInfo) bool { n += ci.PeerPings; return true })
			return n == total
		})
		fc.Advance(500 * time.Millisecond)
	}
	warns := rec.with("connections from one client to one endpoint whose peers ping at different intervals")
	if len(warns) != 1 {
		t.Fatalf("%d cadence warnings, want 1", len(warns))
	}
	w := warns[0].Attrs
	if got := w["remote"].String(); got != "127.0.0.1" {
		t.Fatalf("warning's remote %q", got)
	}
	if got := w["user_agent"].String(); got != agent {
		t.Fatalf("warning's user_agent %q", got)
	}
	ivs := fmt.Sprint(w["peer_ping_intervals"].Any())
	if strings.Count(ivs, "500ms") != 2 || strings.Count(ivs, "2s") != 1 {
		t.Fatalf("warning's intervals %s, want 2s and 500ms twice", ivs)
	}

	fs := reg.Findings()
	if len(fs) != 1 {
		b, _ := json.MarshalIndent(fs, "", "  ")
		t.Fatalf("want one finding, got %s", b)
	}
	f := fs[0]
	if f.Kind != FindingIntervalMismatch || f.Severity != "warning" || f.Count != 3 || f.Remote != "127.0.0.1" || f.Endpoint != "/echo" {
		t.Fatalf("finding %+v", f)
	}
	if !strings.Contains(f.Message, "500ms ×2, 2s ×1") {
		t.Fatalf("finding's message %q does not give both cadences", f.Message)
	}
	for i, iv := range f.Intervals {
		if iv == nil {
			t.Fatalf("finding's interval %d is null", i)
		}
	}
}

// TestClientOf: the client is the remote host without its port, refined by
// X-Forwarded-For and the User-Agent.
func TestClientOf(t *testing.T) {
	a, b := socketPair(t)
	_ = b
	r := httptest.NewRequest("GET", "/echo", nil)
	r.Header.Set("User-Agent", "ua/1")
	r.Header.Set("X-Forwarded-For", " 203.0.113.9 , 10.0.0.1")
	id := clientOf(r, a).Value()
	if id.host != "127.0.0.1" || id.forwarded != "203.0.113.9" || id.agent != "ua/1" {
		t.Fatalf("client %+v", id)
	}
	if got, want := id.String(), "203.0.113.9 via 127.0.0.1 (ua/1)"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	r.Header.Del("X-Forwarded-For")
	if clientOf(r, a) != clientOf(r, b) {
		t.Fatal("two connections from one host and agent are not one client")
	}
}
