//go:build unix

// Command kabench measures what keepalive costs at scale: tens of thousands
// of server connections pinging every second.
//
// The open-file limit here is 20,000 per process, so the run splits the
// connections over several server processes and as many client processes
// (`-procs`). Each server process holds its share, lets keepalive run for a
// measured window, and reports its CPU time and memory per connection; the
// orchestrator runs the same with keepalive off and prints the difference.
//
//	go run ./internal/cmd/kabench -n 20000 -procs 2 -interval 1s -window 10s
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tetherws/tether"
)

func main() {
	role := flag.String("role", "run", "run (orchestrate), server or client")
	n := flag.Int("n", 20000, "connections in all (run) or in this process")
	procs := flag.Int("procs", 2, "server processes, and as many client processes (run)")
	interval := flag.Duration("interval", time.Second, "keepalive ping interval; 0 turns keepalive off")
	window := flag.Duration("window", 10*time.Second, "measured window")
	url := flag.String("url", "", "server URL (client)")
	cpuprofile := flag.String("cpuprofile", "", "write the server's CPU profile over the window to this file (server)")
	flag.Parse()
	var err error
	switch *role {
	case "server":
		err = server(*n, *interval, *window, *cpuprofile)
	case "client":
		err = clients(*url, *n)
	default:
		err = orchestrate(*n, *procs, *interval, *window)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kabench:", err)
		os.Exit(1)
	}
}

// result is what one server process reports.
type result struct {
	Conns      int     `json:"conns"`
	CPUSeconds float64 `json:"cpu_seconds"`
	Window     float64 `json:"window_seconds"`
	Pings      int64   `json:"pings"`
	Pongs      int64   `json:"pongs"`
	Closed     int     `json:"closed"`      // connections that ended during the run
	HeapBytes  uint64  `json:"heap_bytes"`  // heap in use for the connections
	StackBytes uint64  `json:"stack_bytes"` // goroutine stacks for the connections
}

func server(n int, interval, window time.Duration, cpuprofile string) error {
	logger := slog.New(slog.DiscardHandler)
	opts := &tether.AcceptOptions{ConnOptions: tether.ConnOptions{
		PingInterval: interval, PingTimeout: 5 * time.Second, Logger: logger}}
	if interval <= 0 {
		opts.PingInterval = -1
	}
	var (
		mu    sync.Mutex
		conns []*tether.Conn
		ready = make(chan struct{})
	)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	base := memNow()
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := tether.Accept(w, r, opts)
		if err != nil {
			return
		}
		mu.Lock()
		conns = append(conns, c)
		if len(conns) == n {
			close(ready)
		}
		mu.Unlock()
	}))
	fmt.Printf("listening ws://%s/\n", ln.Addr())
	select {
	case <-ready:
	case <-time.After(2 * time.Minute):
		return fmt.Errorf("only %d of %d connections arrived", len(conns), n)
	}
	time.Sleep(2 * interval) // let the first (jittered) pings settle into their cadence
	mem := memNow()
	cpu0 := cpuTime()
	pings0, pongs0 := counts(conns)
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		defer f.Close()
	}
	time.Sleep(window)
	if cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	cpu1 := cpuTime()
	pings1, pongs1 := counts(conns)
	res := result{
		Conns: n, CPUSeconds: (cpu1 - cpu0).Seconds(), Window: window.Seconds(),
		Pings: pings1 - pings0, Pongs: pongs1 - pongs0,
		HeapBytes: mem.heap - base.heap, StackBytes: mem.stack - base.stack,
	}
	for _, c := range conns {
		if err := c.Err(); err != nil {
			res.Closed++
			if res.Closed == 1 {
				fmt.Fprintln(os.Stderr, "kabench: first closed connection:", err)
			}
		}
	}
	json.NewEncoder(os.Stdout).Encode(res)
	for _, c := range conns {
		c.CloseNow()
	}
	return nil
}

func counts(conns []*tether.Conn) (pings, pongs int64) {
	for _, c := range conns {
		st := c.Stats()
		pings += st.PingsSent
		pongs += st.PongsReceived
	}
	return
}

type memStats struct{ heap, stack uint64 }

func memNow() memStats {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memStats{heap: m.HeapInuse, stack: m.StackInuse}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clients opens n connections that only answer pings, until the server
// closes them.
func clients(url string, n int) error {
	opts := &tether.DialOptions{FanOut: true, ConnOptions: tether.ConnOptions{PingInterval: -1, Logger: slog.New(slog.DiscardHandler)}}
	var (
		wg     sync.WaitGroup
		failed atomic.Int64
		next   atomic.Int64
	)
	for range 64 {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				c, _, err := tether.Dial(context.Background(), url, opts)
				if err != nil {
					failed.Add(1)
					continue
				}
				go func() {
					for {
						if _, _, err := c.Read(context.Background()); err != nil {
							return
						}
					}
				}()
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("%d dials failed", f)
	}
	select {} // the server ends the run; the orchestrator kills us
}

// orchestrate runs the measurement with keepalive on and off and prints the
// cost per connection.
func orchestrate(n, procs int, interval, window time.Duration) error {
	fmt.Printf("keepalive cost: %d server connections in %d server processes (+%d client processes), "+
		"%v interval, %v window; the open-file limit (20,000 per process) is why the run is split\n",
		n, procs, procs, interval, window)
	on, err := runOnce(n, procs, interval, window)
	if err != nil {
		return err
	}
	off, err := runOnce(n, procs, 0, window)
	if err != nil {
		return err
	}
	cpuOn, cpuOff := on.CPUSeconds/on.Window, off.CPUSeconds/off.Window
	fmt.Printf("%-14s %10s %12s %14s %14s\n", "keepalive", "pings/s", "server CPU", "heap/conn", "stacks/conn")
	for _, r := range []struct {
		name string
		res  result
	}{{"on (" + interval.String() + ")", on}, {"off", off}} {
		fmt.Printf("%-14s %10.0f %11.1f%% %12.0f B %12.0f B\n", r.name, float64(r.res.Pings)/r.res.Window,
			100*r.res.CPUSeconds/r.res.Window, float64(r.res.HeapBytes)/float64(r.res.Conns), float64(r.res.StackBytes)/float64(r.res.Conns))
	}
	perPing := (cpuOn - cpuOff) / (float64(on.Pings) / on.Window)
	fmt.Printf("keepalive machinery: %.1f%% of one core for %d connections at %v, %.1f us of CPU per ping round trip, %+.0f B heap per connection\n",
		100*(cpuOn-cpuOff), n, interval, perPing*1e6, (float64(on.HeapBytes)-float64(off.HeapBytes))/float64(n))
	if on.Pongs < on.Pings*9/10 { // pongs in flight at the window's end, and a loaded machine
		return fmt.Errorf("only %d of %d pings answered", on.Pongs, on.Pings)
	}
	return nil
}

// runOnce starts procs server processes with n/procs connections each, fills
// them from procs client processes, and sums their reports.
func runOnce(n, procs int, interval, window time.Duration) (result, error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	var (
		total result
		mu    sync.Mutex
		wg    sync.WaitGroup
		errs  = make(chan error, procs)
	)
	for i := range procs {
		share := n / procs
		if i == procs-1 {
			share = n - share*(procs-1)
		}
		wg.Go(func() {
			res, err := runPair(self, share, interval, window)
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			total.Conns += res.Conns
			total.CPUSeconds += res.CPUSeconds
			total.Window = res.Window
			total.Pings += res.Pings
			total.Pongs += res.Pongs
			total.HeapBytes += res.HeapBytes
			total.StackBytes += res.StackBytes
			mu.Unlock()
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return result{}, err
	default:
	}
	return total, nil
}

func runPair(self string, n int, interval, window time.Duration) (result, error) {
	srv := exec.Command(self, "-role", "server", "-n", fmt.Sprint(n), "-interval", interval.String(), "-window", window.String())
	srv.Stderr = os.Stderr
	out, _ := srv.StdoutPipe()
	if err := srv.Start(); err != nil {
		return result{}, err
	}
	defer srv.Wait()
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		srv.Process.Kill()
		return result{}, fmt.Errorf("server printed nothing")
	}
	url := strings.TrimPrefix(sc.Text(), "listening ")
	cli := exec.Command(self, "-role", "client", "-n", fmt.Sprint(n), "-url", url)
	cli.Stderr = os.Stderr
	if err := cli.Start(); err != nil {
		srv.Process.Kill()
		return result{}, err
	}
	defer func() {
		cli.Process.Kill()
		cli.Wait()
	}()
	if !sc.Scan() {
		return result{}, fmt.Errorf("server reported nothing")
	}
	var res result
	return res, json.Unmarshal(sc.Bytes(), &res)
}
