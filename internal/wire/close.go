package wire

import (
	"encoding/binary"
	"unicode/utf8"
)

// Close codes (RFC 6455 section 7.4.1 and the IANA registry).
const (
	CloseNormal          uint16 = 1000
	CloseGoingAway       uint16 = 1001
	CloseProtocolError   uint16 = 1002
	CloseUnsupportedData uint16 = 1003
	CloseNoStatus        uint16 = 1005 // never sent: no code in the close frame
	CloseAbnormal        uint16 = 1006 // never sent: no close frame at all
	CloseInvalidPayload  uint16 = 1007
	ClosePolicyViolation uint16 = 1008
	CloseTooBig          uint16 = 1009
	CloseMandatoryExt    uint16 = 1010
	CloseInternalError   uint16 = 1011
	CloseServiceRestart  uint16 = 1012
	CloseTryAgainLater   uint16 = 1013
	CloseBadGateway      uint16 = 1014
	CloseTLSHandshake    uint16 = 1015 // never sent
)

// ValidCloseCode reports whether code may appear in a close frame on the wire:
// 1000-1003, 1007-1014 and 3000-4999. Codes 0-999, 1004-1006, 1015,
// 1016-2999 and 5000 and above are invalid.
func ValidCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// ParseClose parses a close frame payload (RFC 6455 section 5.5.1). An empty
// payload yields CloseNoStatus. A 1-byte payload or an invalid code is a 1002
// error; a reason that is not UTF-8 is a 1007 error.
func ParseClose(p []byte) (code uint16, reason string, err error) {
	switch {
	case len(p) == 0:
		return CloseNoStatus, "", nil
	case len(p) == 1:
		return 0, "", Errorf(CloseProtocolError, "close payload of 1 byte")
	case len(p) > MaxControlPayload:
		return 0, "", Errorf(CloseProtocolError, "close payload of %d bytes", len(p))
	}
	code = binary.BigEndian.Uint16(p)
	if !ValidCloseCode(code) {
		return 0, "", Errorf(CloseProtocolError, "invalid close code %d", code)
	}
	if !utf8.Valid(p[2:]) {
		return 0, "", Errorf(CloseInvalidPayload, "close reason is not valid UTF-8")
	}
	return code, string(p[2:]), nil
}

// AppendClose appends a close payload to dst. CloseNoStatus gives an empty
// payload. The reason is cut, on a code point boundary, to fit the 125-byte
// control frame limit.
func AppendClose(dst []byte, code uint16, reason string) []byte {
	if code == CloseNoStatus {
		return dst
	}
	dst = binary.BigEndian.AppendUint16(dst, code)
	return append(dst, TruncateReason(reason)...)
}

// TruncateReason cuts reason to at most 123 bytes without splitting a code
// point, so that it fits a close frame.
func TruncateReason(reason string) string {
	const max = MaxControlPayload - 2
	if len(reason) <= max {
		return reason
	}
	i := max
	for i > 0 && !utf8.RuneStart(reason[i]) {
		i--
	}
	return reason[:i]
}
