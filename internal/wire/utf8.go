package wire

import "unicode/utf8"

// UTF8 validates a text message incrementally, fragment by fragment, and fails
// as soon as the bytes seen so far cannot begin valid UTF-8 (RFC 6455 section
// 8.1), so a bad fragment ends the connection before the message completes.
// The zero value is ready for a new message.
type UTF8 struct {
	pend [4]byte
	n    int
}

// Write validates the next bytes of the message and reports whether they can
// still be part of valid UTF-8.
func (v *UTF8) Write(p []byte) bool {
	if v.n > 0 {
		need := seqLen(v.pend[0])
		take := min(need-v.n, len(p))
		copy(v.pend[v.n:], p[:take])
		v.n += take
		p = p[take:]
		if v.n < need {
			return validPrefix(v.pend[:v.n])
		}
		if !utf8.Valid(v.pend[:v.n]) {
			return false
		}
		v.n = 0
	}
	cut := incompleteTail(p)
	if !utf8.Valid(p[:cut]) {
		return false
	}
	if tail := p[cut:]; len(tail) > 0 {
		if !validPrefix(tail) {
			return false
		}
		v.n = copy(v.pend[:], tail)
	}
	return true
}

// Complete reports whether the message so far ends on a whole code point, as
// it must at the end of a text message.
func (v *UTF8) Complete() bool { return v.n == 0 }

// Reset prepares v for a new message.
func (v *UTF8) Reset() { v.n = 0 }

// seqLen returns the length of the UTF-8 sequence that lead byte b starts, or
// 0 when b cannot start a sequence.
func seqLen(b byte) int {
	switch {
	case b < 0x80:
		return 1
	case b >= 0xC2 && b <= 0xDF:
		return 2
	case b >= 0xE0 && b <= 0xEF:
		return 3
	case b >= 0xF0 && b <= 0xF4:
		return 4
	}
	return 0
}

// incompleteTail returns the index where a sequence that is cut off by the end
// of p begins, or len(p) when p does not end inside a sequence.
func incompleteTail(p []byte) int {
	for i := len(p) - 1; i >= 0 && i >= len(p)-3; i-- {
		if p[i]&0xC0 == 0x80 {
			continue // continuation byte: keep looking for the lead
		}
		if n := seqLen(p[i]); n > len(p)-i {
			return i
		}
		return len(p)
	}
	return len(p)
}

// validPrefix reports whether t, shorter than the sequence its lead byte
// announces, can still be completed into a valid code point (Unicode table
// 3-7): no overlong forms, no surrogates, nothing above U+10FFFF.
func validPrefix(t []byte) bool {
	if seqLen(t[0]) <= len(t) {
		return false
	}
	for i := 1; i < len(t); i++ {
		lo, hi := byte(0x80), byte(0xBF)
		if i == 1 {
			switch t[0] {
			case 0xE0:
				lo = 0xA0
			case 0xED:
				hi = 0x9F
			case 0xF0:
				lo = 0x90
			case 0xF4:
				hi = 0x8F
			}
		}
		if t[i] < lo || t[i] > hi {
			return false
		}
	}
	return true
}
