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
// ReadJSON and WriteJSON exchange JSON messages; NetConn turns a connection
// into a net.Conn, to tunnel a protocol that wants a byte stream. Reconnect
// redials with backoff. Helper marks a function that dials for its callers,
// so that the registry's warnings name the callers.
//
// Time enters through ConnOptions.Clock, an interface: package tethertest
// has a fake Clock a test advances by hand, an in-memory Pair of
// connections and a test Server, so code that uses Tether can test its
// keepalive and reconnect logic without sleeping.
//
// The protocol rules live in internal/wire; this package drives them over a
// net.Conn.
package tether
