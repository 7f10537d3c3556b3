package wire

import (
	"encoding/binary"
	"fmt"
)

// Opcode is the 4-bit frame opcode (RFC 6455 section 5.2).
type Opcode uint8

// Opcodes defined by RFC 6455 section 11.8.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// IsControl reports whether op is a control opcode (close, ping, pong or a
// reserved control opcode).
func (op Opcode) IsControl() bool { return op&0x8 != 0 }

// IsReserved reports whether op is one of the opcodes RFC 6455 reserves.
func (op Opcode) IsReserved() bool {
	switch op {
	case OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong:
		return false
	}
	return true
}

func (op Opcode) String() string {
	switch op {
	case OpContinuation:
		return "CONT"
	case OpText:
		return "TEXT"
	case OpBinary:
		return "BINARY"
	case OpClose:
		return "CLOSE"
	case OpPing:
		return "PING"
	case OpPong:
		return "PONG"
	}
	return fmt.Sprintf("OP%X", uint8(op))
}

// RSV bits as they sit in the first header byte.
const (
	Rsv1 uint8 = 0x40
	Rsv2 uint8 = 0x20
	Rsv3 uint8 = 0x10
)

// MaxHeaderSize is the longest a frame header can be: 2 bytes, an 8-byte
// extended length and a 4-byte masking key.
const MaxHeaderSize = 14

// MaxControlPayload is the largest payload a control frame may carry.
const MaxControlPayload = 125

// Header is a decoded frame header (RFC 6455 section 5.2).
type Header struct {
	Fin    bool
	Rsv    uint8 // Rsv1|Rsv2|Rsv3 bits, in place
	Opcode Opcode
	Masked bool
	Key    [4]byte
	Length int64
}

// HeaderSize returns the full header length announced by the first two header
// bytes, so a reader knows how many bytes to gather before calling
// DecodeHeader.
func HeaderSize(b0, b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}

// DecodeHeader decodes the frame header at the start of b. It returns the
// header and its size, or ErrShortHeader when b does not hold the whole header
// yet. A 64-bit length with the most significant bit set is a *ProtocolError.
func DecodeHeader(b []byte) (h Header, n int, err error) {
	if len(b) < 2 {
		return h, 0, ErrShortHeader
	}
	n = HeaderSize(b[0], b[1])
	if len(b) < n {
		return h, 0, ErrShortHeader
	}
	h.Fin = b[0]&0x80 != 0
	h.Rsv = b[0] & (Rsv1 | Rsv2 | Rsv3)
	h.Opcode = Opcode(b[0] & 0x0f)
	h.Masked = b[1]&0x80 != 0
	p := 2
	switch l := b[1] & 0x7f; l {
	case 126:
		h.Length = int64(binary.BigEndian.Uint16(b[2:4]))
		p = 4
	case 127:
		u := binary.BigEndian.Uint64(b[2:10])
		if u>>63 != 0 {
			return h, 0, Errorf(CloseProtocolError, "frame length %d has its most significant bit set", u)
		}
		h.Length = int64(u)
		p = 10
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		copy(h.Key[:], b[p:p+4])
	}
	return h, n, nil
}

// AppendHeader appends the encoding of h to dst, using the minimal length
// encoding.
func AppendHeader(dst []byte, h Header) []byte {
	var b [MaxHeaderSize]byte
	return append(dst, b[:PutHeader(b[:], h)]...)
}

// PutHeader encodes h into b, which must hold MaxHeaderSize bytes, and returns
// the number of bytes written.
func PutHeader(b []byte, h Header) int {
	_ = b[MaxHeaderSize-1]
	b0 := byte(h.Opcode&0x0f) | h.Rsv&(Rsv1|Rsv2|Rsv3)
	if h.Fin {
		b0 |= 0x80
	}
	b[0] = b0
	var b1 byte
	if h.Masked {
		b1 = 0x80
	}
	n := 2
	switch {
	case h.Length <= 125:
		b[1] = b1 | byte(h.Length)
	case h.Length <= 0xffff:
		b[1] = b1 | 126
		binary.BigEndian.PutUint16(b[2:], uint16(h.Length))
		n = 4
	default:
		b[1] = b1 | 127
		binary.BigEndian.PutUint64(b[2:], uint64(h.Length))
		n = 10
	}
	if h.Masked {
		copy(b[n:], h.Key[:])
		n += 4
	}
	return n
}

// String prints a header the way debug logs show frames.
func (h Header) String() string {
	fin := ""
	if !h.Fin {
		fin = " [fragment]"
	}
	return fmt.Sprintf("%s len=%d rsv=%#x masked=%t%s", h.Opcode, h.Length, h.Rsv>>4, h.Masked, fin)
}
