package loadgen

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherws/tether/internal/bufpool"
	"github.com/tetherws/tether/internal/deflate"
	"github.com/tetherws/tether/internal/wire"
)

// wsConn is the raw-frame client: just enough WebSocket to drive a server
// hard while spending little CPU of its own. Writes are serialized by wmu
// (a pong may leave while a message is being written elsewhere); reads
// belong to one goroutine at a time.
type wsConn struct {
	nc  net.Conn
	br  *bufio.Reader
	key [4]byte // masking key, fixed for the connection

	wmu       sync.Mutex
	wbuf      []byte
	closeSent bool        // under wmu
	initiated atomic.Bool // we sent the first close frame

	flate     *flateState // nil without permessage-deflate
	msg       []byte      // the message being read; valid until the next read
	inflated  *[]byte     // pooled buffer msg points into after inflating
	ext       string      // negotiated Sec-WebSocket-Extensions
	pings     atomic.Int64
	counted   *run // counts the pings of the measured window, when set
	closeCode int  // the code of the server's close frame, once read
}

// flateState is the client's side of permessage-deflate: it compresses
// without context takeover (always allowed) and inflates with the server's
// window when the server keeps one.
type flateState struct {
	sendBits int
	decomp   *deflate.Decompressor
}

// CloseError is a connection the server ended: Code is its close code, or
// 1006 when the connection dropped without a close frame.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("close %d %s", e.Code, e.Reason)
	}
	return fmt.Sprintf("close %d", e.Code)
}

// HandshakeError is an opening handshake the server refused or got wrong.
type HandshakeError struct {
	Status int
	Reason string
}

func (e *HandshakeError) Error() string {
	if e.Status != 0 && e.Status != http.StatusSwitchingProtocols {
		return fmt.Sprintf("handshake: HTTP %d", e.Status)
	}
	return "handshake: " + e.Reason
}

// deflateOffer is what a browser offers: the server may choose context
// takeover or not, and may limit our window.
var deflateOffer = wire.DeflateParams{ClientMaxWindowBits: -1}

// dial opens a connection to t and runs the opening handshake.
func dial(ctx context.Context, t *target, cfg *Config) (*wsConn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	if t.tls {
		tc := tls.Client(nc, &tls.Config{ServerName: t.url.Hostname(), InsecureSkipVerify: cfg.Insecure, NextProtos: []string{"http/1.1"}})
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("tls: %w", err)
		}
		nc = tc
	}
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	c, err := handshake(nc, t, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return c, nil
}

func handshake(nc net.Conn, t *target, cfg *Config) (*wsConn, error) {
	var raw [16]byte
	rand.Read(raw[:])
	key := base64.StdEncoding.EncodeToString(raw[:])
	var b strings.Builder
	b.WriteString("GET " + t.request + " HTTP/1.1\r\nHost: " + t.hostHdr +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
		"\r\nSec-WebSocket-Version: 13\r\n")
	if cfg.Compression {
		b.WriteString("Sec-WebSocket-Extensions: " + deflateOffer.String() + "\r\n")
	}
	for k, vs := range cfg.Header {
		for _, v := range vs {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(nc, b.String()); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(nc, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if err := wire.CheckResponse(resp.StatusCode, resp.Header, key, nil); err != nil {
		return nil, &HandshakeError{Status: resp.StatusCode, Reason: err.Error()}
	}
	c := &wsConn{nc: nc, br: br}
	rand.Read(c.key[:])
	if err := c.negotiated(resp.Header); err != nil {
		return nil, &HandshakeError{Status: resp.StatusCode, Reason: err.Error()}
	}
	return c, nil
}

// negotiated sets up compression from the server's answer.
func (c *wsConn) negotiated(h http.Header) error {
	exts, err := wire.ParseExtensions(h.Values("Sec-WebSocket-Extensions"))
	if err != nil || len(exts) == 0 {
		return err
	}
	if len(exts) > 1 || exts[0].Name != wire.DeflateName {
		return errors.New("server chose an extension that was not offered")
	}
	p, err := wire.CheckDeflateResponse(exts[0], deflateOffer)
	if err != nil {
		return err
	}
	sendBits, recvBits := p.ClientMaxWindowBits, p.ServerMaxWindowBits
	if sendBits <= 0 {
		sendBits = 15
	}
	if recvBits <= 0 {
		recvBits = 15
	}
	c.flate = &flateState{sendBits: sendBits, decomp: deflate.NewDecompressor(recvBits, !p.ServerNoContextTakeover)}
	c.ext = p.String()
	return nil
}

// dataFrame returns the frame for a data message with payload p, masked
// with the connection's key, compressed when compression was negotiated.
// Sending the same frame again is valid: a client need not use context
// takeover, so each message compresses alone.
func (c *wsConn) dataFrame(op wire.Opcode, p []byte) ([]byte, error) {
	rsv := uint8(0)
	if c.flate != nil {
		out := bufpool.Get(len(p)/2 + 64)
		defer bufpool.Put(out)
		if err := deflate.CompressOnce(out, p, c.flate.sendBits, 0); err != nil {
			return nil, err
		}
		p, rsv = *out, wire.Rsv1
	}
	return c.appendFrame(nil, op, rsv, p), nil
}

func (c *wsConn) appendFrame(dst []byte, op wire.Opcode, rsv uint8, p []byte) []byte {
	h := wire.Header{Fin: true, Rsv: rsv, Opcode: op, Masked: true, Key: c.key, Length: int64(len(p))}
	dst = wire.AppendHeader(dst, h)
	start := len(dst)
	dst = append(dst, p...)
	wire.Mask(c.key, 0, dst[start:])
	return dst
}

// writeRaw sends a frame built by dataFrame.
func (c *wsConn) writeRaw(frame []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return net.ErrClosed
	}
	_, err := c.nc.Write(frame)
	return err
}

// writeControl sends a control frame.
func (c *wsConn) writeControl(op wire.Opcode, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return nil
	}
	if op == wire.OpClose {
		c.closeSent = true
	}
	c.wbuf = c.appendFrame(c.wbuf[:0], op, 0, p)
	_, err := c.nc.Write(c.wbuf)
	return err
}

// sendClose starts the closing handshake with code, unless a close frame
// went out already.
func (c *wsConn) sendClose(code int) error {
	c.wmu.Lock()
	sent := c.closeSent
	c.wmu.Unlock()
	if sent {
		return net.ErrClosed
	}
	c.initiated.Store(true)
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], uint16(code))
	return c.writeControl(wire.OpClose, p[:])
}

// readMessage returns the next data message, answering pings on the way. The
// payload is valid until the next call. When the server closes, it answers
// the close frame and returns a *CloseError.
func (c *wsConn) readMessage() (wire.Opcode, []byte, error) {
	var (
		op         wire.Opcode
		compressed bool
		inMessage  bool
	)
	c.msg = c.msg[:0]
	if c.inflated != nil {
		bufpool.Put(c.inflated)
		c.inflated = nil
	}
	for {
		h, err := c.readHeader()
		if err != nil {
			return 0, nil, c.readErr(err)
		}
		if h.Opcode.IsControl() {
			if h.Length > wire.MaxControlPayload {
				return 0, nil, &CloseError{Code: 1002, Reason: "control frame too long"}
			}
			var buf [wire.MaxControlPayload]byte
			p := buf[:h.Length]
			if _, err := io.ReadFull(c.br, p); err != nil {
				return 0, nil, c.readErr(err)
			}
			if err := c.control(h.Opcode, p); err != nil {
				return 0, nil, err
			}
			continue
		}
		if !inMessage {
			if h.Opcode == wire.OpContinuation {
				return 0, nil, &CloseError{Code: 1002, Reason: "continuation without a message"}
			}
			op, compressed, inMessage = h.Opcode, h.Rsv&wire.Rsv1 != 0, true
		}
		start := len(c.msg)
		if need := start + int(h.Length); need > cap(c.msg) {
			c.msg = append(c.msg[:start], make([]byte, need-start)...)
		}
		c.msg = c.msg[:start+int(h.Length)]
		if _, err := io.ReadFull(c.br, c.msg[start:]); err != nil {
			return 0, nil, c.readErr(err)
		}
		if h.Masked {
			wire.Mask(h.Key, 0, c.msg[start:])
		}
		if !h.Fin {
			continue
		}
		if compressed {
			if c.flate == nil {
				return 0, nil, &CloseError{Code: 1002, Reason: "compressed message without compression"}
			}
			if cap(c.msg)-len(c.msg) < 16 {
				c.msg = append(c.msg, make([]byte, 16)...)[:len(c.msg)]
			}
			out, err := c.flate.decomp.Decompress(c.msg, 1<<30)
			if err != nil {
				return 0, nil, &CloseError{Code: 1007, Reason: "bad compressed data"}
			}
			c.inflated = out
			return op, *out, nil
		}
		return op, c.msg, nil
	}
}

func (c *wsConn) readHeader() (wire.Header, error) {
	b, err := c.br.Peek(2)
	if err != nil {
		return wire.Header{}, err
	}
	n := wire.HeaderSize(b[0], b[1])
	if b, err = c.br.Peek(n); err != nil {
		return wire.Header{}, err
	}
	h, _, err := wire.DecodeHeader(b)
	c.br.Discard(n)
	return h, err
}

// control handles a control frame; it returns a *CloseError for a close.
func (c *wsConn) control(op wire.Opcode, p []byte) error {
	switch op {
	case wire.OpPing:
		c.pings.Add(1)
		if r := c.counted; r != nil && r.measuring.Load() {
			r.windowPings.Add(1)
		}
		return c.writeControl(wire.OpPong, p)
	case wire.OpClose:
		code := 1005
		reason := ""
		if len(p) >= 2 {
			code = int(binary.BigEndian.Uint16(p))
			reason = string(p[2:])
		}
		c.closeCode = code
		c.writeControl(wire.OpClose, p[:min(len(p), 2)])
		return &CloseError{Code: code, Reason: reason}
	}
	return nil // pongs are not asked for
}

// readErr turns a read error into a 1006 CloseError unless it is our own
// doing (a deadline at the end of a run, or a closed socket).
func (c *wsConn) readErr(err error) error {
	if errors.Is(err, net.ErrClosed) || errors.Is(err, errDeadline) {
		return err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errDeadline
	}
	return &CloseError{Code: 1006, Reason: "connection lost"}
}

var errDeadline = errors.New("deadline")

// shutdown sends a close frame (1000) unless one was exchanged, waits up to
// the read deadline for the server's, and closes the socket. It is for
// connections whose reader has stopped.
func (c *wsConn) shutdown() {
	if c.closeCode == 0 {
		if c.sendClose(1000) == nil {
			for {
				if _, _, err := c.readMessage(); err != nil {
					break
				}
			}
		}
	}
	c.nc.Close()
	if c.inflated != nil {
		bufpool.Put(c.inflated)
		c.inflated = nil
	}
}
