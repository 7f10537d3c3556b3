package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tetherws/tether/loadgen"
)

// server is one running server process, pinned to the server CPU.
type server struct {
	cmd     *exec.Cmd
	url     string // ws://host:port
	stats   string // http://host:port, benchserver only
	metrics bool   // serves /metrics with go_goroutines (`tether serve`)
	baseFDs int    // descriptors open before any connection (see conns)
}

// serverSpec is how to start one server: its command line and what it
// adds to the environment.
type serverSpec struct {
	argv    []string
	env     []string // KEY=VALUE, added to the runner's environment
	metrics bool     // it serves /metrics (`tether serve`)
}

// engineVar selects Tether's engine process-wide (issue 17). Servers never
// inherit it from the runner: each row says what it sets.
const engineVar = "TETHER_ENGINE"

func (sp serverSpec) environ() []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, engineVar+"=") })
	return append(env, sp.env...)
}

// pinned returns a command that runs argv on cpu with taskset, and dies
// with the runner.
func pinned(cpu string, argv ...string) *exec.Cmd {
	cmd := exec.Command("taskset", append([]string{"-c", cpu}, argv...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// startServer runs the server pinned to the server CPU and waits for its
// "listening ws://..." line (`tether serve`: "listening on ws://...") and
// "stats http://..." when it prints one.
func (r *runner) startServer(sp serverSpec) (*server, error) {
	argv := sp.argv
	cmd := pinned(r.serverCPU, argv...)
	cmd.Env = sp.environ()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &limitedWriter{w: &stderr, n: 4096}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, metrics: sp.metrics}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(15 * time.Second)
	for s.url == "" || (s.stats == "" && strings.Contains(argv[0], "benchserver")) {
		select {
		case line, ok := <-lines:
			if !ok {
				s.stop()
				return nil, fmt.Errorf("%s exited: %s", argv[0], strings.TrimSpace(stderr.String()))
			}
			if v, ok := strings.CutPrefix(line, "listening "); ok {
				s.url = strings.TrimPrefix(v, "on ")
			}
			if v, ok := strings.CutPrefix(line, "stats "); ok {
				s.stats = v
			}
		case <-deadline:
			s.stop()
			return nil, fmt.Errorf("%s did not start: %s", argv[0], strings.TrimSpace(stderr.String()))
		}
	}
	go func() {
		for range lines {
		}
	}()
	s.baseFDs = s.fds()
	return s, nil
}

func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		s.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// cpu returns the server's CPU time (user + system) from /proc/PID/stat.
func (s *server) cpu() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces: fields count from the last ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / clockTicks
}

// rss returns the server's resident set (VmRSS in /proc/PID/status), in
// bytes: what the process holds as the kernel sees it, garbage the Go
// runtime has not collected or returned included.
func (s *server) rss() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS in /proc/PID/status")
}

// footprint is what a server holds: its RSS, and where it tells, its Go
// heap and stacks, goroutines and WebSocket connections (-1 where not).
type footprint struct{ rss, heap, stack, goroutines, conns float64 }

// footprint reads the RSS first, then the rest (a benchserver collects
// garbage before it answers, which must not touch the RSS figure).
func (s *server) footprint() (footprint, error) {
	f := footprint{heap: -1, stack: -1, goroutines: -1, conns: -1}
	var err error
	if f.rss, err = s.rss(); err != nil {
		return f, err
	}
	switch {
	case s.stats != "":
		st, err := s.readStats(true)
		if err != nil {
			return f, err
		}
		f.heap, f.stack, f.goroutines, f.conns = st.HeapInuse, st.StackInuse, st.Goroutines, st.Conns
	case s.metrics:
		if f.goroutines, err = s.metric("go_goroutines"); err != nil {
			return f, err
		}
		if f.conns, err = s.metric("tether_open_connections"); err != nil {
			return f, err
		}
	default:
		f.conns, _ = s.conns()
	}
	return f, nil
}

// metric reads a metric from a `tether serve`'s /metrics (served to
// loopback clients without a token), the sum of its series when it has
// labels.
func (s *server) metric(name string) (float64, error) {
	resp, err := http.Get(strings.Replace(s.url, "ws://", "http://", 1) + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("/metrics: %s", resp.Status)
	}
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("/metrics: %q: %v", line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on Linux.
const clockTicks = 100

// serverStats is what a benchserver's /stats returns.
type serverStats struct {
	CPUSeconds float64 `json:"cpu_s"`
	RSS        float64 `json:"rss"`
	HeapInuse  float64 `json:"heap_inuse"`
	StackInuse float64 `json:"stack_inuse"`
	Goroutines float64 `json:"goroutines"`
	Conns      float64 `json:"conns"`
}

// readStats asks a benchserver for its figures, after a garbage collection
// when gc is set.
func (s *server) readStats(gc bool) (serverStats, error) {
	var st serverStats
	if s.stats == "" {
		return st, errors.New("no stats port")
	}
	q := ""
	if gc {
		q = "?gc=1"
	}
	resp, err := http.Get(s.stats + "/stats" + q)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// clientRun is what one `tether bench` reported, with the servers' CPU
// time over its measured window.
type clientRun struct {
	res    *loadgen.Result
	cpu    float64 // server CPU seconds in the window, all servers
	stderr string
}

// runClient runs `tether bench args` pinned to the client CPU and samples
// the servers' CPU when it starts and ends its measured window; onMeasure
// runs at the start of the window (before the CPU sample).
func (r *runner) runClient(ctx context.Context, servers []*server, args []string, onMeasure func()) (*clientRun, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := pinned(r.clientCPU, append([]string{r.tetherBin, "bench", "--json"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &limitedWriter{w: &stderr, n: 8192}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		<-ctx.Done()
		cmd.Process.Kill()
	}()
	cpuNow := func() float64 {
		var t float64
		for _, s := range servers {
			t += s.cpu()
		}
		return t
	}
	run := &clientRun{}
	var cpu0 float64
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev struct{ Event string }
		if json.Unmarshal(line, &ev) == nil && ev.Event != "" {
			switch ev.Event {
			case "measure":
				if onMeasure != nil {
					onMeasure()
				}
				cpu0 = cpuNow()
			case "done":
				run.cpu = cpuNow() - cpu0
			}
			continue
		}
		run.res = &loadgen.Result{}
		if err := json.Unmarshal(line, run.res); err != nil {
			run.res = nil
		}
	}
	werr := cmd.Wait()
	run.stderr = strings.TrimSpace(stderr.String())
	if run.res != nil {
		r.lastErrors = run.res.Errors
	}
	if run.res == nil {
		if werr == nil {
			werr = errors.New("no result")
		}
		return run, fmt.Errorf("tether bench: %v: %s", werr, lastLine(run.stderr))
	}
	return run, nil
}

// idleClient is a load client that holds connections open while the
// runner measures the server (or beside the measured client), split over
// processes past the open-file limit.
type idleClient struct {
	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has ended
	stderr strings.Builder
}

// startIdle runs `tether bench --mode idle` with conns connections to url,
// pinned to the client CPU, and returns once they are all open (or failed).
// The client ends by itself after 3 minutes if stop is never called.
func (r *runner) startIdle(conns int, url string, compression bool) (*idleClient, error) {
	argv := []string{r.tetherBin, "bench", "--json", "--procs", fmt.Sprint(clientProcs(conns)), "--mode", "idle",
		"--conns", fmt.Sprint(conns), "--warmup", "500ms", "--duration", "3m", "--timeout", "30s", "--no-close-handshake"}
	if compression {
		argv = append(argv, "--compression")
	}
	cmd := pinned(r.clientCPU, append(argv, url)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c := &idleClient{cmd: cmd, done: make(chan struct{})}
	cmd.Stderr = &limitedWriter{w: &c.stderr, n: 4096}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	measuring := make(chan struct{})
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 64<<20)
		open := true
		for sc.Scan() {
			var ev struct{ Event string }
			if open && json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Event == "measure" {
				close(measuring)
				open = false
			}
		}
		cmd.Wait()
	}()
	select {
	case <-measuring:
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("idle client ended before its connections were up: %s", lastLine(c.stderr.String()))
	case <-time.After(2 * time.Minute):
		c.stop()
		return nil, errors.New("idle client: connections not up after 2 minutes")
	}
}

// alive says whether the idle client still runs (it ends early only when
// it fails).
func (c *idleClient) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// stop ends the client: SIGTERM first, on which a split run stops its
// processes too, then SIGKILL if it lingers.
func (c *idleClient) stop() {
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
}

// clientProcs is how many `tether bench` processes hold conns connections:
// at most 9,500 each, half the open-file limit, as the brief for issue 17's
// runs has it (one process could hold 19,000, but two dial faster).
func clientProcs(conns int) int { return (conns + 9499) / 9500 }

// holdIdle opens conns idle connections to srv's /echo from a background
// client and returns once the server holds them all, where it can tell
// (a loaded server may still be finishing handshakes the client saw
// complete).
func (r *runner) holdIdle(srv *server, conns int, compression bool) (*idleClient, error) {
	ic, err := r.startIdle(conns, srv.url+"/echo", compression)
	if err != nil {
		return nil, err
	}
	if err := srv.waitConns(conns, time.Minute); err != nil {
		ic.stop()
		return nil, err
	}
	return ic, nil
}

// waitConns waits until the server holds at least 99 % of want
// connections (its /stats, or `tether serve`'s tether_open_connections);
// servers that do not tell are not waited for.
func (s *server) waitConns(want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		n, err := s.conns()
		switch {
		case err != nil:
			return err
		case n < 0 || n >= float64(want)*0.99:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("server holds %v of %d connections after %v", n, want, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// conns is the WebSocket connections a benchserver holds (its /stats,
// which allocates nothing per connection), or else the server's open
// descriptors beyond those it had before any connection: polling `tether
// serve`'s /metrics would walk its registry each time and leave garbage in
// the RSS about to be measured. -1 when neither can be read.
func (s *server) conns() (float64, error) {
	if s.stats != "" {
		st, err := s.readStats(false)
		return st.Conns, err
	}
	n := s.fds()
	if n < 0 {
		return -1, nil
	}
	return float64(n - s.baseFDs), nil
}

// fds counts the server's open descriptors, -1 when it cannot.
func (s *server) fds() int {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	return len(fds)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// limitedWriter keeps the first n bytes written to it.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		q := p[:min(len(p), l.n)]
		l.n -= len(q)
		l.w.Write(q)
	}
	return len(p), nil
}
