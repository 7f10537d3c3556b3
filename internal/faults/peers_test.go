package faults

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/tetherws/tether"
)

// soak reports whether the long version runs (make soak).
func soak() bool { return os.Getenv("TETHER_SOAK") != "" }

// handshake is a client's opening handshake, by hand.
const handshake = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

// server is a Tether server whose handler gives each connection to serve
// and reports its end.
type server struct {
	addr string
	reg  *tether.Registry
	ends chan end
}

func newServer(t *testing.T, serve func(*tether.Conn) error) *server {
	t.Helper()
	s := &server{reg: tether.NewRegistry(), ends: make(chan end, 16)}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := tether.Accept(w, r, &tether.AcceptOptions{ConnOptions: connOptions(s.reg)})
		if err != nil {
			return
		}
		defer c.CloseNow()
		err = serve(c)
		select {
		case s.ends <- end{err, time.Now()}:
		default:
		}
	}))
	t.Cleanup(hs.Close)
	s.addr = hs.Listener.Addr().String()
	return s
}

// hungClient is a raw client that completes the handshake and then neither
// reads nor writes: a hung process whose kernel still acknowledges.
type hungClient struct {
	t      *testing.T
	srv    *server
	nc     net.Conn
	opened time.Time
}

func newHungClient(t *testing.T) *hungClient {
	t.Helper()
	srv := newServer(t, echo)
	nc, _ := rawHandshake(t, srv.addr)
	return &hungClient{t: t, srv: srv, nc: nc, opened: time.Now()}
}

// rawHandshake dials addr and completes a handshake by hand.
func rawHandshake(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	io.WriteString(nc, handshake)
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	return nc, br
}

func (h *hungClient) waitServerEnd(d time.Duration) end {
	h.t.Helper()
	select {
	case en := <-h.srv.ends:
		return en
	case <-time.After(d + 5*time.Second):
		h.t.Fatal("the server never gave up on the hung client")
	}
	return end{}
}

// dialHungServer dials a raw server that answers the handshake and then
// never writes again.
func dialHungServer(t *testing.T) (*tether.Conn, time.Time) {
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
		req, err := http.ReadRequest(bufio.NewReader(nc))
		if err != nil {
			return
		}
		fmt.Fprintf(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Accept: %s\r\n\r\n", acceptKey(req.Header.Get("Sec-WebSocket-Key")))
		// Silent: it takes what the client sends and answers nothing,
		// pings and close frames included, until the client goes.
		nc.SetReadDeadline(time.Now().Add(30 * time.Second))
		io.Copy(io.Discard, nc)
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	reg := tether.NewRegistry()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := tether.Dial(ctx, "ws://"+ln.Addr().String()+"/", &tether.DialOptions{ConnOptions: connOptions(reg)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c, time.Now()
}

// acceptKey computes Sec-WebSocket-Accept for key (RFC 6455 section 4.2.2).
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}
