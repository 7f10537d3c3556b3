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
package wire
