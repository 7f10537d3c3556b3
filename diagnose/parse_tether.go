package diagnose

import (
	"bytes"
	"math"
	"strconv"
	"time"
)

// tetherAttrs collects the attributes of one slog record that diagnose
// reads (docs/contracts.md), as raw bytes.
type tetherAttrs struct {
	time, msg, conn, role, remote, local, url []byte
	payload                                   []byte // a received ping's, as hex
	// dur is the record's one duration: a ping's interval, a pong's rtt, a
	// timeout's timeout, an open's ping_interval or a received ping's since
	// (the time since the peer's previous ping).
	dur        []byte
	durIsNanos bool // JSON: integer nanoseconds; text: a Go duration
}

func (a *tetherAttrs) set(key, val []byte) {
	switch string(key) {
	case "time":
		a.time = val
	case "msg":
		a.msg = val
	case "conn":
		a.conn = val
	case "role":
		a.role = val
	case "remote":
		a.remote = val
	case "local":
		a.local = val
	case "payload":
		a.payload = val
	case "url", "path":
		a.url = val
	case "interval", "rtt", "timeout", "ping_interval", "since":
		a.dur = val
	}
}

// record turns the attributes into a record; ok is false when the record is
// not about a connection's keepalive or life (a generic slog line).
func (p *parser) tetherRecord(a *tetherAttrs) (record, bool) {
	r := record{kind: kindOther, dur: -1}
	if t, _, ok := parseTime(a.time); ok {
		r.t, r.hasTime = t, true
	}
	r.kind = tetherKind(a.msg)
	switch r.kind {
	case kindPingOut, kindPongIn:
		r.payload = hashPayload(framePayload(a.msg[7:]))
	case kindPeerPing:
		if len(a.payload) > 0 {
			r.payload = hashPayload(a.payload)
		}
	}
	if len(a.conn) == 0 && r.kind == kindOther {
		return record{kind: kindOther}, true
	}
	r.src = srcTether
	r.conn = p.in.get(a.conn)
	r.role = p.in.get(a.role)
	r.remote = p.in.get(a.remote)
	r.local = p.in.get(a.local)
	if r.kind == kindOpen {
		r.url = p.in.get(a.url)
	}
	if len(a.dur) > 0 {
		r.dur = a.duration()
	}
	return r, true
}

// duration reads the record's duration in nanoseconds, -1 when unreadable.
func (a *tetherAttrs) duration() int64 {
	if a.durIsNanos {
		if n, err := strconv.ParseInt(string(a.dur), 10, 64); err == nil {
			return n
		} else if f, err := strconv.ParseFloat(string(a.dur), 64); err == nil {
			return int64(f)
		}
		return -1
	}
	if d, ok := goDuration(a.dur); ok {
		return d
	}
	if d, err := time.ParseDuration(string(a.dur)); err == nil {
		return int64(d)
	}
	return -1
}

// goDuration reads what time.Duration's String writes ("500.2ms", "20s",
// "908µs", "1m0.5s") without allocating: a server's log has one on every
// received ping. ok is false for anything else, left to time.ParseDuration.
func goDuration(b []byte) (int64, bool) {
	var total float64
	for len(b) > 0 {
		v, n := decimal(b)
		if n == 0 {
			return 0, false
		}
		b = b[n:]
		j := 0
		for j < len(b) && (b[j] < '0' || b[j] > '9') {
			j++
		}
		var unit float64
		switch string(b[:j]) {
		case "ns":
			unit = 1
		case "µs", "μs", "us":
			unit = 1e3
		case "ms":
			unit = 1e6
		case "s":
			unit = 1e9
		case "m":
			unit = 60e9
		case "h":
			unit = 3600e9
		default:
			return 0, false
		}
		total += v * unit
		b = b[j:]
	}
	return int64(math.Round(total)), true
}

// decimal reads a number such as "500" or "500.2" at the start of b and
// returns it and the bytes used (0 when there is none).
func decimal(b []byte) (float64, int) {
	var whole, frac, scale float64 = 0, 0, 1
	i, dot := 0, false
	for ; i < len(b); i++ {
		c := b[i]
		switch {
		case c >= '0' && c <= '9' && dot:
			scale /= 10
			frac += float64(c-'0') * scale
		case c >= '0' && c <= '9':
			whole = whole*10 + float64(c-'0')
		case c == '.' && !dot:
			dot = true
		default:
			return whole + frac, i
		}
	}
	return whole + frac, i
}

// tetherKind classifies a Tether record's message. Frame records (with
// LogFrames) print as python-websockets prints frames; "< PING" is counted
// through "received ping" instead.
func tetherKind(msg []byte) kind {
	switch string(msg) {
	case "sent keepalive ping":
		return kindPing
	case "received keepalive pong":
		return kindPong
	case "timed out waiting for keepalive pong":
		return kindTimeout
	case "received ping":
		return kindPeerPing
	case "connection open":
		return kindOpen
	case "connection closed":
		return kindClosed
	}
	switch {
	case bytes.HasPrefix(msg, []byte("> PING ")):
		return kindPingOut
	case bytes.HasPrefix(msg, []byte("< PONG ")):
		return kindPongIn
	}
	return kindOther
}

// parseLogfmt reads slog's TextHandler output: key=value pairs, values
// quoted when they hold spaces or quotes.
func (p *parser) parseLogfmt(b []byte) (record, bool) {
	var a tetherAttrs
	for len(b) > 0 {
		b = bytes.TrimLeft(b, " ")
		eq := bytes.IndexByte(b, '=')
		if eq <= 0 {
			break
		}
		key := b[:eq]
		if bytes.IndexByte(key, ' ') >= 0 {
			return record{}, false
		}
		b = b[eq+1:]
		var val []byte
		if len(b) > 0 && b[0] == '"' {
			end := quotedEnd(b)
			val, b = b[1:end-1], b[end:]
		} else {
			end := bytes.IndexByte(b, ' ')
			if end < 0 {
				end = len(b)
			}
			val, b = b[:end], b[end:]
		}
		a.set(key, val)
	}
	if a.msg == nil {
		return record{}, false
	}
	return p.tetherRecord(&a)
}

// quotedEnd returns the length of the quoted string at the start of b,
// quotes included; backslash escapes are skipped, not decoded.
func quotedEnd(b []byte) int {
	for i := 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// parseJSON reads slog's JSONHandler output: one flat object per line.
// Nested values (slog groups) are skipped; string escapes are not decoded,
// which the attributes diagnose reads never need.
func (p *parser) parseJSON(b []byte) (record, bool) {
	a := tetherAttrs{durIsNanos: true}
	i := 1
	for {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] == '}' {
			break
		}
		if b[i] == ',' {
			i++
			continue
		}
		if b[i] != '"' {
			return record{}, false
		}
		end := i + quotedEnd(b[i:])
		key := b[i+1 : end-1]
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return record{}, false
		}
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return record{}, false
		}
		var val []byte
		switch b[i] {
		case '"':
			end := i + quotedEnd(b[i:])
			val, i = b[i+1:end-1], end
		case '{', '[':
			i = skipNested(b, i)
			continue
		default:
			j := i
			for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ' ' {
				j++
			}
			val, i = b[i:j], j
		}
		a.set(key, val)
	}
	if a.msg == nil {
		return record{}, false
	}
	return p.tetherRecord(&a)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i
}

// skipNested returns the index after the object or array starting at i.
func skipNested(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch b[i] {
		case '"':
			i += quotedEnd(b[i:])
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
		i++
	}
	return i
}
