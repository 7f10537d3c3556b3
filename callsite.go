package tether

import (
	"runtime"
	"strconv"
	"strings"
)

// callSite returns file:line of the first caller outside Tether's library
// code, so a warning can say where a connection was dialled or accepted.
// Test files of the module count as callers.
func callSite() string {
	var pcs [16]uintptr
	n := runtime.Callers(3, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
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
