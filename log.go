package tether

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"time"
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

// connLog writes a connection's log records to its logger with the
// connection's attributes first, conn, role and remote, as a logger made
// with With would. It makes them for each record instead of keeping such a
// logger: With formats its attributes up front, into about 260 bytes that
// every idle connection would hold for the few records it ever writes.
// Records carry the caller's source position, as the logger's own methods
// give it.
type connLog struct{ c *conn }

// Enabled reports whether the logger handles records at level.
func (l connLog) Enabled(ctx context.Context, level slog.Level) bool {
	return l.c.cfg.logger.Enabled(ctx, level)
}

func (l connLog) Debug(msg string, args ...any) {
	l.log(context.Background(), slog.LevelDebug, msg, args)
}
func (l connLog) Info(msg string, args ...any) {
	l.log(context.Background(), slog.LevelInfo, msg, args)
}
func (l connLog) Warn(msg string, args ...any) {
	l.log(context.Background(), slog.LevelWarn, msg, args)
}
func (l connLog) Error(msg string, args ...any) {
	l.log(context.Background(), slog.LevelError, msg, args)
}

// Log writes a record at any level.
func (l connLog) Log(ctx context.Context, level slog.Level, msg string, args ...any) {
	l.log(ctx, level, msg, args)
}

// log is slog.Logger's log with the connection's attributes added. It is
// called by one of the methods above, called by the code to name as the
// record's source.
func (l connLog) log(ctx context.Context, level slog.Level, msg string, args []any) {
	lg := l.c.cfg.logger
	if !lg.Enabled(ctx, level) {
		return
	}
	var pcs [1]uintptr
	runtime.Callers(3, pcs[:]) // skip runtime.Callers, log and its caller
	r := slog.NewRecord(time.Now(), level, msg, pcs[0])
	r.AddAttrs(slog.String("conn", l.c.id.String()), slog.String("role", l.c.role.String()),
		slog.String("remote", addrString(l.c.nc.RemoteAddr())))
	r.Add(args...)
	_ = lg.Handler().Handle(ctx, r)
}
