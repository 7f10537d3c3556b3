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
	if _, ok := helpers.Load(f.Function); ok {
		return true
	}
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

// Helper marks the function that calls it as a helper that opens
// connections for its callers, as testing.T.Helper marks a test helper: the
// call site recorded for a connection (the call_sites of the registry's
// duplicate-connection warnings, the call_site of a leak record and of
// ConnInfo) then names the line that called the helper, not the line in the
// helper that called Dial or Accept. Without it, every connection a shared
// helper dials is reported at the same line of the helper, and the warning
// cannot say which caller dialled twice.
//
//	func connect(ctx context.Context, url string) (*tether.Conn, error) {
//		tether.Helper()
//		c, _, err := tether.Dial(ctx, url, nil)
//		return c, err
//	}
//
// Helpers may call helpers; the call site is taken among the eight callers
// nearest to Dial or Accept, so a chain deeper than that reads "unknown".
// Helper may be called from any goroutine; a function once marked stays
// marked for the life of the process.
func Helper() {
	var pc [1]uintptr
	if runtime.Callers(2, pc[:]) == 0 {
		return
	}
	f, _ := runtime.CallersFrames(pc[:]).Next()
	if _, ok := helpers.Load(f.Function); !ok {
		helpers.Store(f.Function, struct{}{})
	}
}

// helpers holds the names of the functions marked by Helper; it only grows,
// as the program's functions are finite.
var helpers sync.Map
