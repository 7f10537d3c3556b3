//go:build !unix

package loadgen

// OpenFileLimit returns 0: this system has no RLIMIT_NOFILE to read, so no
// run is split for it.
func OpenFileLimit() int { return 0 }
