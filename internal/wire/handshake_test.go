package wire

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// rfcKey and rfcAccept are the example of RFC 6455 section 1.3, whose SHA-1
// is b3 7a 4f 2c c0 62 4f 16 90 f6 46 06 cf 38 59 45 b2 be c4 ea.
const (
	rfcKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	rfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

func TestAcceptKey(t *testing.T) {
	if got := AcceptKey(rfcKey); got != rfcAccept {
		t.Errorf("AcceptKey(%q) = %q, want %q", rfcKey, got, rfcAccept)
	}
	sum, err := base64.StdEncoding.DecodeString(AcceptKey(rfcKey))
	want := []byte{0xb3, 0x7a, 0x4f, 0x2c, 0xc0, 0x62, 0x4f, 0x16, 0x90, 0xf6, 0x46, 0x06, 0xcf, 0x38, 0x59, 0x45, 0xb2, 0xbe, 0xc4, 0xea}
	if err != nil || !bytes.Equal(sum, want) {
		t.Errorf("AcceptKey(%q) decodes to % x, %v; want the RFC's SHA-1 % x", rfcKey, sum, err, want)
	}
	// Another known pair (from the Autobahn/browser handshakes).
	if got, want := AcceptKey("x3JJHMbDL1EzLkh9GBhXDw=="), "HSmrc0sMlYUkAGmm5OPpG2HaGWk="; got != want {
		t.Errorf("AcceptKey = %q, want %q", got, want)
	}
}

func TestValidKey(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want bool
	}{
		{rfcKey, true},
		{"AAAAAAAAAAAAAAAAAAAAAA==", true},
		{"/////////////////////w==", true},
		{"", false},
		{"dGhlIHNhbXBsZSBub25jZQ", false},       // no padding
		{"AAAAAAAAAAAAAAAAAAAA", false},         // 15 bytes
		{"AAAAAAAAAAAAAAAAAAAAAAA=", false},     // 17 bytes, also 24 chars
		{"AAAAAAAAAAAAAAAAAAAAAAAA", false},     // 18 bytes, 24 chars
		{"AAAAAAAAAAAAAAAAAAAAAAAAAAA=", false}, // 20 bytes
		{"!!!!!!!!!!!!!!!!!!!!!!==", false},     // not base64
		{"________________________", false},     // URL alphabet, 18 bytes
		{"____________________-w==", false},     // URL alphabet, 16 bytes
		{" dGhlIHNhbXBsZSBub25jZQ=", false},
		// encoding/base64 skips \r and \n, so only the length check stops
		// these from decoding to 16 bytes.
		{"dGhlIHNhbXBsZSBub25jZQ==\n", false},
		{"dGhlIHNhbXBs\r\nZSBub25jZQ==", false},
	} {
		if got := ValidKey(tc.key); got != tc.want {
			t.Errorf("ValidKey(%q) = %t, want %t", tc.key, got, tc.want)
		}
	}
}

func goodRequestHeader() http.Header {
	return http.Header{
		"Host":                   {"server.example.com"},
		"Upgrade":                {"websocket"},
		"Connection":             {"Upgrade"},
		"Sec-Websocket-Key":      {rfcKey},
		"Sec-Websocket-Version":  {"13"},
		"Sec-Websocket-Protocol": {"chat, superchat"},
		"Origin":                 {"http://example.com"},
	}
}

func TestCheckRequest(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method string
		edit   func(h http.Header)
		status int // 0: accepted
	}{
		{name: "good", edit: func(http.Header) {}},
		{name: "POST", method: http.MethodPost, edit: func(http.Header) {}, status: 400},
		{name: "lowercase get", method: "get", edit: func(http.Header) {}, status: 400},
		{name: "missing Upgrade", edit: func(h http.Header) { h.Del("Upgrade") }, status: 400},
		{name: "Upgrade h2c", edit: func(h http.Header) { h.Set("Upgrade", "h2c") }, status: 400},
		{name: "Upgrade WebSocket", edit: func(h http.Header) { h.Set("Upgrade", "WebSocket") }},
		{name: "Upgrade list", edit: func(h http.Header) { h.Set("Upgrade", "foo/1, websocket") }},
		{name: "Upgrade websocket2", edit: func(h http.Header) { h.Set("Upgrade", "websocket2") }, status: 400},
		{name: "missing Connection", edit: func(h http.Header) { h.Del("Connection") }, status: 400},
		{name: "Connection keep-alive", edit: func(h http.Header) { h.Set("Connection", "keep-alive") }, status: 400},
		{name: "Connection keep-alive, Upgrade", edit: func(h http.Header) { h.Set("Connection", "keep-alive, Upgrade") }},
		{name: "Connection UPGRADE", edit: func(h http.Header) { h.Set("Connection", "UPGRADE") }},
		{name: "Connection on two lines", edit: func(h http.Header) { h["Connection"] = []string{"keep-alive", "upgrade"} }},
		{name: "Connection upgrade-insecure", edit: func(h http.Header) { h.Set("Connection", "upgrade-insecure") }, status: 400},
		{name: "key 15 bytes", edit: func(h http.Header) { h.Set("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA") }, status: 400},
		{name: "key 17 bytes", edit: func(h http.Header) { h.Set("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAAA=") }, status: 400},
		{name: "key not base64", edit: func(h http.Header) { h.Set("Sec-WebSocket-Key", "!!!!!!!!!!!!!!!!!!!!!!==") }, status: 400},
		{name: "missing key", edit: func(h http.Header) { h.Del("Sec-WebSocket-Key") }, status: 400},
		{name: "two keys", edit: func(h http.Header) { h.Add("Sec-WebSocket-Key", rfcKey) }, status: 400},
		{name: "version 8", edit: func(h http.Header) { h.Set("Sec-WebSocket-Version", "8") }, status: 426},
		{name: "missing version", edit: func(h http.Header) { h.Del("Sec-WebSocket-Version") }, status: 426},
		{name: "version list", edit: func(h http.Header) { h.Set("Sec-WebSocket-Version", "13, 8") }, status: 426},
		{name: "two versions", edit: func(h http.Header) { h.Add("Sec-WebSocket-Version", "8") }, status: 426},
		{name: "bad version beats bad key", edit: func(h http.Header) {
			h.Set("Sec-WebSocket-Version", "8")
			h.Del("Sec-WebSocket-Key")
		}, status: 426},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			h := goodRequestHeader()
			tc.edit(h)
			key, herr := CheckRequest(method, h)
			if tc.status == 0 {
				if herr != nil {
					t.Fatalf("CheckRequest: %v", herr)
				}
				if key != rfcKey {
					t.Fatalf("key = %q, want %q", key, rfcKey)
				}
				return
			}
			if herr == nil {
				t.Fatalf("CheckRequest accepted, key %q; want status %d", key, tc.status)
			}
			if herr.Status != tc.status {
				t.Fatalf("status = %d (%v), want %d", herr.Status, herr, tc.status)
			}
			if key != "" || herr.Reason == "" || !strings.HasPrefix(herr.Error(), "websocket handshake: ") {
				t.Fatalf("key %q, error %q", key, herr.Error())
			}
		})
	}
}

func TestCheckRequestWire(t *testing.T) {
	// The client handshake of RFC 6455 section 1.2, as read from the wire.
	const raw = "GET /chat HTTP/1.1\r\n" +
		"Host: server.example.com\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Origin: http://example.com\r\n" +
		"Sec-WebSocket-Protocol: chat, superchat\r\n" +
		"Sec-WebSocket-Version: 13\r\n\r\n"
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	key, herr := CheckRequest(req.Method, req.Header)
	if herr != nil || key != rfcKey {
		t.Fatalf("CheckRequest = %q, %v", key, herr)
	}
	offered := Tokens(req.Header, "Sec-WebSocket-Protocol")
	if !slices.Equal(offered, []string{"chat", "superchat"}) {
		t.Fatalf("offered subprotocols = %q", offered)
	}
	if got := SelectSubprotocol(offered, []string{"superchat", "chat"}); got != "chat" {
		t.Fatalf("SelectSubprotocol = %q, want the client's first choice", got)
	}
}

func goodResponseHeader() http.Header {
	return http.Header{
		"Upgrade":              {"websocket"},
		"Connection":           {"Upgrade"},
		"Sec-Websocket-Accept": {rfcAccept},
	}
}

func TestCheckResponse(t *testing.T) {
	offered := []string{"chat", "superchat"}
	for _, tc := range []struct {
		name    string
		status  int
		edit    func(h http.Header)
		offered []string
		ok      bool
	}{
		{name: "good", edit: func(http.Header) {}, ok: true},
		{name: "good, lower-case tokens", edit: func(h http.Header) {
			h.Set("Upgrade", "WEBSOCKET")
			h.Set("Connection", "keep-alive, upgrade")
		}, ok: true},
		{name: "good with subprotocol", edit: func(h http.Header) { h.Set("Sec-WebSocket-Protocol", "superchat") }, offered: offered, ok: true},
		{name: "status 200", status: 200, edit: func(http.Header) {}},
		{name: "status 400", status: 400, edit: func(http.Header) {}},
		{name: "status 426", status: 426, edit: func(http.Header) {}},
		{name: "missing Upgrade", edit: func(h http.Header) { h.Del("Upgrade") }},
		{name: "Upgrade h2c", edit: func(h http.Header) { h.Set("Upgrade", "h2c") }},
		{name: "missing Connection", edit: func(h http.Header) { h.Del("Connection") }},
		{name: "Connection close", edit: func(h http.Header) { h.Set("Connection", "close") }},
		{name: "wrong accept", edit: func(h http.Header) { h.Set("Sec-WebSocket-Accept", AcceptKey("AAAAAAAAAAAAAAAAAAAAAA==")) }},
		{name: "accept is the key", edit: func(h http.Header) { h.Set("Sec-WebSocket-Accept", rfcKey) }},
		{name: "missing accept", edit: func(h http.Header) { h.Del("Sec-WebSocket-Accept") }},
		{name: "unoffered subprotocol", edit: func(h http.Header) { h.Set("Sec-WebSocket-Protocol", "mqtt") }, offered: offered},
		{name: "subprotocol when none offered", edit: func(h http.Header) { h.Set("Sec-WebSocket-Protocol", "chat") }},
		{name: "two subprotocols", edit: func(h http.Header) {
			h.Add("Sec-WebSocket-Protocol", "chat")
			h.Add("Sec-WebSocket-Protocol", "superchat")
		}, offered: offered},
		{name: "subprotocol list", edit: func(h http.Header) { h.Set("Sec-WebSocket-Protocol", "chat, superchat") }, offered: offered},
		{name: "subprotocol case differs", edit: func(h http.Header) { h.Set("Sec-WebSocket-Protocol", "Chat") }, offered: offered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status := tc.status
			if status == 0 {
				status = http.StatusSwitchingProtocols
			}
			h := goodResponseHeader()
			tc.edit(h)
			err := CheckResponse(status, h, rfcKey, tc.offered)
			if tc.ok {
				if err != nil {
					t.Fatalf("CheckResponse: %v", err)
				}
				return
			}
			var herr *HandshakeError
			if !errors.As(err, &herr) {
				t.Fatalf("CheckResponse = %v (%T), want a *HandshakeError", err, err)
			}
			if herr.Status != status {
				t.Errorf("HandshakeError.Status = %d, want the response status %d", herr.Status, status)
			}
		})
	}
}

func TestCheckResponseWire(t *testing.T) {
	// The server handshake of RFC 6455 section 1.2.
	const raw = "HTTP/1.1 101 Switching Protocols\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + rfcAccept + "\r\n" +
		"Sec-WebSocket-Protocol: chat\r\n\r\n"
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := CheckResponse(resp.StatusCode, resp.Header, rfcKey, []string{"chat", "superchat"}); err != nil {
		t.Fatalf("CheckResponse: %v", err)
	}
	if err := CheckResponse(resp.StatusCode, resp.Header, "AAAAAAAAAAAAAAAAAAAAAA==", []string{"chat"}); err == nil {
		t.Fatal("CheckResponse accepted the answer to another key")
	}
}

func TestHasToken(t *testing.T) {
	for _, tc := range []struct {
		values []string
		token  string
		want   bool
	}{
		{[]string{"Upgrade"}, "upgrade", true},
		{[]string{"keep-alive, Upgrade"}, "upgrade", true},
		{[]string{"keep-alive,upgrade"}, "upgrade", true},
		{[]string{" keep-alive ,\tUPGRADE\t"}, "upgrade", true},
		{[]string{"keep-alive", "Upgrade"}, "upgrade", true},
		{[]string{"keep-alive"}, "upgrade", false},
		{[]string{"upgrades"}, "upgrade", false},
		{[]string{"up grade"}, "upgrade", false},
		{[]string{""}, "upgrade", false},
		{nil, "upgrade", false},
	} {
		h := http.Header{}
		for _, v := range tc.values {
			h.Add("Connection", v)
		}
		if got := HasToken(h, "connection", tc.token); got != tc.want {
			t.Errorf("HasToken(%q, %q) = %t, want %t", tc.values, tc.token, got, tc.want)
		}
	}
}

func TestTokens(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   []string
	}{
		{nil, nil},
		{[]string{""}, nil},
		{[]string{"chat"}, []string{"chat"}},
		{[]string{"chat, superchat"}, []string{"chat", "superchat"}},
		{[]string{" a ,, b,", "c", " , d "}, []string{"a", "b", "c", "d"}},
	} {
		h := http.Header{}
		for _, v := range tc.values {
			h.Add("Sec-WebSocket-Protocol", v)
		}
		if got := Tokens(h, "Sec-WebSocket-Protocol"); !slices.Equal(got, tc.want) {
			t.Errorf("Tokens(%q) = %q, want %q", tc.values, got, tc.want)
		}
	}
}

func TestSelectSubprotocol(t *testing.T) {
	for _, tc := range []struct {
		offered, supported []string
		want               string
	}{
		{nil, nil, ""},
		{[]string{"chat"}, nil, ""},
		{nil, []string{"chat"}, ""},
		{[]string{"chat"}, []string{"chat"}, "chat"},
		{[]string{"a", "b"}, []string{"b", "a"}, "a"}, // client's preference wins
		{[]string{"x", "b"}, []string{"a", "b"}, "b"},
		{[]string{"Chat"}, []string{"chat"}, ""}, // case-sensitive
	} {
		if got := SelectSubprotocol(tc.offered, tc.supported); got != tc.want {
			t.Errorf("SelectSubprotocol(%q, %q) = %q, want %q", tc.offered, tc.supported, got, tc.want)
		}
	}
}
