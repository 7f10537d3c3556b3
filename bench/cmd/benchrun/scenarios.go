package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// metric is one column of a scenario's table.
type metric struct {
	key    string
	label  string
	lower  bool // lower is better
	ratio  bool // show the ratio to the best peer
	digits int
}

// scenario is one table: what to run against each library and what to
// keep of it.
type scenario struct {
	id, title, note string
	libs            []string
	runs            int
	// fullOnly scenarios are left out of the quick profile (to keep `make
	// bench` near 10 minutes) unless -scenarios names them.
	fullOnly bool
	metrics  []metric
	measure  func(ctx context.Context, r *runner, lib string) (sample, error)
}

// sample is one run's figures, by metric key.
type sample map[string]float64

// Library groups. Beside the libraries, three rows are Tether itself
// (issue 17): "tether" is the library with the engine it picks (auto, or
// -tether-engine), "tether-goroutine" the same server with
// TETHER_ENGINE=goroutine, "tether-serve" the `tether serve` command's
// /echo.
var (
	goPeers   = []string{"gorilla", "coder", "gobwas", "gws"}
	goLibs    = append([]string{"tether"}, goPeers...)
	crossLang = []string{"node", "python"}
	echoLibs  = slices.Concat(goLibs, []string{"rawtcp"}, crossLang)
	engines   = []string{"tether", "tether-goroutine"}
)

// The peers are what Tether is ranked against; raw TCP is the limit, and
// Tether's other rows are Tether.
func isPeer(lib string) bool { return !isTether(lib) && lib != "rawtcp" }

func isTether(lib string) bool { return lib == "tether" || strings.HasPrefix(lib, "tether-") }

// windows are the lengths of one profile (quick or full).
type windows struct {
	echo, warmup, idleSettle, keepalive, broadcast time.Duration
	runs, memRuns, scaleRuns                       int
	memConns                                       int           // connections in (e-off) and (i-e)
	budget                                         time.Duration // see runner.deadline
	// everywhere runs Node and python in every echo-like scenario, not
	// only in (a) and (b), and every Go peer in issue 17's.
	everywhere bool
}

var (
	quick = windows{echo: time.Second, warmup: 250 * time.Millisecond, idleSettle: 3 * time.Second,
		keepalive: 5 * time.Second, broadcast: 1500 * time.Millisecond, runs: 3, memRuns: 1, scaleRuns: 1,
		memConns: 5000, budget: 6 * time.Minute}
	full = windows{echo: 4 * time.Second, warmup: time.Second, idleSettle: 5 * time.Second,
		keepalive: 10 * time.Second, broadcast: 6 * time.Second, runs: 5, memRuns: 3, scaleRuns: 3, everywhere: true,
		memConns: 10000, budget: time.Hour}
)

// Tether's keepalive defaults, which issue 17's idle figures hold every
// server to (each in its own way: see docs/bench.md).
const (
	defaultPingInterval = 20 * time.Second
	defaultPingTimeout  = 20 * time.Second
)

func scenarios(w windows) []scenario {
	memNote := ""
	if w.memConns < 10000 {
		memNote = fmt.Sprintf("The quick run holds %s connections to stay within its time; `make bench-full` holds 10,000. ", grouped(float64(w.memConns)))
	}
	// Quick runs leave Node and python out of the longer scenarios.
	more, moreNoRaw := slices.Concat(goLibs, []string{"rawtcp"}), goLibs
	// Issue 17's rows: Tether's engines and `tether serve` beside the
	// event-driven peer (nbio) and the peers the issue names.
	idle17 := slices.Concat(engines, []string{"tether-serve", "nbio", "gws", "gobwas"})
	ka17 := slices.Concat(engines, []string{"nbio", "gws", "rawtcp"})
	if w.everywhere {
		more, moreNoRaw = echoLibs, slices.Concat(goLibs, crossLang)
		idle17 = append(idle17, "gorilla", "coder")
		ka17 = slices.Concat(engines, []string{"tether-serve", "nbio"}, goPeers, []string{"rawtcp"})
	}
	throughput := []metric{
		{key: "msgs", label: "msg/s", ratio: true},
		{key: "cpu_us", label: "server CPU µs/msg", lower: true, ratio: true, digits: 2},
		{key: "p50_us", label: "p50 µs", lower: true},
		{key: "p99_us", label: "p99 µs", lower: true},
	}
	memory := []metric{
		{key: "rss_kib", label: "RSS KiB/conn", lower: true, ratio: true, digits: 2},
		{key: "heap_kib", label: "Go heap KiB/conn", lower: true, digits: 2},
		{key: "stack_kib", label: "stacks KiB/conn", lower: true, digits: 2},
		{key: "goroutines", label: "goroutines/conn", lower: true, digits: 2},
	}
	rssNote := fmt.Sprintf("Server RSS growth per connection: VmRSS from /proc/PID/status %s after the server holds the last connection "+
		"(no GC forced, the same for every server: what the kernel sees, garbage not yet collected included), minus VmRSS before the first. "+
		"Heap and stacks (runtime.MemStats after a forced GC, read after the RSS) and goroutines come from benchserver's /stats; "+
		"`tether serve` has no such port, so only its goroutines are shown (go_goroutines from its /metrics). ", w.idleSettle)
	ka17Note := "Keepalive at Tether's defaults, 20 s ping interval and 20 s pong timeout, each server in its own way (docs/bench.md): Tether's keepalive (`tether serve`: its defaults), " +
		"nbio's `Conn.Keepalive` with `Upgrader.KeepaliveTime`, a timer per connection for gws and gobwas, a goroutine with a ticker for gorilla and coder. "
	return []scenario{
		// Issue 17 first, so that a run past its time budget cuts the others.
		{id: "e-on", title: "5,000 idle connections, keepalive on (20 s): server memory per connection", libs: idle17, runs: w.memRuns,
			note:    ka17Note + rssNote,
			metrics: memory, measure: memRun(w, 5000, defaultPingInterval, defaultPingTimeout, false)},
		{id: "e-19k", title: "19,000 idle connections on one server process, keepalive on (20 s): server memory per connection", libs: idle17, runs: w.memRuns,
			note:    ka17Note + rssNote + "The client side is split over two `tether bench` processes (20,000 open files per process); the server holds all 19,000.",
			metrics: memory, measure: memRun(w, 19000, defaultPingInterval, defaultPingTimeout, false)},
		{id: "f", title: "19,000 connections on one server process, pinged every second: server CPU on keepalive", libs: ka17, runs: w.scaleRuns,
			note: "The server pings each connection every second (Tether: PingInterval 1 s; nbio: `Conn.Keepalive(1s)`; the others as in (e-on)) and the clients, " +
				"two `tether bench` processes (the open-file limit), answer; the pong timeout is Tether's default, 20 s. CPU is the server's utime+stime from /proc/PID/stat over the window " +
				"(which starts two intervals after the last connection opened), divided by the pings the clients answered in that window: the cost of one ping round trip. " +
				"Raw TCP is the floor: one goroutine writes every ping (no timer per connection, no round-trip time, no timeout) and each connection's goroutine reads its pong. " +
				"On loopback a write also runs the receiving socket's kernel work on the sender's CPU, so a ping's write costs more here than on a network.",
			metrics: []metric{
				{key: "cpu_us_ping", label: "CPU µs/ping", lower: true, ratio: true, digits: 2},
				{key: "cpu_pct", label: "server CPU % of a core", lower: true, digits: 1},
				{key: "pings_s", label: "pings/s answered"},
				{key: "cadence_pct", label: "% of the pings due", digits: 0},
			},
			measure: keepaliveRun(w, 19000, time.Second)},
		{id: "b-100", title: "100 connections, 1 KiB echo, closed loop", libs: slices.Clone(ka17), runs: w.runs,
			note:    "Server CPU per message (utime+stime from /proc/PID/stat over the window, divided by the messages echoed) ranks the servers; msg/s is capped by the client's core.",
			metrics: throughput, measure: echoRun(w, 100, 1024, false)},
		{id: "b-10k", title: "10,000 connections of which 1 % are busy: 100 echo 1 KiB, 9,900 stay idle", libs: slices.Concat(engines, []string{"nbio", "gws"}), runs: w.runs,
			note: "A second `tether bench` process holds the 9,900 idle connections open (keepalive off) while the first drives the 100 busy ones closed loop; " +
				"the server's CPU over the window is divided by the messages echoed.",
			metrics: throughput, measure: mixedEchoRun(w, 9900, 100, 1024)},
		{id: "g", title: "Handshakes per second", libs: slices.Concat(more[:1], []string{"tether-goroutine", "nbio"}, more[1:]), runs: w.runs,
			note: "16 clients open a connection, complete the closing handshake, and open the next.",
			metrics: []metric{
				{key: "hs", label: "handshakes/s", ratio: true},
				{key: "cpu_us", label: "server CPU µs/handshake", lower: true, ratio: true, digits: 1},
				{key: "p50_us", label: "p50 µs", lower: true, digits: 0},
			},
			measure: handshakeRun(w, 16)},
		// Issue 8's.
		{id: "a", title: "One connection, 64 B request-response latency", libs: echoLibs, runs: w.runs,
			note: "Closed loop: the next message leaves when the reply is in.",
			metrics: []metric{
				{key: "p50_us", label: "p50 µs", lower: true, ratio: true, digits: 1},
				{key: "p99_us", label: "p99 µs", lower: true, digits: 1},
				{key: "msgs", label: "msg/s"},
				{key: "cpu_us", label: "server CPU µs/msg", lower: true, ratio: true, digits: 2},
			},
			measure: echoRun(w, 1, 64, false)},
		{id: "b", title: "1,000 connections, 1 KiB echo, closed loop", libs: echoLibs, runs: w.runs,
			note:    "msg/s is capped by the client's core on this machine; server CPU per message ranks the servers.",
			metrics: throughput, measure: echoRun(w, 1000, 1024, false)},
		{id: "c", title: "1,000 connections, 16 KiB echo, closed loop", libs: more, runs: w.runs,
			metrics: throughput, measure: echoRun(w, 1000, 16<<10, false)},
		{id: "d", title: "One connection streaming 1 MiB messages", libs: more, runs: w.runs,
			note: "Echo of 1 MiB binary messages, closed loop; MB/s one way.",
			metrics: []metric{
				{key: "mbps", label: "MB/s", ratio: true, digits: 0},
				{key: "cpu_ms_mb", label: "server CPU ms/MB", lower: true, ratio: true, digits: 3},
			},
			measure: echoRun(w, 1, 1<<20, false)},
		{id: "e-off", title: fmt.Sprintf("%s idle connections, keepalive off: server memory per connection", grouped(float64(w.memConns))), libs: goLibs, runs: w.memRuns, fullOnly: true,
			note:    memNote + rssNote,
			metrics: memory, measure: memRun(w, w.memConns, 0, 0, false)},
		{id: "h", title: "Broadcast of 1 KiB to 10,000 subscribers", libs: goLibs, runs: w.scaleRuns,
			note: "One publisher, one broadcast at a time: time until the last subscriber has it (median over the broadcasts of the window).",
			metrics: []metric{
				{key: "to_last_ms", label: "to the last, ms", lower: true, ratio: true, digits: 1},
				{key: "p50_ms", label: "p50 delivery ms", lower: true, digits: 1},
				{key: "cpu_ms", label: "server CPU ms/broadcast", lower: true, ratio: true, digits: 1},
			},
			measure: broadcastRun(w, 10000, 1024)},
		{id: "i-b", title: "(b) with compression: 1,000 connections, 1 KiB echo, permessage-deflate", libs: moreNoRaw, runs: w.runs,
			note:    "The client offers permessage-deflate as a browser does; each server picks its parameters (the extensions column). Messages are JSON-like text, about 3x compressible.",
			metrics: append(slices.Clone(throughput), metric{key: "ext", label: "context takeover"}), measure: echoRun(w, 1000, 1024, true)},
		{id: "i-e", title: fmt.Sprintf("(e) with compression: %s idle connections, keepalive on, permessage-deflate negotiated", grouped(float64(w.memConns))), libs: goLibs, runs: w.memRuns, fullOnly: true,
			note: memNote + rssNote, metrics: memory, measure: memRun(w, w.memConns, defaultPingInterval, defaultPingTimeout, true)},
	}
}

// serverSpec is how to start lib's server: pings every keepalive (0: none)
// with a pong timeout (0: 10 s), compression accepted or not.
func (r *runner) serverSpec(lib string, keepalive, timeout time.Duration, compression bool) serverSpec {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	switch lib {
	case "node", "python":
		argv := []string{"node", r.peerDir + "/echo.js"}
		if lib == "python" {
			argv = []string{"/usr/bin/python3", r.peerDir + "/echo.py"}
		}
		if compression {
			argv = append(argv, "--compression")
		}
		return serverSpec{argv: argv}
	case "tether-serve":
		// The command as shipped, but for its connection cap (10,000 by
		// default), lifted for the 19,000-connection runs.
		return serverSpec{argv: []string{r.tetherBin, "serve", "--addr", "127.0.0.1:0", "--max-conns", "0",
			"--ping-interval", keepalive.String(), "--ping-timeout", timeout.String()}, env: r.tetherEnv, metrics: true}
	}
	base, env := lib, []string(nil)
	switch lib {
	case "tether":
		env = r.tetherEnv
	case "tether-goroutine":
		base, env = "tether", []string{engineVar + "=goroutine"}
	}
	argv := []string{r.serverBin, "-lib", base, "-keepalive", keepalive.String(), "-keepalive-timeout", timeout.String()}
	if compression {
		argv = append(argv, "-compression")
	}
	if v := r.variants[base]; v != "" {
		argv = append(argv, "-variant", v)
	}
	return serverSpec{argv: argv, env: env}
}
