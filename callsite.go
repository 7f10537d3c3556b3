package tether

import (
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// site is where a connection was dialled or accepted. Capturing it costs
// only runtime.Callers; it is turned into file:line the first time a warning,
// a leak record or a snapshot asks.
// Every connection holds one, so it is kept small: eight frames reach past
// Tether's own (Reconnect, pool, hub) to the application's.
type site struct {
	pcs [8]uintptr
	n   int
	s   atomic.Pointer[string] // file:line, once resolved
}

// captureSite records the callers of Dial or Accept (skip=3 leaves out
// runtime.Callers, captureSite and the exported function). Connections
// opened from the same place share one site: a server's connections all
// come from one handler, so each holds a pointer rather than 80 bytes.
func captureSite() *site {
	var key [8]uintptr
	n := runtime.Callers(3, key[:])
	sitesMu.Lock()
	defer sitesMu.Unlock()
	if s := sites[key]; s != nil {
		return s
	}
	s := &site{pcs: key, n: n}
	if len(sites) < maxSites {
		sites[key] = s
	}
	return s
}

// sites interns captured call sites; past maxSites distinct ones (a program
// dialling from generated code, say) new ones are no longer kept.
var (
	sitesMu sync.Mutex
	sites   = map[[8]uintptr]*site{}
)

const maxSites = 4096

// String returns file:line of the first caller outside Tether's library
// code; test files of the module count as callers.
func (s *site) String() string {
	if s == nil {
		return "unknown"
	}
	if p := s.s.Load(); p != nil {
		return *p
	}
	str := s.resolve()
	s.s.Store(&str) // callers racing here store the same string
	return str
}

func (s *site) resolve() string {
	frames := runtime.CallersFrames(s.pcs[:s.n])
	for {
		f, more := frames.Next()
		if !isLibraryFrame(f) {
			return shortFile(f.File) + ":" + strconv.Itoa(f.Line)
		}
		if !more {
			return "unknown"
		}
	}
}

func isLibraryFrame(f runtime.Frame) bool {
	if strings.HasSuffix(f.File, "_test.go") {
		return false
	}
	for _, pkg := range []string{"github.com/tetherws/tether.", "github.com/tetherws/tether/pool.", "github.com/tetherws/tether/hub."} {
		if strings.HasPrefix(f.Function, pkg) {
			return true
		}
	}
	return false
}

// shortFile keeps the last two elements of a path: enough to find the line,
// short enough to read.
func shortFile(path string) string {
	i := strings.LastIndexByte(path, '/')
	if i < 0 {
		return path
	}
	if j := strings.LastIndexByte(path[:i], '/'); j >= 0 {
		return path[j+1:]
	}
	return path
}
