// Package heapbudget measures what an idle WebSocket connection costs a
// server in live heap, for the budget tests of the root package and of
// `tether serve`.
//
// The clients run in a peer process (the test binary run again, see Peer),
// so that the server's process holds only its own side of each connection.
// The server's heap is read after garbage collections, before and after
// the peer opens its connections; with the memory profile sampling every
// allocation, the growth is also split by the place that allocated it. The
// goroutine structures the runtime allocates for new goroutines are left
// out: a goroutine and its stack are the engine's to remove (issue 17), not
// the connection state's: the goroutine structures of runtime's free list
// are made beforehand, and any made meanwhile are counted apart.
package heapbudget

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherws/tether/internal/wire"
)

// envPeer names the environment variable that makes the helper test a peer:
// "addr path n".
const envPeer = "TETHER_HEAPBUDGET_PEER"

const readyLine = "heapbudget: ready"

// Peer is the body of the helper test the peer process runs: when the
// environment says so, it opens the connections, answers the server's pings
// (its own keepalive is off) and holds them until its standard input
// closes. Otherwise it skips.
func Peer(t *testing.T) {
	spec := os.Getenv(envPeer)
	if spec == "" {
		t.Skip("runs as the peer process of a heap budget test")
	}
	f := strings.Fields(spec)
	if len(f) != 3 {
		t.Fatalf("%s=%q", envPeer, spec)
	}
	addr, path := f[0], f[1]
	n, err := strconv.Atoi(f[2])
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]net.Conn, n)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				c, err := open(addr, path)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					continue
				}
				conns[i] = c
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d connections failed, the first: %v", len(errs), n, errs[0])
	}
	fmt.Println(readyLine)
	io.Copy(io.Discard, os.Stdin) // until the test is done
	for _, c := range conns {
		c.Close()
	}
}

// open opens a WebSocket connection by hand and answers its pings on a
// goroutine: the peer's cost is its own business, but it must be light
// enough for thousands.
func open(addr, path string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	var k [16]byte
	rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nUser-Agent: heapbudget\r\n\r\n", path, addr, key)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		c.Close()
		return nil, fmt.Errorf("handshake: %s", resp.Status)
	}
	go answer(c, br)
	return c, nil
}

// answer reads the server's frames, answering pings, until the connection
// ends.
func answer(c net.Conn, br *bufio.Reader) {
	defer c.Close()
	var hdr [wire.MaxHeaderSize]byte
	var p [wire.MaxControlPayload]byte
	for {
		if _, err := io.ReadFull(br, hdr[:2]); err != nil {
			return
		}
		n := wire.HeaderSize(hdr[0], hdr[1])
		if _, err := io.ReadFull(br, hdr[2:n]); err != nil {
			return
		}
		h, _, err := wire.DecodeHeader(hdr[:n])
		if err != nil {
			return
		}
		if !h.Opcode.IsControl() {
			if _, err := br.Discard(int(h.Length)); err != nil {
				return
			}
			continue
		}
		if h.Length > wire.MaxControlPayload {
			return
		}
		body := p[:h.Length]
		if _, err := io.ReadFull(br, body); err != nil {
			return
		}
		switch h.Opcode {
		case wire.OpPing:
			out := wire.Header{Fin: true, Opcode: wire.OpPong, Masked: true, Length: h.Length}
			rand.Read(out.Key[:])
			frame := wire.AppendHeader(nil, out)
			start := len(frame)
			frame = append(frame, body...)
			wire.Mask(out.Key, 0, frame[start:])
			c.Write(frame)
		case wire.OpClose:
			return
		}
	}
}

// peer is a running peer process.
type peer struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan error
}

// startPeer runs the helper test named helper in a new process, holding n
// connections to addr's path, and returns once they are open.
func startPeer(t testing.TB, helper, addr, path string, n int) *peer {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+helper+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d", envPeer, addr, path, n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &peer{cmd: cmd, stdin: stdin, done: make(chan error, 1)}
	ready := make(chan bool, 1)
	var out strings.Builder
	go func() {
		sc := bufio.NewScanner(stdout)
		found := false
		for sc.Scan() {
			if !found && sc.Text() == readyLine {
				found = true
				ready <- true
				continue
			}
			out.WriteString(sc.Text() + "\n")
		}
		if !found {
			ready <- false
		}
		p.done <- cmd.Wait()
	}()
	select {
	case ok := <-ready:
		if !ok {
			err := <-p.done
			t.Fatalf("peer process failed (%v):\n%s", err, out.String())
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatal("peer process not ready after 2 minutes")
	}
	return p
}

// stop closes the peer's connections and waits for it to exit.
func (p *peer) stop() {
	p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// Config says what to measure.
type Config struct {
	// Helper is the test that calls Peer, for the peer process to run.
	Helper string
	// Addr is the server's host:port, Path the request path to open.
	Addr, Path string
	// N is how many connections to open.
	N int
	// Open reports how many connections the server holds open.
	Open func() int
	// Settle, if set, runs once the connections are open, before the heap
	// is read: time for the server to reach its idle state (a dashboard's
	// tick, say).
	Settle func()
}

// Result is what one idle connection cost the server.
type Result struct {
	// PerConn is the growth of the live heap per connection, goroutine
	// structures left out.
	PerConn float64
	// Goroutines is the growth in goroutines per connection.
	Goroutines float64
	// GoroutineHeap is the heap of goroutine structures allocated meanwhile,
	// per connection (left out of PerConn).
	GoroutineHeap float64
	// Sites is the growth by allocation site, largest first.
	Sites []Site
	// Unattributed is the part of the growth the profile does not place.
	Unattributed float64
}

// Site is the live heap one place in the code added per connection.
type Site struct {
	Where string // the allocating function and line, and what it called
	Bytes float64
	Objs  float64
}

// Measure opens cfg.N connections from a peer process, waits for the server
// to hold them and reads what they cost it. Each call uses the peer once,
// so the connections' first-time costs (maps and tables that grow) count.
func Measure(t testing.TB, cfg Config) Result {
	t.Helper()
	// Every allocation is profiled while the connections open; after, the
	// rate is the usual again, so that the server's own work meanwhile
	// (a dashboard's reads) runs at its usual pace and is not mistaken
	// for the connections' cost.
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = old }()

	// The runtime keeps the structures of goroutines that ended, for the
	// next to use: have enough of them for every goroutine the connections
	// will start (readers, handlers, timers' callbacks), so that none is
	// counted.
	warmGoroutines(4 * cfg.N)
	openBefore := cfg.Open()
	before, beforeG, beforeProf := snapshot()
	p := startPeer(t, cfg.Helper, cfg.Addr, cfg.Path, cfg.N)
	defer func() {
		p.stop()
		waitFor(t, "the server to see the connections close", func() bool { return cfg.Open() == openBefore })
	}()
	waitFor(t, "the server to hold every connection", func() bool { return cfg.Open() == openBefore+cfg.N })
	// The HTTP handlers return once they hand their connection over:
	// wait for their goroutines to be gone.
	waitFor(t, "the goroutines to settle", func() bool {
		g := runtime.NumGoroutine()
		time.Sleep(50 * time.Millisecond)
		return runtime.NumGoroutine() == g
	})
	runtime.MemProfileRate = old
	if cfg.Settle != nil {
		cfg.Settle()
	}
	// A server may be busy a moment at times even with idle connections
	// (a dashboard reads the registry twice a second): take the least of
	// a few readings.
	after, afterG, afterProf := snapshot()
	for range 4 {
		time.Sleep(130 * time.Millisecond)
		if h, g, prof := snapshot(); h < after {
			after, afterG, afterProf = h, g, prof
		}
	}

	n := float64(cfg.N)
	r := Result{Goroutines: float64(afterG-beforeG) / n}
	sites := map[string]*Site{}
	var attributed, gheap int64
	for where, a := range afterProf {
		b := beforeProf[where]
		d, k := a.bytes-b.bytes, a.objs-b.objs
		if d == 0 {
			continue
		}
		if strings.HasPrefix(where, "runtime.malg") {
			gheap += d
			continue
		}
		attributed += d
		sites[where] = &Site{Where: where, Bytes: float64(d) / n, Objs: float64(k) / n}
	}
	growth := int64(after) - int64(before) - gheap
	r.PerConn = float64(growth) / n
	r.GoroutineHeap = float64(gheap) / n
	r.Unattributed = float64(growth-attributed) / n
	for _, s := range sites {
		r.Sites = append(r.Sites, *s)
	}
	slices.SortFunc(r.Sites, func(a, b Site) int {
		if a.Bytes != b.Bytes {
			if a.Bytes > b.Bytes {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Where, b.Where)
	})
	return r
}

// Log writes the result with the sites adding at least min bytes per
// connection.
func (r Result) Log(t testing.TB, title string, min float64) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %.0f B of live heap per idle connection (goroutine structures, %.0f B, left out; %.2f goroutines each)\n",
		title, r.PerConn, r.GoroutineHeap, r.Goroutines)
	rest := 0.0
	for _, s := range r.Sites {
		if s.Bytes < min && s.Bytes > -min {
			rest += s.Bytes
			continue
		}
		fmt.Fprintf(&b, "  %7.1f B %5.2f objs  %s\n", s.Bytes, s.Objs, s.Where)
	}
	fmt.Fprintf(&b, "  %7.1f B elsewhere (sites under %.0f B), %.1f B not in the profile", rest, min, r.Unattributed)
	t.Log(b.String())
}

// Total returns the bytes per connection of the sites whose place contains
// one of the substrings.
func (r Result) Total(subs ...string) float64 {
	var sum float64
	for _, s := range r.Sites {
		for _, sub := range subs {
			if strings.Contains(s.Where, sub) {
				sum += s.Bytes
				break
			}
		}
	}
	return sum
}

// warmGoroutines starts n goroutines at once and lets them end.
func warmGoroutines(n int) {
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range n {
		wg.Go(func() { <-release })
	}
	close(release)
	wg.Wait()
}

type usage struct{ bytes, objs int64 }

// snapshot collects garbage until the profile is current and returns the
// live heap, the goroutine count and the live heap by allocation site.
func snapshot() (heap uint64, goroutines int, sites map[string]usage) {
	// The profile lags two cycles behind; sync.Pool's victims need two.
	for range 4 {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	goroutines = runtime.NumGoroutine()
	var recs []runtime.MemProfileRecord
	for {
		n, ok := runtime.MemProfile(recs, true)
		if ok {
			recs = recs[:n]
			break
		}
		recs = make([]runtime.MemProfileRecord, n+100)
	}
	sites = map[string]usage{}
	for _, rec := range recs {
		live := rec.AllocBytes - rec.FreeBytes
		objs := rec.AllocObjects - rec.FreeObjects
		if live == 0 && objs == 0 {
			continue
		}
		k := siteOf(rec.Stack())
		u := sites[k]
		u.bytes += live
		u.objs += objs
		sites[k] = u
	}
	return ms.HeapAlloc, goroutines, sites
}

// siteOf names an allocation by the first function outside the runtime and
// the standard library's internals that made it, with its line, and the
// runtime function it went through ("makechan", "newobject").
func siteOf(stk []uintptr) string {
	frames := runtime.CallersFrames(stk)
	var via string
	var std []string
	for {
		f, more := frames.Next()
		name := f.Function
		switch {
		case name == "runtime.malg":
			return "runtime.malg (goroutine)"
		case strings.HasPrefix(name, "runtime.") && !strings.HasPrefix(name, "runtime.AddCleanup"):
			if via == "" || name == "runtime.makechan" || name == "runtime.newobject" || name == "runtime.makeslice" {
				via = strings.TrimPrefix(name, "runtime.")
			}
		case strings.Contains(name, "tetherws/tether") && !strings.Contains(name, "heapbudget"):
			w := short(name) + ":" + strconv.Itoa(f.Line)
			if len(std) > 0 {
				w += " > " + strings.Join(std, " > ")
			}
			return w + " (" + via + ")"
		default:
			if len(std) < 2 {
				std = append([]string{short(name)}, std...)
			}
		}
		if !more {
			break
		}
	}
	if len(std) > 0 {
		return strings.Join(std, " > ") + " (" + via + ")"
	}
	return via
}

// short drops the module path from a function name.
func short(name string) string {
	name = strings.TrimPrefix(name, "github.com/tetherws/tether/")
	name = strings.TrimPrefix(name, "github.com/tetherws/")
	return name
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
