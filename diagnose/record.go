package diagnose

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

// hashPayload hashes a frame's payload as printed ("29 0b 1d 85" or
// "'fzWr'"); a ping and its pong print the same payload the same way.
// Spaces are skipped, so that Tether's "received ping" payload, unspaced hex
// ("290b1d85"), hashes as the peer's "> PING 29 0b 1d 85" frame.
func hashPayload(p []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range p {
		if c == ' ' || c == '\t' {
			continue
		}
		h ^= uint64(c)
		h *= 1099511628211
	}
	if h == 0 {
		h = 1
	}
	return h
}
