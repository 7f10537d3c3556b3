package diagnose

import "bytes"

// parsePython reads a python-websockets debug line under the common logging
// formats: "%(asctime)s %(message)s", logging's default
// "%(levelname)s:%(name)s:%(message)s" and Home Assistant's
// "%(asctime)s.%(msecs)03d %(levelname)s (%(threadName)s) [%(name)s] %(message)s".
// Whatever stands between the header and the message (python-websockets'
// one-character prefix: "%", "!", "-", ">", "<", "=", "x") is a connection ID
// added by a LoggerAdapter, as python-websockets' logging guide shows.
func (p *parser) parsePython(b []byte) record {
	var r record
	rest := b
	if t, n, ok := parseTime(rest); ok {
		r.t, r.hasTime = t, true
		rest = bytes.TrimLeft(rest[n:], " \t")
	}
	// logging's default format: LEVEL:logger:message.
	if i := bytes.IndexByte(rest, ':'); i > 0 && levelWord(rest[:i]) {
		after := rest[i+1:]
		if j := bytes.IndexByte(after, ':'); j > 0 && bytes.IndexByte(after[:j], ' ') < 0 {
			r.logger = p.in.get(after[:j])
			rest = after[j+1:]
		}
	}
	at, k := findMessage(rest)
	if k == kindNone {
		return record{}
	}
	p.header(&r, rest[:at])
	msg := rest[at:]
	r.kind, r.src, r.dur = k, srcPython, -1
	switch k {
	case kindPingOut, kindPongIn, kindPeerPing:
		r.payload = hashPayload(framePayload(msg[7:]))
	case kindRequest:
		r.role = roleOf(msg[0])
		path := msg[len("> GET "):]
		if i := bytes.IndexByte(path, ' '); i >= 0 {
			path = path[:i]
		}
		r.url = p.in.get(path)
	case kindHost:
		r.role = roleOf(msg[0])
		r.url = p.in.get(bytes.TrimSpace(msg[len("> Host:"):]))
	}
	return r
}

// roleOf reads the role from a handshake line's direction: a client sends
// the request, a server receives it.
func roleOf(dir byte) string {
	if dir == '>' {
		return "client"
	}
	return "server"
}

// header reads the tokens before the message: level, (thread), [logger], a
// bare logger name, and the connection ID a LoggerAdapter prefixed. Tokens
// after the ID (the guide also shows the client's address) are ignored.
func (p *parser) header(r *record, h []byte) {
	for len(h) > 0 {
		h = bytes.TrimLeft(h, " \t")
		if len(h) == 0 {
			return
		}
		var tok []byte
		switch h[0] {
		case '(', '[':
			end := closing(h)
			tok, h = h[:end], h[end:]
			inner := bytes.TrimSpace(tok[1 : len(tok)-1])
			if tok[0] == '(' {
				r.thread = p.in.get(inner)
			} else {
				r.logger = p.in.get(inner)
			}
			continue
		}
		end := bytes.IndexAny(h, " \t")
		if end < 0 {
			end = len(h)
		}
		tok, h = h[:end], h[end:]
		tok = bytes.TrimRight(tok, ":")
		switch {
		case len(tok) == 0, levelWord(tok):
		case r.conn == "" && r.logger == "" && loggerName(tok):
			r.logger = p.in.get(tok)
		case r.conn == "":
			r.conn = p.in.get(tok)
		}
	}
}

// closing returns the length of the bracketed token at the start of h,
// brackets nested ("(Thread-3 (keepalive))").
func closing(h []byte) int {
	open, shut := h[0], byte(')')
	if open == '[' {
		shut = ']'
	}
	depth := 0
	for i, c := range h {
		switch c {
		case open:
			depth++
		case shut:
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return len(h)
}

// loggerName reports whether tok looks like a Python logger name
// ("websockets.client", "root") rather than a connection ID, which carries
// digits or dashes.
func loggerName(tok []byte) bool {
	if bytes.Equal(tok, []byte("root")) {
		return true
	}
	if bytes.IndexByte(tok, '.') < 0 {
		return false
	}
	for _, c := range tok {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// findMessage finds where a python-websockets message starts in b: a
// one-character prefix and a space, at the start or after a space, followed
// by a known message. It returns the offset and the message's kind.
func findMessage(b []byte) (int, kind) {
	for i := 0; i+1 < len(b); i++ {
		if b[i+1] != ' ' || (i > 0 && b[i-1] != ' ') {
			continue
		}
		switch b[i] {
		case '%', '!', '-', '>', '<', '=', 'x':
			if k := messageKind(b[i:]); k != kindNone {
				return i, k
			}
		}
	}
	return 0, kindNone
}

var pythonMessages = []struct {
	text string
	kind kind
}{
	{"% sending keepalive ping", kindPing},
	{"% sent keepalive ping", kindPingAfter},
	{"% received keepalive pong", kindPong},
	{"! timed out waiting for keepalive pong", kindTimeout},
	{"- timed out waiting for keepalive pong", kindTimeout},
	{"> PING ", kindPingOut},
	{"< PONG ", kindPongIn},
	{"< PING ", kindPeerPing},
	{"= connection is OPEN", kindOpen},
	{"= connection is CLOSED", kindClosed},
	{"= connection is ", kindOther},
	{"> GET ", kindRequest},
	{"< GET ", kindRequest},
	{"> Host: ", kindHost},
	{"< Host: ", kindHost},
	{"x closing TCP connection", kindOther},
	{"x half-closing TCP connection", kindOther},
	{"x aborting TCP connection", kindOther},
	{"! failing connection with code 1011", kindFail},
	{"! failing connection", kindOther},
	{"! timed out waiting for TCP close", kindOther},
	{"% ", kindOther},
}

func messageKind(m []byte) kind {
	for _, pm := range pythonMessages {
		if bytes.HasPrefix(m, []byte(pm.text)) {
			return pm.kind
		}
	}
	// Other frames ("> TEXT", "< CLOSE", "> EOF"), HTTP lines and headers:
	// "> " or "< " and a capital letter.
	if (m[0] == '>' || m[0] == '<') && len(m) > 2 && m[2] >= 'A' && m[2] <= 'Z' {
		return kindOther
	}
	return kindNone
}

// framePayload cuts a frame's description ("29 0b 1d 85 [binary, 4 bytes]")
// to its payload.
func framePayload(b []byte) []byte {
	if i := bytes.LastIndex(b, []byte(" [")); i >= 0 {
		return b[:i]
	}
	return b
}
