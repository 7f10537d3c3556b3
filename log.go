package tether

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"

	"github.com/tetherws/tether/internal/wire"
)

// logFramePayloadMax is how many payload bytes a frame record shows.
const logFramePayloadMax = 32

// logFrame writes a debug record for a frame when LogFrames is on, readable as
// python-websockets prints frames: "> PING 29 0b 1d 85 [binary, 4 bytes]".
// dir is ">" for sent and "<" for received.
func (c *conn) logFrame(dir string, h wire.Header, p []byte) {
	if !c.cfg.logFrames || !c.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	c.log.Debug(dir + " " + frameString(h, p))
}

func frameString(h wire.Header, p []byte) string {
	var b strings.Builder
	b.WriteString(h.Opcode.String())
	b.WriteByte(' ')
	kind := "binary"
	switch {
	case h.Opcode == wire.OpText && utf8.Valid(p):
		kind = "text"
		s := string(p)
		if len(s) > logFramePayloadMax {
			s = s[:logFramePayloadMax] + "…"
		}
		fmt.Fprintf(&b, "%q", s)
	case h.Opcode == wire.OpClose && len(p) >= 2:
		kind = "close"
		code, reason, _ := wire.ParseClose(p)
		fmt.Fprintf(&b, "%d %q", code, reason)
	default:
		b.WriteString(hexPayload(p))
	}
	fin := ""
	if !h.Fin {
		fin = ", continued"
	}
	fmt.Fprintf(&b, " [%s, %d bytes%s]", kind, len(p), fin)
	return b.String()
}

// hexPayload prints up to logFramePayloadMax bytes as spaced hex.
func hexPayload(p []byte) string {
	cut := len(p) > logFramePayloadMax
	if cut {
		p = p[:logFramePayloadMax]
	}
	s := hex.EncodeToString(p)
	var b strings.Builder
	for i := 0; i < len(s); i += 2 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s[i : i+2])
	}
	if cut {
		b.WriteString(" …")
	}
	return b.String()
}
