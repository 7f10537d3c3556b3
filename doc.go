// Package tether is a WebSocket (RFC 6455) client and server for Go with
// keepalive built in and an identity for every connection.
//
// Accept upgrades a request inside any net/http server; Dial opens a client
// connection. Both return a *Conn that reads and writes whole messages (Read,
// Write) or streams them (Reader, Writer), answers pings on its own even while
// the application is not reading, sends keepalive pings on a schedule,
// measures the round-trip time, and fails a dead peer with close code 1011
// instead of hanging.
//
// Every connection has an ID (a UUIDv7 unless the options supply one) that is
// carried, as the slog attribute "conn", in every log record the connection
// emits, together with "role" and "remote".
//
// The protocol rules live in internal/wire; this package drives them over a
// net.Conn.
package tether
