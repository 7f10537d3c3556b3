// Package wire is Tether's Sans-I/O core: the rules of RFC 6455 written once,
// with no sockets and no clocks.
//
// It decodes and encodes frame headers, masks payloads, validates UTF-8
// incrementally across fragments, parses and builds close payloads, enforces
// the fragmentation and control-frame rules, and checks opening handshakes.
// Callers feed it bytes and headers and get back values or a *ProtocolError
// that names the close code the connection must end with. The root package
// drives it over a net.Conn; the conformance suite and the fuzz targets drive
// it directly.
//
// # Pull and push
//
// The rules come in two shapes, for the two ways a connection is read.
//
// Pulling, a reader goroutine owns the connection and asks for bytes as it
// needs them: HeaderSize says how many bytes to gather, DecodeHeader decodes
// them, Reader.Next applies the rules to the header, Mask unmasks the payload
// as it is read and UTF8 validates text chunk by chunk. The goroutine's stack
// and buffered reader hold the state between reads.
//
// Pushing, an event loop reads many sockets into one buffer of its own and
// cannot wait for the rest of a frame: whatever arrived must be dealt with
// before the loop moves on, and the buffer is reused at once. Decoder is for
// that: Feed takes the bytes in any split (a header cut anywhere, a payload
// in many pieces) and calls a FrameHandler as frames become known. It is
// built from the same functions, in the same order, so both paths fail a
// peer with the same close code (the tests check them against each other),
// and it keeps only what a cut frame leaves unparsed: a header's bytes in a
// fixed array, a control payload in a pooled buffer. Data payloads pass
// through unbuffered, and between frames it holds no buffer, so an idle
// connection on the loop costs no more than its struct.
package wire
