package wire

import (
	"errors"
	"fmt"
)

// ErrShortHeader means the buffer does not yet hold a whole frame header.
var ErrShortHeader = errors.New("wire: short frame header")

// ProtocolError is a violation of RFC 6455 by the peer. Code is the close code
// the connection must be failed with (1002, 1007, 1009 ...).
type ProtocolError struct {
	Code   uint16
	Reason string
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("websocket protocol error %d: %s", e.Code, e.Reason)
}

// Errorf returns a *ProtocolError with the given close code.
func Errorf(code uint16, format string, args ...any) *ProtocolError {
	return &ProtocolError{Code: code, Reason: fmt.Sprintf(format, args...)}
}
