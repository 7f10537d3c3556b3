// Package dashboard serves a live view of a Tether registry: a page that
// shows every connection with its keepalive timeline, the JSON behind it
// (/api/connections, Contract 2 (docs/contracts.md)), and Prometheus metrics
// (/metrics). It is one http.Handler that any net/http server can mount;
// `tether serve` mounts it at /.
//
// The registry already knows each connection's counters; what it does not
// keep is the keepalive history, so the handler subscribes to the registry's
// events and remembers the last few pings, pongs and timeouts of every
// connection, and of its peer's pings, beside which the page draws them. It
// keeps recently closed connections a while (Options.KeepClosed), so a page
// opened after a keepalive timeout still shows it, and lists what the
// registry finds across connections (/api/findings). The page gets
// snapshots and those events over a WebSocket served by Tether itself
// (/api/feed), and polls /api/state when the feed is down. Everything the
// page needs is embedded in the binary.
//
// The page and the API show addresses and connection IDs: guard them with
// Options.Authorize (see BearerToken and Loopback).
package dashboard
