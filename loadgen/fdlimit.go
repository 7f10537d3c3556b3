package loadgen

import "fmt"

// fileMargin is what a run keeps in reserve for the process's own files:
// standard streams, the poller, the executable, listeners of a test.
const fileMargin = 32

// LimitError is a run that needs more open files than one process may have.
type LimitError struct {
	Conns int // connections asked for
	Files int // files the run needs
	Limit int // the process's open-file limit
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%d connections need about %d open files, over this process's limit of %d (RLIMIT_NOFILE, `ulimit -n`): "+
		"split the load over %d or more processes with --procs, or raise the limit",
		e.Conns, e.Files, e.Limit, ProcsFor(e.Conns, e.Limit))
}

// CheckOpenFiles returns a *LimitError when a run with conns connections
// needing files descriptors cannot fit under limit.
func CheckOpenFiles(conns, files, limit int) error {
	if limit > 0 && files > limit {
		return &LimitError{Conns: conns, Files: files, Limit: limit}
	}
	return nil
}

// ProcsFor is how many processes share conns connections so that each stays
// under limit open files.
func ProcsFor(conns, limit int) int {
	per := limit - fileMargin
	if per <= 0 {
		return 1
	}
	return max(1, (conns+per-1)/per)
}
