package faults

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherws/tether"
	"github.com/tetherws/tether/internal/serve"
	"github.com/tetherws/tether/internal/wire"
)

// hostile is a server set up as `tether serve` sets up its own (header
// limit, handshake timeout, connection limit), with a handshake timeout of
// 1 s instead of 10 to keep the suite quick.
type hostile struct {
	addr  string
	reg   *tether.Registry
	limit *tether.ConnLimit
}

const hostileHandshakeTimeout = time.Second

func newHostile(t *testing.T, limit *tether.ConnLimit) *hostile {
	t.Helper()
	h := &hostile{reg: tether.NewRegistry(), limit: limit}
	opts := connOptions(h.reg)
	opts.PingInterval, opts.PingTimeout = 0, 0 // the defaults: raw clients answer no pings
	s := &serve.Server{Options: tether.AcceptOptions{ConnOptions: opts, Limit: limit}}
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: hostileHandshakeTimeout, MaxHeaderBytes: 16 << 10,
		ErrorLog: log.New(io.Discard, "", 0)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(ln)
	}()
	t.Cleanup(func() {
		hs.Close()
		<-done
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx, tether.StatusGoingAway, "")
	})
	h.addr = ln.Addr().String()
	return h
}

// echoOnce dials /echo, checks one round trip and closes, returning how
// long the whole took.
func (h *hostile) echoOnce(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := tether.Dial(ctx, "ws://"+h.addr+"/echo", &tether.DialOptions{ConnOptions: tether.ConnOptions{
		Registry: tether.NoRegistry, Logger: quiet}})
	if err != nil {
		t.Fatalf("a normal client: %v", err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, tether.Text, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := c.Read(ctx); err != nil || string(p) != "hello" {
		t.Fatalf("a normal client's echo: %q %v", p, err)
	}
	c.Close(tether.StatusNormal, "")
	return time.Since(start)
}

// heapInuse is the heap in use after a collection.
func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestSlowloris: many connections send their request headers a few bytes
// at a time and never finish. A normal client is served meanwhile, every
// slow one is cut at the handshake timeout, and descriptors and goroutines
// come back.
func TestSlowloris(t *testing.T) {
	n := 1000
	if soak() {
		n = 5000
	}
	fault(t, fmt.Sprint(n), func(t *testing.T) {
		h := newHostile(t, nil)
		var wg sync.WaitGroup
		cut := make(chan time.Duration, n)
		start := time.Now()
		for range n {
			nc, err := net.Dial("tcp", h.addr)
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				defer nc.Close()
				opened := time.Now()
				io.WriteString(nc, "GET /echo HTTP/1.1\r\nHost: x\r\n")
				for i := 0; ; i++ {
					time.Sleep(100 * time.Millisecond)
					if _, err := fmt.Fprintf(nc, "X-%d: y\r\n", i); err != nil {
						break
					}
					if time.Since(opened) > 10*hostileHandshakeTimeout {
						break // never cut
					}
				}
				cut <- time.Since(opened)
			})
		}
		heap := heapInuse()
		t.Logf("%d slowloris connections open after %v; heap %d KiB", n, time.Since(start).Round(time.Millisecond), heap>>10)
		if d := h.echoOnce(t); d > 2*time.Second {
			t.Errorf("a normal client took %v among the slowloris connections", d)
		}
		wg.Wait()
		close(cut)
		var worst time.Duration
		for d := range cut {
			worst = max(worst, d)
		}
		t.Logf("slowest cut after %v (handshake timeout %v)", worst.Round(time.Millisecond), hostileHandshakeTimeout)
		if worst > hostileHandshakeTimeout+2*time.Second {
			t.Errorf("a slowloris connection lasted %v, handshake timeout %v", worst, hostileHandshakeTimeout)
		}
	})
}

// TestHeaderFlood: connections sending 1 MiB of headers each are answered
// 431 after 16 KiB and closed; the server never holds their megabytes. A
// client still writing may see the reset of that close before the 431.
func TestHeaderFlood(t *testing.T) {
	const n = 200
	fault(t, "431", func(t *testing.T) {
		h := newHostile(t, nil)
		before := heapInuse()
		var wg sync.WaitGroup
		statuses := make(chan int, n)
		line := "X-Flood: " + strings.Repeat("a", 1000) + "\r\n"
		for range n {
			wg.Go(func() {
				nc, err := net.Dial("tcp", h.addr)
				if err != nil {
					statuses <- 0
					return
				}
				defer nc.Close()
				nc.SetDeadline(time.Now().Add(10 * time.Second))
				go func() {
					io.WriteString(nc, "GET /echo HTTP/1.1\r\nHost: x\r\n")
					for range 1 << 10 { // 1 MiB of headers
						if _, err := io.WriteString(nc, line); err != nil {
							return
						}
					}
				}()
				resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
				if err != nil {
					statuses <- -1
					return
				}
				statuses <- resp.StatusCode
			})
		}
		wg.Wait()
		close(statuses)
		answered := 0
		for s := range statuses {
			switch s {
			case http.StatusRequestHeaderFieldsTooLarge:
				answered++
			case -1: // reset while still writing: refused all the same
			default:
				t.Fatalf("a flooding connection got %d, want 431", s)
			}
		}
		grew := int64(heapInuse()) - int64(before)
		t.Logf("%d header floods of 1 MiB: %d read their 431, the others a reset; heap grew %d KiB", n, answered, grew>>10)
		if grew > 32<<20 {
			t.Errorf("heap grew %d MiB for %d header floods", grew>>20, n)
		}
		h.echoOnce(t)
	})
}

// rawClient is a hand-driven client on /echo, with the handshake done.
type rawClient struct {
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr, extra string) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	req := strings.Replace(handshake, "GET / ", "GET /echo ", 1)
	req = strings.Replace(req, "\r\n\r\n", "\r\n"+extra+"\r\n", 1)
	if extra == "" {
		req = strings.Replace(handshake, "GET / ", "GET /echo ", 1)
	}
	io.WriteString(nc, req)
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	return &rawClient{nc, br}
}

// frame returns a masked frame.
func frame(fin bool, rsv uint8, op wire.Opcode, p []byte) []byte {
	h := wire.Header{Fin: fin, Rsv: rsv, Opcode: op, Length: int64(len(p)), Masked: true}
	rand.Read(h.Key[:])
	q := append([]byte(nil), p...)
	wire.Mask(h.Key, 0, q)
	return append(wire.AppendHeader(nil, h), q...)
}

// readFrame reads one unmasked frame from the server.
func (c *rawClient) readFrame() (wire.Header, []byte, error) {
	var hb [wire.MaxHeaderSize]byte
	if _, err := io.ReadFull(c.br, hb[:2]); err != nil {
		return wire.Header{}, nil, err
	}
	n := wire.HeaderSize(hb[0], hb[1])
	if _, err := io.ReadFull(c.br, hb[2:n]); err != nil {
		return wire.Header{}, nil, err
	}
	h, _, err := wire.DecodeHeader(hb[:n])
	if err != nil {
		return h, nil, err
	}
	p := make([]byte, h.Length)
	_, err = io.ReadFull(c.br, p)
	return h, p, err
}

// closeCode reads frames until a close frame and returns its code.
func (c *rawClient) closeCode() (uint16, error) {
	for {
		h, p, err := c.readFrame()
		if err != nil {
			return 0, err
		}
		if h.Opcode == wire.OpClose {
			code, _, err := wire.ParseClose(p)
			return code, err
		}
	}
}

// TestControlFloods: a client sends 100,000 pings without reading a single
// pong, or 100,000 unsolicited pongs. The server answers pings with the
// latest pong only (one pending at a time), its heap stays flat, and the
// connection still echoes afterwards.
func TestControlFloods(t *testing.T) {
	for _, op := range []wire.Opcode{wire.OpPing, wire.OpPong} {
		fault(t, op.String(), func(t *testing.T) {
			h := newHostile(t, nil)
			c := dialRaw(t, h.addr, "")
			before := heapInuse()
			f := frame(true, 0, op, []byte("0123456789abcdef"))
			batch := bytes.Repeat(f, 1000)
			start := time.Now()
			for range 100 {
				if _, err := c.nc.Write(batch); err != nil {
					t.Fatalf("flood: %v", err)
				}
			}
			grew := int64(heapInuse()) - int64(before)
			t.Logf("100,000 %ss in %v without reading; heap grew %d KiB", op, time.Since(start).Round(time.Millisecond), grew>>10)
			if grew > 8<<20 {
				t.Errorf("heap grew %d MiB under a %s flood", grew>>20, op)
			}
			c.nc.Write(frame(true, 0, wire.OpText, []byte("still there")))
			for {
				h, p, err := c.readFrame()
				if err != nil {
					t.Fatalf("after the flood: %v", err)
				}
				if h.Opcode == wire.OpText {
					if string(p) != "still there" {
						t.Fatalf("echo %q", p)
					}
					break
				}
			}
		})
	}
}

// TestOneByteFragments: a 1 MiB message (the default read limit) in
// 1,048,576 one-byte fragments is assembled and echoed intact; one byte
// more in the same way is refused with 1009 after 1 MiB, not buffered.
func TestOneByteFragments(t *testing.T) {
	fault(t, "1MiB", func(t *testing.T) {
		h := newHostile(t, nil)
		c := dialRaw(t, h.addr, "")
		msg := make([]byte, tether.DefaultReadLimit)
		rand.Read(msg)
		start := time.Now()
		go func() {
			w := bufio.NewWriterSize(c.nc, 64<<10)
			for i, b := range msg {
				op := wire.OpContinuation
				if i == 0 {
					op = wire.OpBinary
				}
				w.Write(frame(i == len(msg)-1, 0, op, []byte{b}))
			}
			w.Flush()
		}()
		var got []byte
		for {
			hd, p, err := c.readFrame()
			if err != nil {
				t.Fatalf("echo: %v", err)
			}
			got = append(got, p...)
			if hd.Fin && hd.Opcode != wire.OpPing && hd.Opcode != wire.OpPong {
				break
			}
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("echo of %d bytes differs (%d back)", len(msg), len(got))
		}
		t.Logf("1 MiB in 1-byte fragments echoed in %v", time.Since(start).Round(time.Millisecond))
	})
	fault(t, "1MiB+1", func(t *testing.T) {
		h := newHostile(t, nil)
		c := dialRaw(t, h.addr, "")
		go func() {
			w := bufio.NewWriterSize(c.nc, 64<<10)
			for i := range tether.DefaultReadLimit + 1 {
				op := wire.OpContinuation
				if i == 0 {
					op = wire.OpBinary
				}
				if _, err := w.Write(frame(false, 0, op, []byte{1})); err != nil {
					return
				}
			}
			w.Flush()
		}()
		if code, err := c.closeCode(); code != uint16(tether.StatusTooBig) {
			t.Fatalf("close code %d (%v), want 1009", code, err)
		}
	})
}

// TestCompressionBomb: a 16 KiB compressed message that would inflate to
// 16 MiB is refused with 1009 once its output passes the read limit (1 MiB);
// the client reads the close frame.
func TestCompressionBomb(t *testing.T) {
	fault(t, "16MiB", func(t *testing.T) {
		h := newHostile(t, nil)
		c := dialRaw(t, h.addr, "Sec-WebSocket-Extensions: permessage-deflate\r\n")
		var buf bytes.Buffer
		fw, _ := flate.NewWriter(&buf, flate.BestCompression)
		zeros := make([]byte, 1<<20)
		for range 16 {
			fw.Write(zeros)
		}
		fw.Flush()
		bomb := bytes.TrimSuffix(buf.Bytes(), []byte{0, 0, 0xff, 0xff})
		before := heapInuse()
		if _, err := c.nc.Write(frame(true, wire.Rsv1, wire.OpBinary, bomb)); err != nil {
			t.Fatal(err)
		}
		if code, err := c.closeCode(); code != uint16(tether.StatusTooBig) {
			t.Fatalf("close code %d (%v), want 1009", code, err)
		}
		grew := int64(heapInuse()) - int64(before)
		t.Logf("a %d KiB bomb of 16 MiB: 1009; heap grew %d KiB", len(bomb)>>10, grew>>10)
	})
}

// TestOneAddressFlood: one address opens 1,000 connections against a
// per-address limit of 100: 100 are served, the others answered 503 at
// once, and another address is still served.
func TestOneAddressFlood(t *testing.T) {
	const n, per = 1000, 100
	fault(t, fmt.Sprint(n), func(t *testing.T) {
		limit := &tether.ConnLimit{PerHost: per}
		h := newHostile(t, limit)
		var (
			mu       sync.Mutex
			conns    []*tether.Conn
			refusals int
		)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 50)
		for range n {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				c, resp, err := tether.Dial(ctx, "ws://"+h.addr+"/echo", &tether.DialOptions{ConnOptions: tether.ConnOptions{
					Registry: tether.NoRegistry, Logger: quiet, PingInterval: -1}})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					conns = append(conns, c)
				case resp != nil && resp.StatusCode == http.StatusServiceUnavailable:
					refusals++
				default:
					t.Errorf("dial: %v", err)
				}
			})
		}
		wg.Wait()
		if len(conns) != per || refusals != n-per {
			t.Errorf("%d served, %d refused; want %d and %d", len(conns), refusals, per, n-per)
		}
		other := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, _, err := tether.Dial(ctx, "ws://"+h.addr+"/echo", &tether.DialOptions{NetDialContext: other.DialContext,
			ConnOptions: tether.ConnOptions{Registry: tether.NoRegistry, Logger: quiet}})
		if err != nil {
			t.Fatalf("another address: %v", err)
		}
		c.CloseNow()
		for _, c := range conns {
			c.CloseNow()
		}
		eventually(t, "the limit empty", func() bool { return limit.Len() == 0 })
	})
}
