package wire

import (
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"strings"
)

// acceptGUID is the fixed GUID of RFC 6455 section 1.3.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// The handshake's header names as http.Header stores them (canonical MIME
// form): looking a header up by its RFC spelling, Sec-WebSocket-Key,
// allocates its canonical form on every call.
const (
	HeaderKey        = "Sec-Websocket-Key"
	HeaderVersion    = "Sec-Websocket-Version"
	HeaderProtocol   = "Sec-Websocket-Protocol"
	HeaderAccept     = "Sec-Websocket-Accept"
	HeaderExtensions = "Sec-Websocket-Extensions"
)

// AcceptKey computes Sec-WebSocket-Accept for a Sec-WebSocket-Key.
func AcceptKey(key string) string {
	var b [28]byte
	return string(AppendAcceptKey(b[:0], key))
}

// AppendAcceptKey appends Sec-WebSocket-Accept for key to dst.
func AppendAcceptKey(dst []byte, key string) []byte {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte(acceptGUID))
	var sum [sha1.Size]byte
	return base64.StdEncoding.AppendEncode(dst, h.Sum(sum[:0]))
}

// ValidKey reports whether key is the base64 encoding of 16 bytes.
func ValidKey(key string) bool {
	if len(key) != 24 {
		return false
	}
	var b [18]byte
	n, err := base64.StdEncoding.Decode(b[:], []byte(key))
	return err == nil && n == 16
}

// HandshakeError is an opening handshake the server must refuse, with the
// HTTP status to answer and a short reason for the body.
type HandshakeError struct {
	Status int
	Reason string
}

func (e *HandshakeError) Error() string { return "websocket handshake: " + e.Reason }

// Version is the only protocol version Tether speaks.
const Version = "13"

// CheckRequest validates a client's opening handshake (RFC 6455 section 4.2.1)
// and returns its Sec-WebSocket-Key. A wrong version is a 426 error, any other
// problem a 400 error.
func CheckRequest(method string, h http.Header) (key string, err *HandshakeError) {
	if method != http.MethodGet {
		return "", &HandshakeError{http.StatusBadRequest, "method must be GET, got " + method}
	}
	if !HasToken(h, "Upgrade", "websocket") {
		return "", &HandshakeError{http.StatusBadRequest, `"Upgrade: websocket" header missing`}
	}
	if !HasToken(h, "Connection", "upgrade") {
		return "", &HandshakeError{http.StatusBadRequest, `"Connection: upgrade" header missing`}
	}
	if v := h.Values(HeaderVersion); len(v) != 1 || strings.TrimSpace(v[0]) != Version {
		return "", &HandshakeError{http.StatusUpgradeRequired, "unsupported Sec-WebSocket-Version, want 13"}
	}
	keys := h.Values(HeaderKey)
	if len(keys) != 1 || !ValidKey(strings.TrimSpace(keys[0])) {
		return "", &HandshakeError{http.StatusBadRequest, "Sec-WebSocket-Key must be 16 bytes in base64"}
	}
	return strings.TrimSpace(keys[0]), nil
}

// CheckResponse validates a server's answer to a handshake sent with key
// (RFC 6455 section 4.1): status 101, the Upgrade and Connection tokens and
// the accept hash. It also checks that a selected subprotocol is one the
// client offered.
func CheckResponse(status int, h http.Header, key string, offered []string) error {
	if status != http.StatusSwitchingProtocols {
		return &HandshakeError{status, "expected status 101"}
	}
	if !HasToken(h, "Upgrade", "websocket") {
		return &HandshakeError{status, `"Upgrade: websocket" header missing in response`}
	}
	if !HasToken(h, "Connection", "upgrade") {
		return &HandshakeError{status, `"Connection: upgrade" header missing in response`}
	}
	if got := h.Get(HeaderAccept); got != AcceptKey(key) {
		return &HandshakeError{status, "Sec-WebSocket-Accept does not match the key"}
	}
	if sp := h.Values(HeaderProtocol); len(sp) > 0 {
		if len(sp) > 1 || !contains(offered, sp[0]) {
			return &HandshakeError{status, "server selected a subprotocol the client did not offer"}
		}
	}
	return nil
}

// HasToken reports whether the comma-separated header name contains token,
// compared case-insensitively.
func HasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// Tokens returns the comma-separated values of header name, trimmed, in order,
// without empty elements.
func Tokens(h http.Header, name string) []string {
	var out []string
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

// SelectSubprotocol returns the first of the client's offered subprotocols that
// the server supports, in the client's order of preference, or "".
func SelectSubprotocol(offered, supported []string) string {
	for _, p := range offered {
		if contains(supported, p) {
			return p
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
