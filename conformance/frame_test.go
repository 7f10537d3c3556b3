package conformance

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"unicode/utf8"
)

// The test peer's own frame codec (RFC 6455 section 5.2). It is written
// independently of internal/wire on purpose: a bug in Tether's codec must not
// be mirrored by the peer that checks it.

// Opcodes.
const (
	opCont   byte = 0x0
	opText   byte = 0x1
	opBinary byte = 0x2
	opClose  byte = 0x8
	opPing   byte = 0x9
	opPong   byte = 0xA
)

func opName(op byte) string {
	switch op {
	case opCont:
		return "CONT"
	case opText:
		return "TEXT"
	case opBinary:
		return "BINARY"
	case opClose:
		return "CLOSE"
	case opPing:
		return "PING"
	case opPong:
		return "PONG"
	}
	return fmt.Sprintf("OP%X", op)
}

// maskMode says whether the peer masks a frame.
type maskMode uint8

const (
	maskAuto  maskMode = iota // as the peer's role requires: a client masks, a server does not
	maskWrong                 // the opposite: a protocol error for the receiver
)

// Frame is one frame as the peer sends it.
type Frame struct {
	Op      byte
	Fin     bool
	Rsv     byte // 0-7 as Autobahn numbers them: 4 = RSV1, 2 = RSV2, 1 = RSV3
	Payload []byte
	Mask    maskMode
}

// Frame constructors. Each returns a final (FIN) frame unless it says
// otherwise.
func textFrame(s string) Frame      { return Frame{Op: opText, Fin: true, Payload: []byte(s)} }
func textBytes(b []byte) Frame      { return Frame{Op: opText, Fin: true, Payload: b} }
func binaryFrame(b []byte) Frame    { return Frame{Op: opBinary, Fin: true, Payload: b} }
func pingFrame(s string) Frame      { return Frame{Op: opPing, Fin: true, Payload: []byte(s)} }
func pingBytes(b []byte) Frame      { return Frame{Op: opPing, Fin: true, Payload: b} }
func pongFrame(s string) Frame      { return Frame{Op: opPong, Fin: true, Payload: []byte(s)} }
func closeRaw(payload []byte) Frame { return Frame{Op: opClose, Fin: true, Payload: payload} }

// frag returns a data or continuation frame with an explicit FIN bit.
func frag(op byte, fin bool, s string) Frame {
	return Frame{Op: op, Fin: fin, Payload: []byte(s)}
}

// closeFrame returns a close frame with a status code and reason.
func closeFrame(code uint16, reason string) Frame {
	return closeRaw(closePayload(code, reason))
}

func closePayload(code uint16, reason string) []byte {
	p := binary.BigEndian.AppendUint16(nil, code)
	return append(p, reason...)
}

// appendHeader appends a frame header that announces length bytes of payload,
// in the minimal length encoding. Any 64-bit length is written as is, the
// most significant bit included (for the X.2.1 test).
func appendHeader(dst []byte, f Frame, masked bool, key [4]byte, length uint64) []byte {
	b0 := f.Op&0x0f | (f.Rsv&7)<<4
	if f.Fin {
		b0 |= 0x80
	}
	var mbit byte
	if masked {
		mbit = 0x80
	}
	dst = append(dst, b0)
	switch {
	case length <= 125:
		dst = append(dst, mbit|byte(length))
	case length <= 0xffff:
		dst = append(dst, mbit|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(length))
	default:
		dst = append(dst, mbit|127)
		dst = binary.BigEndian.AppendUint64(dst, length)
	}
	if masked {
		dst = append(dst, key[:]...)
	}
	return dst
}

// appendFrame appends the whole frame, masking the payload when masked.
func appendFrame(dst []byte, f Frame, masked bool) []byte {
	var key [4]byte
	if masked {
		binary.LittleEndian.PutUint32(key[:], rand.Uint32())
	}
	dst = appendHeader(dst, f, masked, key, uint64(len(f.Payload)))
	start := len(dst)
	dst = append(dst, f.Payload...)
	if masked {
		maskBytes(key, 0, dst[start:])
	}
	return dst
}

// maskBytes XORs b with key starting at key position pos and returns the
// position for the next byte. It works on 8-byte words where it can, so that
// megabyte payloads stay cheap under -race.
func maskBytes(key [4]byte, pos int, b []byte) int {
	for len(b) > 0 && pos&3 != 0 {
		b[0] ^= key[pos&3]
		b = b[1:]
		pos++
	}
	k := uint64(binary.LittleEndian.Uint32(key[:]))
	k |= k << 32
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= key[(pos+i)&3]
	}
	return (pos + len(b)) & 3
}

// acceptKey computes Sec-WebSocket-Accept (RFC 6455 section 4.2.2).
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// validCloseCode is the peer's own reading of RFC 6455 section 7.4 and the
// IANA registry, as this project applies it: 1000-1003, 1007-1014 and
// 3000-4999 may be sent.
func validCloseCode(code int) bool {
	return code >= 1000 && code <= 1003 || code >= 1007 && code <= 1014 || code >= 3000 && code <= 4999
}

// parseClosePayload splits a close payload into code and reason; an empty
// payload gives 1005. It reports what is wrong with a payload Tether must not
// send.
func parseClosePayload(p []byte) (code int, reason string, err error) {
	switch {
	case len(p) == 0:
		return 1005, "", nil
	case len(p) == 1:
		return 0, "", fmt.Errorf("close payload of 1 byte")
	}
	code = int(binary.BigEndian.Uint16(p))
	if !validCloseCode(code) {
		return code, "", fmt.Errorf("close code %d may not be sent", code)
	}
	if !utf8.Valid(p[2:]) {
		return code, "", fmt.Errorf("close reason is not UTF-8: % x", p[2:])
	}
	return code, string(p[2:]), nil
}

// repeat returns n bytes cycling through pattern. It doubles what it has
// copied, so that 16 MiB take a few dozen copies.
func repeat(pattern string, n int) []byte {
	b := make([]byte, n)
	if n == 0 {
		return b
	}
	i := copy(b, pattern)
	for i < n {
		i += copy(b[i:], b[:i])
	}
	return b
}
