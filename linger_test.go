package tether

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tetherws/tether/internal/wire"
)

// A connection Tether fails (a message too big, invalid UTF-8, a protocol
// error) while the
// peer is still sending must keep reading and discarding until the peer
// closes, so the kernel does not answer the unread bytes with a reset that
// destroys the close frame on its way (RFC 6455 7.1.1). The peers here are
// simple-minded on purpose: they send the whole of what they meant to send,
// and only then read. Each must find Tether's close frame, whatever the
// application does with the error (here: CloseNow at once, as a deferred
// CloseNow does).

// streamSize is how much the peer sends in all, far past the read limit.
const streamSize = 16 << 20

type lingerCase struct {
	name string
	code StatusCode
	// frames are the frames the peer sends, each 32 KiB of payload but a
	// big one's header, until streamSize bytes are out: the first
	// frame's header and opening bytes, then those that follow.
	first, next wire.Header
	opening     []byte
}

var lingerCases = []lingerCase{
	{name: "too-big", code: StatusTooBig,
		first: wire.Header{Fin: true, Opcode: wire.OpBinary, Length: streamSize}},
	{name: "invalid-utf8", code: StatusInvalidPayload,
		first:   wire.Header{Fin: true, Opcode: wire.OpText, Length: chunk},
		next:    wire.Header{Fin: true, Opcode: wire.OpBinary, Length: chunk},
		opening: []byte{0xff, 0xfe}},
	{name: "protocol-error", code: StatusProtocolError,
		first: wire.Header{Fin: true, Opcode: 3, Length: chunk}, // a reserved opcode
		next:  wire.Header{Fin: true, Opcode: wire.OpBinary, Length: chunk}},
}

const chunk = 32 << 10

func TestFailedConnectionLingers(t *testing.T) {
	for _, lc := range lingerCases {
		t.Run("server/"+lc.name, func(t *testing.T) {
			t.Parallel()
			lingerServerRole(t, lc)
		})
		t.Run("client/"+lc.name, func(t *testing.T) {
			t.Parallel()
			lingerClientRole(t, lc)
		})
	}
}

// lingerOptions: a small read limit, and a close timeout long enough for
// the peer's 4 MiB to be drained on a slow machine.
func lingerOptions() ConnOptions {
	return ConnOptions{ReadLimit: 64 << 10, CloseTimeout: 5 * time.Second}
}

// readUntilFail reads until the connection ends, then closes it at once as
// an application's deferred CloseNow would, and returns the error.
func readUntilFail(c *Conn) error {
	defer c.CloseNow()
	for {
		if _, _, err := c.Read(context.Background()); err != nil {
			return err
		}
	}
}

func lingerServerRole(t *testing.T, lc lingerCase) {
	appErr := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, &AcceptOptions{ConnOptions: lingerOptions()})
		if err != nil {
			appErr <- err
			return
		}
		appErr <- readUntilFail(c)
	}))
	defer srv.Close()
	nc, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", key)
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	checkPeerGotClose(t, lc, streamThenRead(nc, br, lc, true))
	checkAppErr(t, lc, <-appErr)
}

func lingerClientRole(t *testing.T, lc lingerCase) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer := make(chan peerResult, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			peer <- peerResult{err: err}
			return
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(20 * time.Second))
		br := bufio.NewReader(nc)
		req, err := http.ReadRequest(br)
		if err != nil {
			peer <- peerResult{err: err}
			return
		}
		fmt.Fprintf(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Accept: %s\r\n\r\n", acceptFor(req.Header.Get("Sec-WebSocket-Key")))
		peer <- streamThenRead(nc, br, lc, false)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := Dial(ctx, "ws://"+ln.Addr().String()+"/", &DialOptions{ConnOptions: lingerOptions()})
	if err != nil {
		t.Fatal(err)
	}
	appErr := readUntilFail(c)
	checkPeerGotClose(t, lc, <-peer)
	checkAppErr(t, lc, appErr)
}

type peerResult struct {
	wrote int64
	code  StatusCode // of the close frame read, 0 if none
	err   error
}

// streamThenRead sends lc's frames (streamSize bytes of payload), then
// reads frames until a close frame, answers it, and reads on until the end,
// which must be an orderly one: a reset tells the close was not clean.
func streamThenRead(nc net.Conn, br *bufio.Reader, lc lingerCase, masked bool) peerResult {
	var res peerResult
	h := lc.first
	buf := make([]byte, chunk)
	copy(buf, lc.opening)
	for res.wrote < streamSize {
		var out []byte
		if h.Length != 0 { // a frame starts
			h.Masked = masked
			if masked {
				rand.Read(h.Key[:])
			}
			out = wire.AppendHeader(nil, h)
		}
		if masked {
			wire.Mask(h.Key, int(res.wrote%chunk), buf)
		}
		if _, err := nc.Write(append(out, buf...)); err != nil {
			res.err = fmt.Errorf("write after %d bytes: %w", res.wrote, err)
			return res
		}
		res.wrote += chunk
		clear(buf)
		switch {
		case lc.next.Length != 0:
			h = lc.next
		default:
			h = wire.Header{}
		}
	}
	for {
		f, err := readRawFrame(br)
		if err != nil {
			res.err = fmt.Errorf("read: %w", err)
			return res
		}
		if f.h.Opcode != wire.OpClose {
			continue
		}
		code, _, _ := wire.ParseClose(f.payload)
		res.code = StatusCode(code)
		ch := wire.Header{Fin: true, Opcode: wire.OpClose, Length: int64(len(f.payload)), Masked: masked}
		p := append([]byte(nil), f.payload...)
		if masked {
			wire.Mask(ch.Key, 0, p)
		}
		nc.Write(append(wire.AppendHeader(nil, ch), p...))
		if _, err := br.ReadByte(); err != io.EOF {
			res.err = fmt.Errorf("after the close frame: %v, want EOF", err)
		}
		return res
	}
}

func checkPeerGotClose(t *testing.T, lc lingerCase, res peerResult) {
	t.Helper()
	if res.code != lc.code || res.err != nil {
		t.Fatalf("peer read close code %d, want %d (wrote %d bytes; %v)", res.code, lc.code, res.wrote, res.err)
	}
}

func checkAppErr(t *testing.T, lc lingerCase, err error) {
	t.Helper()
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != lc.code || ce.Initiator != "local" {
		t.Fatalf("application got %v, want a local close with %d", err, lc.code)
	}
	if !strings.Contains(ce.Reason, "UTF-8") && lc.code == StatusInvalidPayload {
		t.Errorf("reason %q", ce.Reason)
	}
}
