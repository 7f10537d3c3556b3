package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The measurements: each starts the server, drives it with `tether bench`
// and turns what the client and /proc report into a sample.

func echoRun(w windows, conns, size int, compression bool) func(context.Context, *runner, string) (sample, error) {
	return func(ctx context.Context, r *runner, lib string) (sample, error) {
		srv, err := r.startServer(r.serverSpec(lib, 0, 0, compression))
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

// memRun holds conns idle connections (the client split over processes
// past 9,500) and measures what they add to the server: VmRSS from /proc
// for every server, read the same way (no GC forced) w.idleSettle after the
// server holds them all; then, where the server tells, its heap and stacks
// after a GC and its goroutines.
func memRun(w windows, conns int, keepalive, timeout time.Duration, compression bool) func(context.Context, *runner, string) (sample, error) {
	return func(ctx context.Context, r *runner, lib string) (sample, error) {
		srv, err := r.startServer(r.serverSpec(lib, keepalive, timeout, compression))
		if err != nil {
			return nil, err
		}
		defer srv.stop()
		time.Sleep(300 * time.Millisecond) // the server's own start-up allocations
		base, err := srv.footprint()
		if err != nil {
			return nil, err
		}
		ic, err := r.holdIdle(srv, conns, compression)
		if err != nil {
			return nil, err
		}
		defer ic.stop()
		select {
		case <-time.After(w.idleSettle):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		held, err := srv.footprint()
		if err != nil {
			return nil, err
		}
		if !ic.alive() {
			return nil, fmt.Errorf("the client ended early: %s", lastLine(ic.stderr.String()))
		}
		n := float64(conns)
		if held.conns >= 0 {
			n = held.conns - base.conns
		}
		if n < float64(conns)*0.99 {
			return nil, fmt.Errorf("server holds %v of %d connections", n, conns)
		}
		s := sample{"rss_kib": (held.rss - base.rss) / n / 1024}
		if held.heap >= 0 {
			s["heap_kib"] = (held.heap - base.heap) / n / 1024
			s["stack_kib"] = (held.stack - base.stack) / n / 1024
		}
		if held.goroutines >= 0 {
			s["goroutines"] = (held.goroutines - base.goroutines) / n
		}
		return s, nil
	}
}

// keepaliveRun holds conns connections on one server process that pings
// each every interval, and divides the server's CPU time over the window
// by the pings the clients answered in it.
func keepaliveRun(w windows, conns int, interval time.Duration) func(context.Context, *runner, string) (sample, error) {
	return func(ctx context.Context, r *runner, lib string) (sample, error) {
		// Tether's default pong timeout: a loaded machine may delay pongs
		// by seconds, and a connection closed for it spoils the run.
		srv, err := r.startServer(r.serverSpec(lib, interval, defaultPingTimeout, false))
		if err != nil {
			return nil, err
		}
		defer srv.stop()
		// Two intervals of warm-up after the last connection opened: each
		// library's first pings come one interval after its connection's
		// start, and all clients' windows start together.
		args := []string{"--mode", "idle", "--conns", fmt.Sprint(conns), "--procs", fmt.Sprint(clientProcs(conns)),
			"--warmup", (2 * interval).String(), "--duration", w.keepalive.String(), "--timeout", "30s", "--no-close-handshake",
			srv.url + "/echo"}
		run, err := r.runClient(ctx, []*server{srv}, args, nil)
		if err != nil {
			return nil, err
		}
		res := run.res
		if res.Connected < conns*99/100 {
			return nil, fmt.Errorf("%d of %d connected: %v", res.Connected, conns, res.Errors)
		}
		if n := res.ErrorCount(); n > int64(conns)/100 {
			return nil, fmt.Errorf("%d connections ended during the run: %s", n, formatCounts(res.Errors))
		}
		if res.PingsInWindow == 0 {
			return nil, errors.New("no ping answered in the window")
		}
		// A server starved of its CPU (the machine is shared) falls behind
		// its cadence: the others skip nothing but ping late, Tether waits
		// for a pong before its next ping. The CPU per round trip still
		// holds; the report shows the share of the pings due that came.
		due := float64(conns) * res.WindowS / interval.Seconds()
		return sample{
			"cadence_pct": float64(res.PingsInWindow) / due * 100,
			"cpu_pct":     run.cpu / res.WindowS * 100,
			"pings_s":     float64(res.PingsInWindow) / res.WindowS,
			"cpu_us_ping": run.cpu / float64(res.PingsInWindow) * 1e6,
			"errors":      float64(res.ErrorCount()),
		}, nil
	}
}

// mixedEchoRun holds idle connections open from one client process while
// another drives busy connections in a closed-loop echo, and divides the
// server's CPU over the window by the messages echoed.
func mixedEchoRun(w windows, idle, busy, size int) func(context.Context, *runner, string) (sample, error) {
	return func(ctx context.Context, r *runner, lib string) (sample, error) {
		srv, err := r.startServer(r.serverSpec(lib, 0, 0, false))
		if err != nil {
			return nil, err
		}
		defer srv.stop()
		ic, err := r.holdIdle(srv, idle, false)
		if err != nil {
			return nil, err
		}
		defer ic.stop()
		var (
			held    float64
			heldErr error
		)
		args := []string{"--conns", fmt.Sprint(busy), "--size", fmt.Sprint(size),
			"--duration", w.echo.String(), "--warmup", w.warmup.String(), "--no-close-handshake", srv.url + "/echo"}
		run, err := r.runClient(ctx, []*server{srv}, args, func() { held, heldErr = srv.conns() })
		if err != nil {
			return nil, err
		}
		if heldErr != nil {
			return nil, heldErr
		}
		if !ic.alive() {
			return nil, fmt.Errorf("the idle client ended during the run: %s", lastLine(ic.stderr.String()))
		}
		if held >= 0 && held < float64(idle+busy)*0.99 {
			return nil, fmt.Errorf("server holds %v of %d connections", held, idle+busy)
		}
		res := run.res
		if res.Messages == 0 {
			return nil, fmt.Errorf("no message echoed: errors %v", res.Errors)
		}
		return sample{
			"msgs":   res.PerSecond(),
			"cpu_us": run.cpu / float64(res.Messages) * 1e6,
			"p50_us": res.LatencyUS.P50, "p99_us": res.LatencyUS.P99,
			"errors": float64(res.ErrorCount()),
		}, nil
	}
}

func handshakeRun(w windows, clients int) func(context.Context, *runner, string) (sample, error) {
	return func(ctx context.Context, r *runner, lib string) (sample, error) {
		srv, err := r.startServer(r.serverSpec(lib, 0, 0, false))
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
		srv, err := r.startServer(r.serverSpec(lib, 0, 0, false))
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
