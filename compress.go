package tether

import (
	"errors"
	"net/http"

	"github.com/tetherws/tether/internal/deflate"
	"github.com/tetherws/tether/internal/wire"
)

// CompressionMode chooses whether and how messages are compressed with
// permessage-deflate (RFC 7692). See docs/compression.md for the trade-off.
type CompressionMode int

const (
	// CompressionDefault is the zero value: CompressionNoContextTakeover.
	CompressionDefault CompressionMode = iota
	// CompressionDisabled neither offers nor accepts compression.
	CompressionDisabled
	// CompressionNoContextTakeover compresses each message on its own: no
	// memory is kept between messages, at some cost in ratio for small,
	// similar messages.
	CompressionNoContextTakeover
	// CompressionContextTakeover lets each message refer back into the
	// previous ones, the best ratio for streams of similar messages, at the
	// cost of a window of up to 2^CompressionWindowBits bytes per direction
	// per connection.
	CompressionContextTakeover
)

// Defaults for compression.
const (
	DefaultCompressionWindowBits = 15
	DefaultCompressionThreshold  = 128
)

func (m CompressionMode) String() string {
	switch m {
	case CompressionDisabled:
		return "disabled"
	case CompressionContextTakeover:
		return "context-takeover"
	}
	return "no-context-takeover"
}

// compression is a connection's negotiated permessage-deflate state.
type compression struct {
	params wire.DeflateParams
	comp   *deflate.Compressor
	decomp *deflate.Decompressor
}

func (o *ConnOptions) deflateConfig() (wire.DeflateConfig, bool) {
	mode := o.CompressionMode
	if mode == CompressionDefault {
		mode = CompressionNoContextTakeover
	}
	if mode == CompressionDisabled {
		return wire.DeflateConfig{}, false
	}
	bits := o.CompressionWindowBits
	if bits < 8 || bits > 15 {
		bits = DefaultCompressionWindowBits
	}
	// zlib cannot compress raw deflate with an 8-bit window (madler/zlib#171),
	// so asking a python-websockets peer for 8 fails its handshake: ask for 9.
	bits = max(bits, 9)
	return wire.DeflateConfig{NoContextTakeover: mode == CompressionNoContextTakeover, MaxWindowBits: bits}, true
}

// newCompression sets up both directions from the negotiated parameters.
// Our compressor uses context takeover only when we asked for it and the peer
// did not forbid it; our decompressor keeps history whenever the peer may use
// it.
func newCompression(p wire.DeflateParams, role wire.Role, mode CompressionMode, maxBits, level int) *compression {
	sendBits, sendNoCtx := p.ServerMaxWindowBits, p.ServerNoContextTakeover
	recvBits, recvNoCtx := p.ClientMaxWindowBits, p.ClientNoContextTakeover
	if role == wire.Client {
		sendBits, recvBits = recvBits, sendBits
		sendNoCtx, recvNoCtx = recvNoCtx, sendNoCtx
	}
	if sendBits <= 0 {
		sendBits = 15
	}
	if maxBits >= 8 && maxBits < sendBits {
		sendBits = maxBits // a compressor may always use less window than allowed
	}
	if recvBits <= 0 {
		recvBits = 15
	}
	return &compression{
		params: p,
		comp:   deflate.NewCompressor(sendBits, level, mode == CompressionContextTakeover && !sendNoCtx),
		decomp: deflate.NewDecompressor(recvBits, !recvNoCtx),
	}
}

// acceptDeflate negotiates compression for a server and returns the
// response header value, or "".
func acceptDeflate(h http.Header, o *ConnOptions) (*wire.DeflateParams, string) {
	cfg, ok := o.deflateConfig()
	if !ok {
		return nil, ""
	}
	exts, err := wire.ParseExtensions(h.Values(wire.HeaderExtensions))
	if err != nil {
		return nil, "" // a malformed header declines every offer
	}
	resp, ok := wire.NegotiateDeflate(exts, cfg)
	if !ok {
		return nil, ""
	}
	return &resp, resp.String()
}

// checkDeflateResponse validates the server's Sec-WebSocket-Extensions
// against the client's offer (nil when compression was not offered).
func checkDeflateResponse(h http.Header, offer *wire.DeflateParams) (*wire.DeflateParams, error) {
	exts, err := wire.ParseExtensions(h.Values(wire.HeaderExtensions))
	if err != nil {
		return nil, err
	}
	switch {
	case len(exts) == 0:
		return nil, nil
	case offer == nil || len(exts) > 1 || exts[0].Name != wire.DeflateName:
		return nil, errors.New("server selected an extension the client did not offer")
	}
	resp, err := wire.CheckDeflateResponse(exts[0], *offer)
	if err != nil {
		return nil, err
	}
	return &resp, nil
}

// Extensions returns the negotiated Sec-WebSocket-Extensions value, such as
// "permessage-deflate; server_no_context_takeover", or "" without
// compression.
func (c *Conn) Extensions() string {
	if c.deflate == nil {
		return ""
	}
	return c.deflate.params.String()
}
