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
	metrics         []metric
	measure         func(ctx context.Context, r *runner, lib string) (sample, error)
}

// sample is one run's figures, by metric key.
type sample map[string]float64

// Library groups.
var (
	goPeers   = []string{"gorilla", "coder", "gobwas", "gws"}
	goLibs    = append([]string{"tether"}, goPeers...)
	crossLang = []string{"node", "python"}
	echoLibs  = slices.Concat(goLibs, []string{"rawtcp"}, crossLang)
)

// The peers are what Tether is ranked against; raw TCP is the limit.
func isPeer(lib string) bool { return lib != "tether" && lib != "rawtcp" }

// windows are the lengths of one profile (quick or full).
type windows struct {
	echo, warmup, idleSettle, keepalive, broadcast time.Duration
	runs, memRuns, scaleRuns                       int
	memConns                                       int           // connections in (e)
	budget                                         time.Duration // see runner.deadline
	// everywhere runs Node and python in every echo-like scenario, not
	// only in (a) and (b).
	everywhere bool
}

var (
	quick = windows{echo: time.Second, warmup: 250 * time.Millisecond, idleSettle: time.Second,
		keepalive: 5 * time.Second, broadcast: 1500 * time.Millisecond, runs: 3, memRuns: 1, scaleRuns: 1,
		memConns: 5000, budget: 5 * time.Minute}
	full = windows{echo: 4 * time.Second, warmup: time.Second, idleSettle: 3 * time.Second,
		keepalive: 10 * time.Second, broadcast: 6 * time.Second, runs: 5, memRuns: 3, scaleRuns: 3, everywhere: true,
		memConns: 10000, budget: time.Hour}
)

func scenarios(w windows) []scenario {
	memNote := ""
	if w.memConns < 10000 {
		memNote = fmt.Sprintf("The quick run holds %s connections to stay within its time; `make bench-full` holds 10,000. ", grouped(float64(w.memConns)))
	}
	// Quick runs leave Node and python out of the longer scenarios.
	more, moreNoRaw := slices.Concat(goLibs, []string{"rawtcp"}), goLibs
	if w.everywhere {
		more, moreNoRaw = echoLibs, slices.Concat(goLibs, crossLang)
	}
	throughput := []metric{
		{key: "msgs", label: "msg/s", ratio: true},
		{key: "cpu_us", label: "server CPU µs/msg", lower: true, ratio: true, digits: 2},
		{key: "p50_us", label: "p50 µs", lower: true},
		{key: "p99_us", label: "p99 µs", lower: true},
	}
	memory := []metric{
		{key: "rss_kib", label: "RSS KiB/conn", lower: true, ratio: true, digits: 1},
		{key: "heap_kib", label: "Go heap KiB/conn", lower: true, digits: 1},
		{key: "stack_kib", label: "stacks KiB/conn", lower: true, digits: 1},
		{key: "goroutines", label: "goroutines/conn", lower: true, digits: 1},
	}
	return []scenario{
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
		{id: "e-off", title: fmt.Sprintf("%s idle connections, keepalive off: server memory per connection", grouped(float64(w.memConns))), libs: goLibs, runs: w.memRuns,
			note:    memNote + "RSS from /proc, heap and stacks from runtime.MemStats after a GC, each minus the server's own before any connection.",
			metrics: memory, measure: memRun(w, w.memConns, 0, false)},
		{id: "e-on", title: fmt.Sprintf("%s idle connections, keepalive on (20 s): server memory per connection", grouped(float64(w.memConns))), libs: goLibs, runs: w.memRuns,
			note:    memNote + "Each library pings the way its docs show (see docs/bench.md): Tether's own keepalive; a goroutine with a ticker for gorilla and coder; a timer for gobwas and gws.",
			metrics: memory, measure: memRun(w, w.memConns, 20*time.Second, false)},
		{id: "f", title: "20,000 connections pinging every second: server CPU on keepalive", libs: slices.Concat(goLibs, []string{"rawtcp"}), runs: w.scaleRuns,
			note: "The open-file limit (20,000 per process) splits the run: two server processes of 10,000 connections each (both on the server CPU), " +
				"and `tether bench` splits its 20,000 over two client processes. CPU is both servers' over the window, in % of one core. " +
				"Raw TCP is the floor: one goroutine writes every ping (no timer per connection, no round-trip time, no timeout) and each connection's goroutine reads its pong. " +
				"On loopback a write also runs the receiving socket's kernel work on the sender's CPU, so a ping's write costs more here than on a network.",
			metrics: []metric{
				{key: "cpu_pct", label: "server CPU % of a core", lower: true, ratio: true, digits: 2},
				{key: "pings_s", label: "pings/s answered"},
				{key: "cpu_us_ping", label: "CPU µs/ping", lower: true, digits: 2},
			},
			measure: keepaliveRun(w, 20000, time.Second)},
		{id: "g", title: "Handshakes per second", libs: more, runs: w.runs,
			note: "16 clients open a connection, complete the closing handshake, and open the next.",
			metrics: []metric{
				{key: "hs", label: "handshakes/s", ratio: true},
				{key: "cpu_us", label: "server CPU µs/handshake", lower: true, ratio: true, digits: 1},
				{key: "p50_us", label: "p50 µs", lower: true, digits: 0},
			},
			measure: handshakeRun(w, 16)},
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
		{id: "i-e", title: fmt.Sprintf("(e) with compression: %s idle connections, keepalive on, permessage-deflate negotiated", grouped(float64(w.memConns))), libs: goLibs, runs: w.memRuns,
			note: memNote, metrics: memory, measure: memRun(w, w.memConns, 20*time.Second, true)},
	}
}

// serverArgv is the command line of lib's server.
func (r *runner) serverArgv(lib string, keepalive time.Duration, compression bool) []string {
	switch lib {
	case "node":
		argv := []string{"node", r.peerDir + "/echo.js"}
		if compression {
			argv = append(argv, "--compression")
		}
		return argv
	case "python":
		argv := []string{"/usr/bin/python3", r.peerDir + "/echo.py"}
		if compression {
			argv = append(argv, "--compression")
		}
		return argv
	}
	argv := []string{r.serverBin, "-lib", lib, "-keepalive", keepalive.String(), "-keepalive-timeout", "10s"}
	if compression {
		argv = append(argv, "-compression")
	}
	if v := r.variants[lib]; v != "" {
		argv = append(argv, "-variant", v)
	}
	return argv
}

func echoRun(w windows, conns, size int, compression bool) func(context.Context, *runner, string) (sample, error) {
	return func(ctx context.Context, r *runner, lib string) (sample, error) {
		srv, err := r.startServer(r.serverArgv(lib, 0, compression))
		if err != nil {
			return nil, err
		}
		defer srv.stop()
		args := []string{"--conns", fmt.Sprint(conns), "--size", fmt.Sprint(size),
			"--duration", w.echo.String(), "--warmup", w.warmup.String(), "--no-close-handshake"}
		if compression {
			args = append(args, "--compression", "--text")
		}
		run, err := r.runClient(ctx, []*server{srv}, append(args, srv.url+"/echo"), nil)
		if err != nil {
			return nil, err
		}
		res := run.res
		if res.Messages == 0 {
			return nil, fmt.Errorf("no message echoed: errors %v", res.Errors)
		}
		s := sample{
			"msgs": res.PerSecond(), "mbps": res.MBPerSecond(),
			"cpu_us":    run.cpu / float64(res.Messages) * 1e6,
			"cpu_ms_mb": run.cpu * 1e3 / (float64(res.Bytes) / 1e6),
			"p50_us":    res.LatencyUS.P50, "p99_us": res.LatencyUS.P99,
			"errors": float64(res.ErrorCount()),
		}
		if compression {
			s["ext"] = 0
			if res.Extensions == "" {
				s["ext"] = -1 // not negotiated
			} else if !strings.Contains(res.Extensions, "server_no_context_takeover") {
				s["ext"] = 1
			}
		}
		return s, nil
	}
}

func memRun(w windows, conns int, keepalive time.Duration, compression bool) func(context.Context, *runner, string) (sample, error) {
	return func(ctx context.Context, r *runner, lib string) (sample, error) {
		srv, err := r.startServer(r.serverArgv(lib, keepalive, compression))
		if err != nil {
			return nil, err
		}
		defer srv.stop()
		base, err := srv.readStats()
		if err != nil {
			return nil, err
		}
		var (
			held    serverStats
			statErr error
		)
		args := []string{"--mode", "idle", "--conns", fmt.Sprint(conns), "--warmup", w.idleSettle.String(), "--duration", "3s",
			"--no-close-handshake"}
		if compression {
			args = append(args, "--compression")
		}
		run, err := r.runClient(ctx, []*server{srv}, append(args, srv.url+"/echo"), func() { held, statErr = srv.readStats() })
		if err != nil {
			return nil, err
		}
		if statErr != nil {
			return nil, statErr
		}
		n := held.Conns - base.Conns
		if n < float64(conns)*0.99 {
			return nil, fmt.Errorf("server holds %v of %d connections (stats %+v, base %+v): client connected %d, errors %v", n, conns, held, base, run.res.Connected, run.res.Errors)
		}
		return sample{
			"rss_kib":    (held.RSS - base.RSS) / n / 1024,
			"heap_kib":   (held.HeapInuse - base.HeapInuse) / n / 1024,
			"stack_kib":  (held.StackInuse - base.StackInuse) / n / 1024,
			"goroutines": (held.Goroutines - base.Goroutines) / n,
		}, nil
	}
}

func keepaliveRun(w windows, conns int, interval time.Duration) func(context.Context, *runner, string) (sample, error) {
	return func(ctx context.Context, r *runner, lib string) (sample, error) {
		var srvs []*server
		defer func() {
			for _, s := range srvs {
				s.stop()
			}
		}()
		// Three intervals of warm-up: the 20,000 connections open over a few
		// seconds, and each library's first pings come one interval later.
		args := []string{"--mode", "idle", "--conns", fmt.Sprint(conns), "--warmup", (3 * interval).String(),
			"--duration", w.keepalive.String(), "--timeout", "20s", "--no-close-handshake"}
		for range 2 {
			s, err := r.startServer(r.serverArgv(lib, interval, false))
			if err != nil {
				return nil, err
			}
			srvs = append(srvs, s)
			args = append(args, s.url+"/echo")
		}
		run, err := r.runClient(ctx, srvs, args, nil)
		if err != nil {
			return nil, err
		}
		res := run.res
		if res.Connected < conns*99/100 {
			return nil, fmt.Errorf("%d of %d connected: %v", res.Connected, conns, res.Errors)
		}
		pingsPerS := float64(res.PingsInWindow) / res.WindowS
		return sample{
			"cpu_pct":     run.cpu / res.WindowS * 100,
			"pings_s":     pingsPerS,
			"cpu_us_ping": run.cpu / (pingsPerS * res.WindowS) * 1e6,
			"errors":      float64(res.ErrorCount()),
		}, nil
	}
}

func handshakeRun(w windows, clients int) func(context.Context, *runner, string) (sample, error) {
	return func(ctx context.Context, r *runner, lib string) (sample, error) {
		srv, err := r.startServer(r.serverArgv(lib, 0, false))
		if err != nil {
			return nil, err
		}
		defer srv.stop()
		args := []string{"--mode", "handshake", "--conns", fmt.Sprint(clients), "--duration", w.echo.String(),
			"--warmup", w.warmup.String(), srv.url + "/echo"}
		run, err := r.runClient(ctx, []*server{srv}, args, nil)
		if err != nil {
			return nil, err
		}
		res := run.res
		if res.Messages == 0 {
			return nil, fmt.Errorf("no handshake: %v", res.Errors)
		}
		return sample{
			"hs":     res.PerSecond(),
			"cpu_us": run.cpu / float64(res.Messages) * 1e6,
			"p50_us": res.LatencyUS.P50,
			"errors": float64(res.ErrorCount()),
		}, nil
	}
}

func broadcastRun(w windows, subs, size int) func(context.Context, *runner, string) (sample, error) {
	return func(ctx context.Context, r *runner, lib string) (sample, error) {
		srv, err := r.startServer(r.serverArgv(lib, 0, false))
		if err != nil {
			return nil, err
		}
		defer srv.stop()
		args := []string{"--mode", "broadcast", "--conns", fmt.Sprint(subs), "--size", fmt.Sprint(size),
			"--duration", w.broadcast.String(), "--warmup", "500ms", "--no-close-handshake", srv.url + "/broadcast"}
		run, err := r.runClient(ctx, []*server{srv}, args, nil)
		if err != nil {
			return nil, err
		}
		res := run.res
		if len(res.ToLastS) == 0 {
			return nil, fmt.Errorf("no broadcast reached every subscriber: %v", res.Errors)
		}
		return sample{
			"to_last_ms": median(res.ToLastS) * 1e3,
			"p50_ms":     res.LatencyUS.P50 / 1e3,
			"cpu_ms":     run.cpu / float64(res.Messages) * 1e3,
			"errors":     float64(res.ErrorCount()),
		}, nil
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
