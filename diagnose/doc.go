// Package diagnose reads WebSocket debug logs and tells which keepalive line
// belongs to which connection, and what is wrong: the analysis behind
// `tether diagnose`.
//
// It reads Tether's own slog records (text or JSON, the log records of
// docs/contracts.md) and python-websockets' debug lines, legacy and current
// ("% sending keepalive ping", "% sent keepalive ping", "> PING 29 0b 1d 85
// [binary, 4 bytes]", ...), under the common Python logging formats, with or
// without a connection ID prefixed by a LoggerAdapter; the parser is chosen
// per line, so one file may mix them. Lines of any other kind are counted and
// skipped. Keepalive events are grouped per connection ID; lines without one
// are split into one stream per connection by the cadence of their pings,
// the pairing of ping and pong payloads, the logger and the thread (see
// link.go). Each stream gets its interval, round-trip time, unanswered pings
// and timeouts, and the report lists findings a person can act on. On a
// server's log, the pings each client sent give its cadence, compared per
// client host; given both ends' logs, the two streams of a connection are
// paired by their pings' payloads (peers.go, findings_server.go).
//
// The package is pure: it reads an io.Reader and returns a Report, which
// writes itself as text, as JSON (Contract 4) or as an SVG timeline. It
// imports no network code; the CLI in cmd/tether is a thin layer over it.
//
// The fixtures in testdata are real logs: testdata/gen runs python-websockets
// (Debian's python3-websockets, in one process, several client connections,
// some labeled, one peer that stops answering) and the tether CLI, and writes
// each log with its ground truth (which connection wrote each line);
// testdata/gen/peers.py adds a tether serve log of three clients of one
// process and their log. Each problem diagnose reports has its case: an
// unanswered connection among unlabeled ones (unanswered-*), a server that
// stalls under three Tether clients (stall-tether), no keepalive at all
// (quiet). Every keepalive line is attributed (--lines; attribution.go) and
// the tests hold each to the connection that wrote it. To regenerate them (about two minutes; needs
// /usr/bin/python3 with websockets):
//
//	go generate ./diagnose/
//
//go:generate sh testdata/gen/gen.sh
package diagnose
