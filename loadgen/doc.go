// Package loadgen is the engine of `tether bench`: a load generator for any
// ws:// or wss:// server, in the spirit of wrk. It opens connections with a
// deliberately thin raw-frame client (a precompiled, pre-masked frame per
// connection, one reused read buffer), so the client spends as little CPU as
// possible per message and the same client can be pointed at any server:
// what differs between two runs is the server.
//
// Four modes share one shape (connect, warm up, measure a window, close):
// echo (request-response, closed loop or at a target rate, latency in an HDR
// histogram), idle (hold connections and answer pings, for memory and
// keepalive cost), handshake (open and close connections as fast as the
// server allows) and broadcast (subscribers time each message a publisher
// sends through the server).
//
// A process can open only so many files (RLIMIT_NOFILE); CheckOpenFiles says
// so before a run would fail halfway, and Merge combines the results of runs
// split across processes.
package loadgen
