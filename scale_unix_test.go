//go:build unix

package tether

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tetherws/tether/internal/clock"
	"github.com/tetherws/tether/internal/poll"
)

// Issue 17's promise, first half: an idle connection owns no goroutine.
// The server side runs here, Accept then Go with an echo handle, keepalive
// on; the clients run in a child process (this test binary again, in
// TestScaleClientsHelperProcess), since one process may hold only 20,000
// descriptors and each connection costs one on either side.

const (
	idleConns = 10_000
	// scaleClientEnv tells the child process to act as the clients: its
	// value is "URL N".
	scaleClientEnv = "TETHER_SCALE_CLIENTS"
	// maxAddedGoroutines is what the engine may add whatever the number of
	// connections: a loop per core, and a few for the test's own plumbing.
	maxAddedGoroutines = 16
)

// TestIdleConnsOwnNoGoroutine: 10,000 idle server connections, pinged
// every second and answering, add no more than a fixed number of
// goroutines to the process. It logs how many they add and the live heap
// each holds.
//
// Keepalive runs on a fake clock that the test moves a second at a time:
// each move sends a ping on every connection, and the test waits for every
// pong before the next. With the wall clock, 10,000 pings a second under
// the race detector take more than this machine's two cores (pongs came
// back late enough to fail connections); the fake clock makes the rounds
// independent of the machine's speed. The pings, the pongs and everything
// they do on the engine are real. (What the fake clock leaves out: with
// the wall clock each keepalive timer fires on a goroutine the runtime
// starts for it and which ends once the ping is written; at 10,000
// connections a snapshot catches up to a few hundred of them.)
//
// The goroutine engine gives each connection a reader goroutine by design,
// so under TETHER_ENGINE=goroutine there is nothing to show (and the race
// detector would stop the process at 8,128 goroutines).
func TestIdleConnsOwnNoGoroutine(t *testing.T) {
	if envEngine() == EngineGoroutine {
		t.Skip("TETHER_ENGINE=goroutine: every connection has a reader goroutine by design")
	}
	if !poll.Supported() {
		t.Skip("no event engine on this system")
	}
	n := idleConns
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	// Each process holds one descriptor per connection (the server another
	// for a moment while the engine adopts it), plus a few of its own.
	if limit := int(rl.Cur) - 256; limit < n {
		if limit < 1000 {
			t.Skipf("open-file limit %d: too low to show anything", rl.Cur)
		}
		t.Logf("open-file limit %d: %d connections, not %d", rl.Cur, limit, n)
		n = limit
	}

	var (
		mu      sync.Mutex
		conns   = make([]*Conn, 0, n)
		closing bool // the test is over: a connection accepted now is closed at once
	)
	fc := clock.NewFake()
	reg := NewRegistry() // listed, as by default, but apart from other tests
	reg.Logger = discard // "several connections from one client": they are
	opts := &AcceptOptions{ConnOptions: ConnOptions{
		PingInterval: time.Second, PingTimeout: 2 * time.Second, Clock: fc,
		Logger: discard, Registry: reg,
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, opts)
		if err != nil {
			return
		}
		if err := c.Go(echoHandle(c), nil); err != nil {
			c.CloseNow()
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if closing {
			c.CloseNow()
			return
		}
		conns = append(conns, c)
	}))
	t.Cleanup(srv.Close)

	heap0, stack0 := liveMem()
	g0 := runtime.NumGoroutine()

	var phases []string
	t0 := time.Now()
	phase := func(what string) { phases = append(phases, fmt.Sprintf("%s %.1fs", what, time.Since(t0).Seconds())) }
	cl := startScaleClients(t, "ws"+strings.TrimPrefix(srv.URL, "http")+"/idle", n)
	t.Cleanup(func() {
		// Close in batches: each connection's end runs on a goroutine
		// for a moment, and the race detector allows 8,128 at once.
		mu.Lock()
		all := conns
		closing = true
		mu.Unlock()
		for i := 0; i < len(all); i += 1000 {
			batch := all[i:min(i+1000, len(all))]
			for _, c := range batch {
				c.CloseNow()
			}
			waitEngineConns(t, len(all)-i-len(batch))
		}
		phase("closed")
		cl.stop(t)
		waitEngineConns(t, 0)
		phase("ended")
		t.Logf("time: %s", strings.Join(phases, ", "))
	})
	cl.expect(t, fmt.Sprintf("up %d", n))
	phase("up")
	// The last handlers may still be between Accept and the append when
	// their clients have their answer.
	var all []*Conn
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		mu.Lock()
		all = conns
		mu.Unlock()
		if len(all) >= n || time.Now().After(deadline) {
			break
		}
	}
	if len(all) != n {
		t.Fatalf("%d connections accepted, want %d", len(all), n)
	}
	if got := ReadEngineStats().Conns; got != n {
		t.Fatalf("the engine holds %d connections, want %d", got, n)
	}

	// Three rounds of keepalive: a ping on every connection, and its pong.
	// The goroutines are counted all along, on this goroutine.
	g1 := runtime.NumGoroutine()
	const rounds = 3
	for r := int64(1); r <= rounds; r++ {
		fc.Advance(time.Second)
		g1 = max(g1, runtime.NumGoroutine())
		pending := all
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
			g1 = max(g1, runtime.NumGoroutine())
			late := pending[:0:0]
			for _, c := range pending {
				st := c.Stats()
				if err := c.Err(); err != nil || st.PingsSent != r {
					t.Fatalf("round %d: %d pings sent, ended with %v; want %d pings, open", r, st.PingsSent, err, r)
				}
				if st.PongsReceived < r {
					late = append(late, c)
				}
			}
			if pending = late; len(pending) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d connections without their pong", r, len(pending))
			}
		}
	}
	phase("pinged")
	heap1, stack1 := liveMem()
	added := g1 - g0
	t.Logf("%d idle connections, %d rounds of pings answered: %d goroutines added at most (%d before, %d since)",
		n, rounds, added, g0, g1)
	t.Logf("per idle server connection: %d B of live heap, %d B of goroutine stacks (race detector: %v)",
		(heap1-heap0)/int64(n), (stack1-stack0)/int64(n), raceEnabled)
	if added > maxAddedGoroutines {
		t.Errorf("%d idle connections added %d goroutines, want at most %d", n, added, maxAddedGoroutines)
	}

	// Go serves them all: one echo on each, from the child.
	cl.send(t, "echo")
	cl.expect(t, fmt.Sprintf("echoed %d", n))
	phase("echoed")
	for _, c := range all {
		if st := c.Stats(); st.MessagesIn != 1 || st.MessagesOut != 1 || c.Err() != nil {
			t.Fatalf("after one echo: in %d, out %d, err %v", st.MessagesIn, st.MessagesOut, c.Err())
		}
	}
}

// liveMem returns the heap in use after a collection, and the goroutine
// stacks in use (not part of the heap).
func liveMem() (heap, stacks int64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc), int64(ms.StackInuse)
}

// waitEngineConns waits until the engine holds n connections.
func waitEngineConns(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for ReadEngineStats().Conns > n {
		if time.Now().After(deadline) {
			t.Fatalf("the engine still holds %d connections, want %d", ReadEngineStats().Conns, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// scaleClients is the child process that holds the clients. It talks in
// lines: it writes "up N" once its N connections are open and "echoed N"
// after an echo on each; it reads "echo", and ends when its stdin closes.
// Its pipes are files, so that os/exec starts no goroutine here to copy
// them (this process's goroutines are being counted).
type scaleClients struct {
	cmd    *exec.Cmd
	in     *os.File
	out    *os.File
	lines  *bufio.Reader
	stderr *os.File
	done   bool
}

func startScaleClients(t *testing.T, url string, n int) *scaleClients {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := os.CreateTemp(t.TempDir(), "clients")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestScaleClientsHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), scaleClientEnv+"="+url+" "+strconv.Itoa(n), "TETHER_ENGINE=poll")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	inR.Close()
	outW.Close()
	cl := &scaleClients{cmd: cmd, in: inW, out: outR, lines: bufio.NewReader(outR), stderr: stderr}
	t.Cleanup(func() { // on a failure before stop
		if !cl.done {
			cl.in.Close()
			cmd.Process.Kill()
			cmd.Wait()
			cl.out.Close()
		}
	})
	return cl
}

// expect reads the child's output up to the line want.
func (cl *scaleClients) expect(t *testing.T, want string) {
	t.Helper()
	cl.out.SetReadDeadline(time.Now().Add(3 * time.Minute))
	var seen []string
	for {
		line, err := cl.lines.ReadString('\n')
		line = strings.TrimSpace(line)
		if line == "scale-clients: "+want {
			return
		}
		if line != "" {
			seen = append(seen, line)
		}
		if err != nil {
			t.Fatalf("the client process did not say %q (%v); it said:\n%s\n%s", want, err, strings.Join(seen, "\n"), cl.errText())
		}
	}
}

func (cl *scaleClients) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(cl.in, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

// stop closes the child's stdin and waits for it to end, well.
func (cl *scaleClients) stop(t *testing.T) {
	t.Helper()
	cl.done = true
	cl.in.Close()
	kill := time.AfterFunc(time.Minute, func() { cl.cmd.Process.Kill() })
	rest, _ := io.ReadAll(cl.lines)
	err := cl.cmd.Wait()
	kill.Stop()
	cl.out.Close()
	if err != nil {
		t.Errorf("the client process: %v\n%s\n%s", err, rest, cl.errText())
	}
}

func (cl *scaleClients) errText() string {
	b, _ := os.ReadFile(cl.stderr.Name())
	return string(b)
}

// TestScaleClientsHelperProcess is the client side of
// TestIdleConnsOwnNoGoroutine, in a process of its own; run by itself, it
// skips.
func TestScaleClientsHelperProcess(t *testing.T) {
	spec := os.Getenv(scaleClientEnv)
	if spec == "" {
		t.Skip("the clients of TestIdleConnsOwnNoGoroutine, run by it in a child process")
	}
	url, ns, _ := strings.Cut(spec, " ")
	n, err := strconv.Atoi(ns)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]*Conn, n)
	defer func() {
		for i := 0; i < n; i += 1000 {
			batch := conns[i:min(i+1000, n)]
			for _, c := range batch {
				if c != nil {
					c.CloseNow()
				}
			}
			waitEngineConns(t, n-i-len(batch))
		}
	}()
	// The clients do not ping: the server's pings are answered on the loop.
	opts := &DialOptions{ConnOptions: ConnOptions{PingInterval: -1, Logger: discard, Registry: NoRegistry, Engine: EnginePoll}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	each(n, func(i int) error {
		c, _, err := Dial(ctx, url, opts)
		conns[i] = c
		return err
	}, t)
	fmt.Printf("scale-clients: up %d\n", n)

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "echo":
			var echoed atomic.Int64
			each(n, func(i int) error {
				msg := []byte("echo " + strconv.Itoa(i))
				if err := conns[i].Write(ctx, Text, msg); err != nil {
					return err
				}
				_, p, err := conns[i].Read(ctx)
				if err == nil && string(p) != string(msg) {
					err = fmt.Errorf("echo %q, want %q", p, msg)
				}
				echoed.Add(1)
				return err
			}, t)
			fmt.Printf("scale-clients: echoed %d\n", echoed.Load())
		}
	}
	// stdin closed: the server has closed its side; the deferred close
	// ends whatever is left.
}

// each runs f for 0..n-1 on a few goroutines, failing t at the first error.
func each(n int, f func(i int) error, t *testing.T) {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make(chan error, 1)
	)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					select {
					case errs <- fmt.Errorf("connection %d: %w", i, err):
					default:
					}
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}
