package wire

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"testing"
	"unicode/utf8"
)

func FuzzDecodeHeader(f *testing.F) {
	for _, s := range []string{
		"1000 0001  0 0000101",
		"1000 0001  1 0000101  00110111 11111010 00100001 00111101",
		"1000 0010  0 1111110  00000001 00000000",
		"1000 0010  1 1111111  00000000 00000000 00000000 00000001 00000000 00000000 00000000 00000000  00000001 00000010 00000011 00000100",
		"1000 0010  0 1111111  10000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000",
		"1000 0001  0 1111110  00000000 00000101",
		"1111 1111  1 1111110  11111111",
	} {
		f.Add(bits(s))
	}
	f.Add([]byte{})
	f.Add([]byte{0x81})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, n, err := DecodeHeader(data)
		if err != nil {
			if n != 0 {
				t.Fatalf("error %v with n = %d", err, n)
			}
			if errors.Is(err, ErrShortHeader) {
				if len(data) >= 2 && len(data) >= HeaderSize(data[0], data[1]) {
					t.Fatalf("ErrShortHeader for %d bytes, header needs %d", len(data), HeaderSize(data[0], data[1]))
				}
				return
			}
			wantProtocolError(t, err, CloseProtocolError)
			if data[1]&0x7f != 127 || data[2]&0x80 == 0 {
				t.Fatalf("protocol error %v for a header without a 64-bit length MSB", err)
			}
			return
		}
		if n != HeaderSize(data[0], data[1]) || n > len(data) || n > MaxHeaderSize {
			t.Fatalf("n = %d for %d bytes, HeaderSize %d", n, len(data), HeaderSize(data[0], data[1]))
		}
		if h.Length < 0 {
			t.Fatalf("negative length %d", h.Length)
		}
		if !h.Masked && h.Key != ([4]byte{}) {
			t.Fatalf("unmasked header with key % x", h.Key)
		}
		enc := AppendHeader(nil, h)
		if len(enc) > n {
			t.Fatalf("re-encoding is %d bytes, longer than the %d decoded", len(enc), n)
		}
		h2, n2, err := DecodeHeader(enc)
		if err != nil || h2 != h || n2 != len(enc) {
			t.Fatalf("re-decode = %+v, %d, %v; want %+v, %d", h2, n2, err, h, len(enc))
		}
		// A minimal length encoding re-encodes to the very same bytes.
		minimal := false
		switch data[1] & 0x7f {
		case 126:
			minimal = h.Length > 125
		case 127:
			minimal = h.Length > 0xffff
		default:
			minimal = true
		}
		if minimal != (len(enc) == n) {
			t.Fatalf("minimal=%t but re-encoding is %d bytes for %d", minimal, len(enc), n)
		}
		if minimal && !bytes.Equal(enc, data[:n]) {
			t.Fatalf("re-encoding % x differs from % x", enc, data[:n])
		}
	})
}

func FuzzReaderNext(f *testing.F) {
	frames := func(ss ...string) []byte {
		var b []byte
		for _, s := range ss {
			b = append(b, s...)
		}
		return b
	}
	// The first byte holds options (bit 0: AllowRsv1); the rest is frames.
	f.Add(frames("\x00", "\x81\x05Hello"))
	f.Add(frames("\x00", "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"))
	f.Add(frames("\x00", "\x01\x03Hel", "\x89\x00", "\x80\x02lo"))
	f.Add(frames("\x00", "\x01\x83abcdabc", "\x89\x80abcd", "\x80\x82abcdab"))
	f.Add(frames("\x01", "\xc1\x05Hello", "\x41\x01x", "\xc0\x01y"))
	f.Add(frames("\x00", "\x80\x00"))
	f.Add(frames("\x00", "\x09\x00"))
	f.Add(frames("\x00", "\x83\x00", "\x8b\x00"))
	f.Add(frames("\x00", "\x89\x7e\x00\x7e"))
	f.Add(frames("\x00", "\x88\x02\x03\xe8", "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		allowRsv1 := data[0]&1 != 0
		data = data[1:]
		readers := []*Reader{{Role: Server, AllowRsv1: allowRsv1}, {Role: Client, AllowRsv1: allowRsv1}}
		for frames := 0; len(data) > 0 && frames < 64; frames++ {
			h, n, err := DecodeHeader(data)
			if err != nil {
				return
			}
			data = data[n:]
			data = data[min(int64(len(data)), h.Length):]
			for _, r := range readers {
				before := r.InMessage()
				op, err := r.Next(h)
				if err != nil {
					wantProtocolError(t, err, CloseProtocolError)
					if op != 0 {
						t.Fatalf("%v: opcode %v with error", r.Role, op)
					}
					if r.InMessage() != before {
						t.Fatalf("%v: error changed InMessage", r.Role)
					}
					continue
				}
				if op.IsReserved() || op == OpContinuation {
					t.Fatalf("%v: Next returned %v for %v", r.Role, op, h)
				}
				if h.Opcode.IsReserved() || h.Masked != (r.Role == Server) || h.Rsv&(Rsv2|Rsv3) != 0 {
					t.Fatalf("%v: accepted %v", r.Role, h)
				}
				if h.Opcode.IsControl() {
					if op != h.Opcode || !h.Fin || h.Rsv != 0 || h.Length > MaxControlPayload {
						t.Fatalf("%v: accepted control frame %v as %v", r.Role, h, op)
					}
					if r.InMessage() != before {
						t.Fatalf("%v: control frame changed InMessage", r.Role)
					}
					continue
				}
				if h.Opcode == OpContinuation {
					if !before || h.Rsv != 0 {
						t.Fatalf("%v: accepted continuation %v (in message: %t)", r.Role, h, before)
					}
				} else {
					if before || op != h.Opcode || (h.Rsv != 0 && !allowRsv1) {
						t.Fatalf("%v: accepted %v as %v (in message: %t)", r.Role, h, op, before)
					}
				}
				if r.InMessage() != !h.Fin {
					t.Fatalf("%v: InMessage() = %t after %v", r.Role, r.InMessage(), h)
				}
			}
		}
	})
}

func FuzzUTF8(f *testing.F) {
	f.Add([]byte("Hello"), uint(2))
	f.Add([]byte("κόσμε"), uint(4))
	f.Add([]byte("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80edited"), uint(12))
	f.Add([]byte("\xf4\x90\x80\x80"), uint(2))
	f.Add([]byte("\xed\xa0\x80"), uint(1))
	f.Add([]byte("\xc0\x80"), uint(1))
	f.Add([]byte("\xf0\x9f\x98\x80"), uint(3))
	f.Add([]byte("\xe2\x82"), uint(1))
	f.Fuzz(func(t *testing.T, data []byte, split uint) {
		k := int(split % uint(len(data)+1))
		want := utf8.Valid(data)
		var v UTF8
		first := v.Write(data[:k])
		if first != validPrefixRef(data[:k]) {
			t.Fatalf("Write(%q) = %t, but validPrefix is %t", data[:k], first, !first)
		}
		got := first && v.Write(data[k:]) && v.Complete()
		if got != want {
			t.Fatalf("%q split at %d: got %t, utf8.Valid %t", data, k, got, want)
		}
		// Byte by byte, Write fails exactly when the prefix stops being
		// completable.
		if len(data) > 64 {
			return
		}
		v.Reset()
		for i := range data {
			ok := v.Write(data[i : i+1])
			if ok != validPrefixRef(data[:i+1]) {
				t.Fatalf("%q byte %d: Write = %t", data, i, ok)
			}
			if !ok {
				return
			}
		}
		if v.Complete() != want {
			t.Fatalf("%q byte by byte: Complete() = %t, utf8.Valid %t", data, v.Complete(), want)
		}
	})
}

func FuzzParseClose(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x03})
	f.Add([]byte{0x03, 0xe8})
	f.Add([]byte("\x03\xe9going away"))
	f.Add([]byte("\x03\xed"))
	f.Add([]byte("\x03\xe8\xff"))
	f.Add([]byte("\x0f\xa0κόσμε"))
	f.Fuzz(func(t *testing.T, data []byte) {
		code, reason, err := ParseClose(data)
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *ProtocolError", err, err)
			}
			switch pe.Code {
			case CloseProtocolError:
				if len(data) >= 2 && len(data) <= MaxControlPayload && ValidCloseCode(uint16(data[0])<<8|uint16(data[1])) {
					t.Fatalf("1002 for a valid code: %v", err)
				}
			case CloseInvalidPayload:
				if utf8.Valid(data[2:]) {
					t.Fatalf("1007 for a valid reason: %v", err)
				}
			default:
				t.Fatalf("unexpected close code in %v", err)
			}
			return
		}
		if len(data) == 0 {
			if code != CloseNoStatus || reason != "" {
				t.Fatalf("empty payload: %d, %q", code, reason)
			}
		} else if !ValidCloseCode(code) || !utf8.ValidString(reason) || len(data) > MaxControlPayload {
			t.Fatalf("accepted %q as %d, %q", data, code, reason)
		}
		if enc := AppendClose(nil, code, reason); !bytes.Equal(enc, data) {
			t.Fatalf("AppendClose(%d, %q) = % x, want % x", code, reason, enc, data)
		}
	})
}

const fuzzRequest = "GET /chat HTTP/1.1\r\n" +
	"Host: server.example.com\r\n" +
	"Upgrade: websocket\r\n" +
	"Connection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
	"Origin: http://example.com\r\n" +
	"Sec-WebSocket-Protocol: chat, superchat\r\n" +
	"Sec-WebSocket-Version: 13\r\n\r\n"

func FuzzHandshakeRequest(f *testing.F) {
	f.Add([]byte(fuzzRequest))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 8\r\n\r\n"))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			return
		}
		key, herr := CheckRequest(req.Method, req.Header)
		if herr != nil {
			if herr.Status != http.StatusBadRequest && herr.Status != http.StatusUpgradeRequired {
				t.Fatalf("status %d: %v", herr.Status, herr)
			}
			if key != "" {
				t.Fatalf("key %q returned with %v", key, herr)
			}
			return
		}
		if !ValidKey(key) {
			t.Fatalf("accepted invalid key %q", key)
		}
		if req.Method != http.MethodGet || !HasToken(req.Header, "Upgrade", "websocket") ||
			!HasToken(req.Header, "Connection", "Upgrade") || req.Header.Get("Sec-WebSocket-Version") != "13" {
			t.Fatalf("accepted %q", data)
		}
		if a := AcceptKey(key); len(a) != 28 {
			t.Fatalf("AcceptKey(%q) = %q", key, a)
		}
	})
}

const fuzzResponse = "HTTP/1.1 101 Switching Protocols\r\n" +
	"Upgrade: websocket\r\n" +
	"Connection: Upgrade\r\n" +
	"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" +
	"Sec-WebSocket-Protocol: chat\r\n\r\n"

func FuzzHandshakeResponse(f *testing.F) {
	f.Add([]byte(fuzzResponse))
	f.Add([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	offered := []string{"chat", "superchat"}
	f.Fuzz(func(t *testing.T, data []byte) {
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), nil)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		err = CheckResponse(resp.StatusCode, resp.Header, rfcKey, offered)
		if err != nil {
			var herr *HandshakeError
			if !errors.As(err, &herr) {
				t.Fatalf("error %v (%T) is not a *HandshakeError", err, err)
			}
			return
		}
		if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != rfcAccept {
			t.Fatalf("accepted %q", data)
		}
		if sp := resp.Header.Values("Sec-WebSocket-Protocol"); len(sp) > 1 || (len(sp) == 1 && sp[0] != "chat" && sp[0] != "superchat") {
			t.Fatalf("accepted subprotocol %q", sp)
		}
	})
}
