package tether

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/flate"
	"github.com/tetherws/tether/internal/wire"
)

// deflatePair joins a client and a server over a pipe as if p had been
// negotiated, each side compressing with context takeover where p allows.
func deflatePair(t *testing.T, p wire.DeflateParams, readLimit int64) (*Conn, *Conn) {
	t.Helper()
	a, b := net.Pipe()
	opts := ConnOptions{PingInterval: -1, CompressionMode: CompressionContextTakeover, CompressionThreshold: -1,
		ReadLimit: readLimit, Registry: NoRegistry, Logger: discard}
	ccfg, scfg := opts.config(), opts.config()
	ccfg.deflate, scfg.deflate = &p, &p
	cc := newConn(a, nil, wire.Client, ccfg, "", "ws://pipe")
	sc := newConn(b, nil, wire.Server, scfg, "", "/")
	t.Cleanup(func() {
		cc.CloseNow()
		sc.CloseNow()
	})
	return cc, sc
}

// jsonish returns n bytes of JSON-like text that compresses the way real
// messages do.
func jsonish(r *rand.Rand, n int) []byte {
	var b bytes.Buffer
	for b.Len() < n {
		fmt.Fprintf(&b, `{"id":%d,"user":"user-%d","event":"keepalive","rtt_ms":%.2f},`, r.IntN(1e6), r.IntN(50), r.Float64()*20)
	}
	return b.Bytes()[:n]
}

// TestCompressionMatrix is modeled on Autobahn 12.x and 13.x: every
// combination of window bits and takeover modes, messages from 16 B to
// 128 KiB, text and binary, both directions, several in a row so context
// takeover is exercised.
func TestCompressionMatrix(t *testing.T) {
	bits := []int{8, 9, 10, 11, 12, 13, 14, 15}
	if raceEnabled || testing.Short() {
		bits = []int{8, 11, 15}
	}
	sizes := []int{16, 64, 1 << 10, 16 << 10, 128 << 10}
	r := rand.New(rand.NewPCG(1, 2))
	for _, sb := range bits {
		for _, cb := range bits {
			for _, noCtx := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
				p := wire.DeflateParams{ServerMaxWindowBits: sb, ClientMaxWindowBits: cb,
					ServerNoContextTakeover: noCtx[0], ClientNoContextTakeover: noCtx[1]}
				t.Run(p.String(), func(t *testing.T) {
					cc, sc := deflatePair(t, p, 1<<20)
					ctx := context.Background()
					for round := range 2 {
						for i, n := range sizes {
							typ := Text
							if (i+round)%2 == 1 {
								typ = Binary
							}
							msg := jsonish(r, n)
							for _, dir := range [][2]*Conn{{cc, sc}, {sc, cc}} {
								if err := dir[0].Write(ctx, typ, msg); err != nil {
									t.Fatal(err)
								}
								gt, got, err := dir[1].Read(ctx)
								if err != nil {
									t.Fatalf("%s %d bytes: %v", typ, n, err)
								}
								if gt != typ || !bytes.Equal(got, msg) {
									t.Fatalf("%s %d bytes came back as %s %d bytes", typ, n, gt, len(got))
								}
							}
						}
					}
				})
			}
		}
	}
}

// TestCompressionNegotiatedOverHTTP runs the handshake for each mode pair and
// checks what was agreed and that messages flow.
func TestCompressionNegotiatedOverHTTP(t *testing.T) {
	for _, tc := range []struct {
		client, server CompressionMode
		bits           int
		want           string
	}{
		{CompressionDefault, CompressionDefault, 0, "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{CompressionContextTakeover, CompressionContextTakeover, 0, "permessage-deflate"},
		{CompressionContextTakeover, CompressionContextTakeover, 10, "permessage-deflate; server_max_window_bits=10; client_max_window_bits=10"},
		{CompressionContextTakeover, CompressionNoContextTakeover, 0, "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{CompressionDisabled, CompressionContextTakeover, 0, ""},
		{CompressionContextTakeover, CompressionDisabled, 0, ""},
	} {
		t.Run(fmt.Sprintf("%v-%v-%d", tc.client, tc.server, tc.bits), func(t *testing.T) {
			serverExt := make(chan string, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := Accept(w, r, &AcceptOptions{ConnOptions: ConnOptions{CompressionMode: tc.server,
					CompressionWindowBits: tc.bits, PingInterval: -1, Logger: discard, Registry: NoRegistry}})
				if err != nil {
					return
				}
				defer c.CloseNow()
				serverExt <- c.Extensions()
				typ, p, err := c.Read(r.Context())
				if err == nil {
					c.Write(r.Context(), typ, p)
				}
				c.Read(r.Context())
			}))
			defer srv.Close()
			c, resp, err := Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), &DialOptions{
				ConnOptions: ConnOptions{CompressionMode: tc.client, CompressionWindowBits: tc.bits, PingInterval: -1, Logger: discard, Registry: NoRegistry}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if got := c.Extensions(); got != tc.want || resp.Header.Get("Sec-WebSocket-Extensions") != tc.want {
				t.Fatalf("client negotiated %q (header %q), want %q", got, resp.Header.Get("Sec-WebSocket-Extensions"), tc.want)
			}
			if got := <-serverExt; got != tc.want {
				t.Fatalf("server negotiated %q, want %q", got, tc.want)
			}
			msg := bytes.Repeat([]byte("tether "), 500)
			if err := c.Write(context.Background(), Text, msg); err != nil {
				t.Fatal(err)
			}
			if _, got, err := c.Read(context.Background()); err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("echo: %d bytes, %v", len(got), err)
			}
			c.Close(StatusNormal, "")
		})
	}
}

// TestCompressedFramesOnTheWire checks, with a raw peer, that a message above
// the threshold goes out with RSV1 and inflates (with the standard library's
// independent inflater) to the message, and one below goes out plain.
func TestCompressedFramesOnTheWire(t *testing.T) {
	a, b := net.Pipe()
	opts := ConnOptions{PingInterval: -1, Registry: NoRegistry, Logger: discard}
	cfg := opts.config()
	cfg.deflate = &wire.DeflateParams{ServerNoContextTakeover: true, ClientNoContextTakeover: true}
	c := newConn(a, nil, wire.Server, cfg, "", "/")
	defer c.CloseNow()
	peer := newRawPeer(t, b)
	big := bytes.Repeat([]byte("abcdefgh"), 100)
	c.Write(context.Background(), Text, big)
	h, payload := peer.readFrame()
	if h.Rsv != wire.Rsv1 || len(payload) >= len(big) {
		t.Fatalf("big message: rsv %#x, %d bytes on the wire", h.Rsv, len(payload))
	}
	var out bytes.Buffer
	fr := flate.NewReader(bytes.NewReader(append(payload, 0, 0, 0xff, 0xff)))
	out.ReadFrom(fr)
	if !bytes.Equal(out.Bytes(), big) {
		t.Fatalf("inflated to %d bytes, want the message", out.Len())
	}
	c.Write(context.Background(), Text, []byte("tiny"))
	if h, payload := peer.readFrame(); h.Rsv != 0 || string(payload) != "tiny" {
		t.Fatalf("small message: rsv %#x payload %q", h.Rsv, payload)
	}
}

// TestInflateBomb: a compressed message well inside ReadLimit that would
// inflate to 1 GiB ends the connection with 1009, and memory stays bounded
// by ReadLimit, not by what the bomb promises.
func TestInflateBomb(t *testing.T) {
	// 64 MiB of zeros, sync-flushed, repeated 16 times: a valid stream of
	// 1 GiB in about 1 MiB of compressed bytes.
	var chunk bytes.Buffer
	fw, _ := flate.NewWriter(&chunk, flate.BestCompression)
	fw.Write(make([]byte, 64<<20))
	fw.Flush()
	bomb := bytes.Repeat(chunk.Bytes(), 16)
	bomb = bomb[:len(bomb)-4]

	// And a small one: a 1 KiB-ish frame that inflates to about 1 MiB.
	var small bytes.Buffer
	fw.Reset(&small)
	fw.Write(make([]byte, 1<<20))
	fw.Flush()
	smallBomb := small.Bytes()[:small.Len()-4]

	for _, tc := range []struct {
		name      string
		payload   []byte
		readLimit int64
	}{
		{"1GiB-in-1MiB", bomb, 2 << 20},
		{"1MiB-in-1KiB", smallBomb, 64 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := net.Pipe()
			opts := ConnOptions{PingInterval: -1, ReadLimit: tc.readLimit, Registry: NoRegistry, Logger: discard}
			cfg := opts.config()
			cfg.deflate = &wire.DeflateParams{}
			c := newConn(a, nil, wire.Client, cfg, "", "ws://pipe")
			defer c.CloseNow()
			peer := newRawPeer(t, b)
			var before runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			frame := wire.AppendHeader(nil, wire.Header{Fin: true, Rsv: wire.Rsv1, Opcode: wire.OpBinary, Length: int64(len(tc.payload))})
			go b.Write(append(frame, tc.payload...))
			_, _, err := c.Read(context.Background())
			var ce *CloseError
			if !errors.As(err, &ce) || ce.Code != StatusTooBig {
				t.Fatalf("Read = %v, want close 1009", err)
			}
			h, p := peer.readFrame()
			if code, _, _ := wire.ParseClose(p); h.Opcode != wire.OpClose || code != 1009 {
				t.Fatalf("peer got %v %d, want CLOSE 1009", h.Opcode, code)
			}
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if grew := int64(after.TotalAlloc - before.TotalAlloc); grew > 8*tc.readLimit+int64(len(tc.payload))*2+(8<<20) {
				t.Fatalf("allocated %d MiB for a bomb refused at %d bytes", grew>>20, tc.readLimit)
			}
		})
	}
}

// TestCompressionLevelOption: ConnOptions.CompressionLevel reaches the
// compressor (the fastest level by default), and messages at each level
// come through.
func TestCompressionLevelOption(t *testing.T) {
	for _, tc := range []struct{ option, want int }{{0, 1}, {1, 1}, {6, 6}, {9, 9}, {42, 1}} {
		a, b := net.Pipe()
		p := wire.DeflateParams{ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}
		opts := ConnOptions{PingInterval: -1, CompressionThreshold: -1, CompressionLevel: tc.option, Registry: NoRegistry, Logger: discard}
		ccfg, scfg := opts.config(), opts.config()
		ccfg.deflate, scfg.deflate = &p, &p
		cc := newConn(a, nil, wire.Client, ccfg, "", "ws://pipe")
		sc := newConn(b, nil, wire.Server, scfg, "", "/")
		if got := sc.deflate.comp.Level; got != tc.want {
			t.Errorf("CompressionLevel %d: compressor at level %d, want %d", tc.option, got, tc.want)
		}
		msg := jsonish(rand.New(rand.NewPCG(5, 6)), 4096)
		if err := sc.Write(context.Background(), Text, msg); err != nil {
			t.Fatal(err)
		}
		if _, got, err := cc.Read(context.Background()); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("level %d: %d bytes back, %v", tc.option, len(got), err)
		}
		cc.CloseNow()
		sc.CloseNow()
	}
}
