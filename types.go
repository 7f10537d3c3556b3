package tether

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/tetherws/tether/internal/wire"
)

// MessageType is the type of a data message: text or binary.
type MessageType int

// Message types (RFC 6455 section 5.6).
const (
	Text   MessageType = MessageType(wire.OpText)
	Binary MessageType = MessageType(wire.OpBinary)
)

func (t MessageType) String() string {
	switch t {
	case Text:
		return "text"
	case Binary:
		return "binary"
	}
	return fmt.Sprintf("MessageType(%d)", int(t))
}

// StatusCode is a close code (RFC 6455 section 7.4).
type StatusCode int

// Close codes. StatusNoStatus, StatusAbnormal and StatusTLSHandshake are never
// sent on the wire; they describe how a connection ended.
const (
	StatusNormal             StatusCode = 1000
	StatusGoingAway          StatusCode = 1001
	StatusProtocolError      StatusCode = 1002
	StatusUnsupportedData    StatusCode = 1003
	StatusNoStatus           StatusCode = 1005
	StatusAbnormal           StatusCode = 1006
	StatusInvalidPayload     StatusCode = 1007
	StatusPolicyViolation    StatusCode = 1008
	StatusTooBig             StatusCode = 1009
	StatusMandatoryExtension StatusCode = 1010
	StatusInternalError      StatusCode = 1011
	StatusServiceRestart     StatusCode = 1012
	StatusTryAgainLater      StatusCode = 1013
	StatusBadGateway         StatusCode = 1014
	StatusTLSHandshake       StatusCode = 1015
)

// CloseFrame is the code and reason of one close frame.
type CloseFrame struct {
	Code   StatusCode
	Reason string
}

// CloseError is how a connection ended. Every Read, Write and Ping on a closed
// connection returns one (use errors.As).
//
// Code and Reason describe the end as a person would: the close frame of the
// side that closed first, or 1006 when the TCP connection ended without one.
// Sent and Rcvd keep both frames, as python-websockets does; either is nil
// when that frame was never sent or received.
type CloseError struct {
	Code      StatusCode
	Reason    string
	Initiator string // "local" or "peer"
	Sent      *CloseFrame
	Rcvd      *CloseFrame
	Err       error // the underlying cause, if any (network error, protocol error)

	at time.Time // when the connection ended, for its snapshot
}

func (e *CloseError) Error() string {
	s := fmt.Sprintf("websocket closed: %d", e.Code)
	if e.Reason != "" {
		s += " " + e.Reason
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying cause and net.ErrClosed, so that
// errors.Is(err, net.ErrClosed) holds for every use of a closed connection.
func (e *CloseError) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Err, net.ErrClosed}
	}
	return []error{net.ErrClosed}
}

// CloseStatus returns the close code of err, or -1 when err is not a
// *CloseError.
func CloseStatus(err error) StatusCode {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

// KeepaliveMode chooses when keepalive pings are sent.
type KeepaliveMode int

const (
	// KeepaliveFixed sends a ping every PingInterval, measured from the last
	// ping, as python-websockets does. Only one keepalive ping is outstanding
	// at a time: while one waits for its pong, the next is skipped, so a pong
	// later than the interval is followed by a ping at the end of the
	// interval it came in.
	KeepaliveFixed KeepaliveMode = iota
	// KeepaliveIdle sends a ping only after a PingInterval in which no frame
	// arrived, as aiohttp's heartbeat does.
	KeepaliveIdle
)

func (m KeepaliveMode) String() string {
	if m == KeepaliveIdle {
		return "idle"
	}
	return "fixed"
}
