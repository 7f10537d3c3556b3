package diagnose

import (
	"bytes"
	"encoding/hex"
	"strconv"
	"unicode/utf8"
)

// kind is what a log line says about a connection's keepalive.
type kind uint8

const (
	kindNone      kind = iota // not a line diagnose reads: skipped
	kindOther                 // a line of a known source that says nothing about keepalive
	kindPing                  // a keepalive ping, logged before its frame ("% sending", Tether's "sent keepalive ping")
	kindPingAfter             // a keepalive ping logged after its frame (python-websockets 15+ "% sent")
	kindPong                  // a keepalive pong ("% received keepalive pong")
	kindTimeout               // no pong within the ping timeout
	kindPingOut               // a ping frame sent: "> PING ..."
	kindPongIn                // a pong frame received: "< PONG ..."
	kindPeerPing              // a ping the peer sent: "< PING ...", Tether's "received ping"
	kindOpen                  // "= connection is OPEN", Tether's "connection open"
	kindClosed                // "= connection is CLOSED", Tether's "connection closed"
	kindRequest               // the opening handshake's request line: "> GET /path HTTP/1.1"
	kindHost                  // the handshake's Host header
	kindFail                  // "! failing connection with code 1011": a keepalive timeout's end, or its only trace
)

// source is the library that wrote a line.
type source uint8

const (
	srcNone source = iota
	srcTether
	srcPython
)

func (s source) String() string {
	switch s {
	case srcTether:
		return "tether"
	case srcPython:
		return "python-websockets"
	}
	return ""
}

// record is one parsed line. Strings are interned by the parser, so a record
// costs no allocation per line.
type record struct {
	kind    kind
	src     source
	t       int64 // Unix nanoseconds; valid when hasTime
	hasTime bool
	conn    string // the connection ID the line carries, "" when none
	logger  string
	thread  string
	role    string
	remote  string
	local   string // the connection's own address, when a record carries one
	url     string // Tether's url or path attribute, or a handshake's path or host
	payload uint64 // hash of a frame's payload as printed; 0 when none
	dur     int64  // Tether's duration attribute (see tetherAttrs) in nanoseconds; -1 when absent
}

// interner returns one string per distinct byte sequence, so that repeated
// IDs, logger names and addresses are allocated once.
type interner map[string]string

func (in interner) get(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := in[string(b)]; ok {
		return s
	}
	if len(in) > 1<<16 {
		return string(b) // a log of unique values: stop remembering
	}
	s := string(b)
	in[s] = s
	return s
}

// hashPayload hashes a frame's payload as printed: hex ("29 0b 1d 85"), or
// python-websockets' repr of a payload that is valid UTF-8 ("'fzWr'"). A
// ping and its pong print the same payload the same way; the other end of
// the connection may not (Tether's "received ping" prints hex, spaced or
// not), so the hash is of the bytes' hex digits, spaces skipped.
func hashPayload(p []byte) uint64 {
	p = bytes.TrimSpace(p)
	if len(p) >= 2 && (p[0] == '\'' || p[0] == '"') && p[len(p)-1] == p[0] {
		return hashText(p[1 : len(p)-1])
	}
	return finish(fnv(fnvOffset, p))
}

const fnvOffset = uint64(14695981039346656037)

// fnv folds hex digits into h, skipping spaces.
func fnv(h uint64, digits []byte) uint64 {
	for _, c := range digits {
		if c == ' ' || c == '\t' {
			continue
		}
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// hashText hashes the bytes of a Python str repr's body (quotes removed) as
// hashPayload hashes their hex: escapes (\x1c, \n, \u0363) are decoded to
// UTF-8, other characters are the log's UTF-8 already.
func hashText(body []byte) uint64 {
	var raw []byte
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c != '\\' || i+1 == len(body) {
			raw = append(raw, c)
			continue
		}
		i++
		switch e := body[i]; e {
		case 'n':
			raw = append(raw, '\n')
		case 'r':
			raw = append(raw, '\r')
		case 't':
			raw = append(raw, '\t')
		case 'x', 'u', 'U':
			n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
			v, err := strconv.ParseUint(string(body[i+1:min(i+1+n, len(body))]), 16, 32)
			switch {
			case err != nil || i+n >= len(body):
				raw = append(raw, '\\', e) // not an escape after all
			case e == 'x':
				raw, i = append(raw, byte(v)), i+n
			default:
				raw, i = utf8.AppendRune(raw, rune(v)), i+n
			}
		default: // \\, \', \"
			raw = append(raw, e)
		}
	}
	return finish(fnv(fnvOffset, []byte(hex.EncodeToString(raw))))
}

func finish(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}
