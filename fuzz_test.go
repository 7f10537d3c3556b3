package tether

import (
	"context"
	"net"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tetherws/tether/internal/wire"
)

// fuzzConnSeeds adds the seed inputs of the connection fuzz targets:
// masked client frames, whole and fragmented, compressed, control frames,
// bad UTF-8 and an unmasked frame.
func fuzzConnSeeds(f *testing.F) {
	masked := func(op wire.Opcode, rsv uint8, fin bool, p []byte) []byte {
		key := [4]byte{1, 2, 3, 4}
		b := wire.AppendHeader(nil, wire.Header{Fin: fin, Rsv: rsv, Opcode: op, Masked: true, Key: key, Length: int64(len(p))})
		q := append([]byte(nil), p...)
		wire.Mask(key, 0, q)
		return append(b, q...)
	}
	f.Add(masked(wire.OpText, 0, true, []byte("hello")))
	f.Add(append(masked(wire.OpText, 0, false, []byte("hel")), masked(wire.OpContinuation, 0, true, []byte("lo"))...))
	f.Add(masked(wire.OpBinary, wire.Rsv1, true, []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}))
	f.Add(masked(wire.OpPing, 0, true, []byte("ping")))
	f.Add(masked(wire.OpClose, 0, true, []byte{0x03, 0xe8, 'b', 'y', 'e'}))
	f.Add(masked(wire.OpText, 0, true, []byte{0xce, 0xba, 0xe1, 0xbd}))
	f.Add([]byte{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'})
}

// fuzzConn returns a server connection (compression negotiated, so RSV1
// and inflation are exercised) that reads in.
func fuzzConn(in []byte) *Conn {
	a, b := net.Pipe()
	opts := ConnOptions{PingInterval: -1, ReadLimit: 1 << 16, CloseTimeout: time.Second,
		CompressionMode: CompressionContextTakeover, Registry: NoRegistry, Logger: discard}
	cfg := opts.config()
	cfg.deflate = &wire.DeflateParams{}
	c := newConn(a, nil, wire.Server, cfg, "", "/")
	go func() {
		b.Write(in)
		b.Close()
	}()
	return c
}

// checkFuzzEnd fails when c ended with a close code outside the protocol's
// list.
func checkFuzzEnd(t *testing.T, c *Conn) {
	t.Helper()
	code := CloseStatus(c.Err())
	switch code {
	case StatusNormal, StatusProtocolError, StatusInvalidPayload, StatusTooBig, StatusAbnormal, StatusNoStatus:
	default:
		if code < 1000 || (code >= 1016 && code < 3000) || code >= 5000 {
			t.Fatalf("ended with close code %d", code)
		}
	}
}

// FuzzConnRead feeds arbitrary bytes to a server connection read with Read
// and checks that it ends cleanly: no panic, no hang, and a close code from
// the protocol's list when it fails the connection.
func FuzzConnRead(f *testing.F) {
	fuzzConnSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		c := fuzzConn(in)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for {
			if _, _, err := c.Read(ctx); err != nil {
				if ctx.Err() != nil {
					t.Fatal("connection did not end after its input")
				}
				break
			}
		}
		c.CloseNow()
		checkFuzzEnd(t, c)
	})
}

// FuzzConnServe is FuzzConnRead through Serve: the messages go to handle
// on the reader goroutine, in pooled buffers. Text messages must be valid
// UTF-8 when handle sees them.
func FuzzConnServe(f *testing.F) {
	fuzzConnSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		c := fuzzConn(in)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := c.Serve(ctx, func(typ MessageType, p []byte) error {
			if typ == Text && !utf8.Valid(p) {
				t.Errorf("handle got invalid UTF-8 %q", p)
			}
			return nil
		})
		if ctx.Err() != nil {
			t.Fatalf("connection did not end after its input: %v", err)
		}
		c.CloseNow()
		checkFuzzEnd(t, c)
	})
}
