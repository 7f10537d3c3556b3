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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tetherws/tether/loadgen"
)

// server is one running server process, pinned to the server CPU.
type server struct {
	cmd   *exec.Cmd
	url   string // ws://host:port
	stats string // http://host:port, Go servers only
}

// pinned returns a command that runs argv on cpu with taskset, and dies
// with the runner.
func pinned(cpu string, argv ...string) *exec.Cmd {
	cmd := exec.Command("taskset", append([]string{"-c", cpu}, argv...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// startServer runs argv pinned to the server CPU and waits for its
// "listening ws://..." line (and "stats http://..." when it prints one).
func (r *runner) startServer(argv []string) (*server, error) {
	cmd := pinned(r.serverCPU, argv...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &limitedWriter{w: &stderr, n: 4096}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd}
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
				s.url = v
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

func (s *server) readStats() (serverStats, error) {
	var st serverStats
	if s.stats == "" {
		return st, errors.New("no stats port")
	}
	resp, err := http.Get(s.stats + "/stats?gc=1")
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
