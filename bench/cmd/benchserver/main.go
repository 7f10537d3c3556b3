// Command benchserver runs one library's echo and broadcast server for the
// benchmarks, and a side port that reports the process's own figures.
//
//	benchserver -lib tether|gorilla|coder|gobwas|gws|rawtcp [-addr 127.0.0.1:0]
//	            [-keepalive 20s] [-compression] [-stats 127.0.0.1:0]
//
// It prints "listening ws://ADDR" and "stats http://ADDR" on standard
// output, then serves until killed. GET /stats on the side port returns
// JSON: CPU time (getrusage), RSS (/proc/self/status), Go heap and stacks,
// goroutines and open WebSocket connections; ?gc=1 collects garbage first,
// so heap figures count live memory only. The side port also serves
// net/http/pprof's profiles under /debug/pprof/.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof" // profiles on the side port: /debug/pprof/
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tetherws/tether/bench/servers"
)

func main() {
	lib := flag.String("lib", "tether", "library: "+strings.Join(servers.Libs(), ", "))
	addr := flag.String("addr", "127.0.0.1:0", "WebSocket address")
	statsAddr := flag.String("stats", "127.0.0.1:0", "address of the /stats side port")
	var o servers.Options
	flag.DurationVar(&o.Keepalive, "keepalive", 0, "server ping interval (0: no pings)")
	flag.DurationVar(&o.KeepaliveTimeout, "keepalive-timeout", 20*time.Second, "pong timeout, where the library takes one")
	flag.BoolVar(&o.Compression, "compression", false, "accept permessage-deflate")
	flag.StringVar(&o.Variant, "variant", "", "a variation of the server, for profiling (tether: serve, read, reader, noregistry)")
	flag.Parse()
	if err := run(*lib, *addr, *statsAddr, o); err != nil {
		fmt.Fprintln(os.Stderr, "benchserver:", err)
		os.Exit(1)
	}
}

func run(lib, addr, statsAddr string, o servers.Options) error {
	srv, err := servers.New(lib, o)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	sln, err := net.Listen("tcp", statsAddr)
	if err != nil {
		return err
	}
	http.HandleFunc("/stats", stats)
	go http.Serve(sln, nil)
	fmt.Printf("listening ws://%s\nstats http://%s\n", ln.Addr(), sln.Addr())
	return srv.Serve(ln)
}

// Stats is what /stats returns.
type Stats struct {
	CPUSeconds float64 `json:"cpu_s"`
	RSS        uint64  `json:"rss"`
	HeapInuse  uint64  `json:"heap_inuse"`
	StackInuse uint64  `json:"stack_inuse"`
	Sys        uint64  `json:"sys"`
	Goroutines int     `json:"goroutines"`
	Conns      int64   `json:"conns"`
}

func stats(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("gc") != "" {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	s := Stats{
		CPUSeconds: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds(),
		RSS:        rss(),
		HeapInuse:  m.HeapInuse,
		StackInuse: m.StackInuse,
		Sys:        m.Sys,
		Goroutines: runtime.NumGoroutine(),
		Conns:      servers.Conns.Load(),
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(s)
}

// rss reads VmRSS from /proc/self/status, in bytes.
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
