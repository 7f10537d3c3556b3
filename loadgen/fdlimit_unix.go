//go:build unix

package loadgen

import "syscall"

// OpenFileLimit returns this process's open-file limit (the soft
// RLIMIT_NOFILE, which the Go runtime raises to the hard limit at start), or
// 0 when it cannot be read.
func OpenFileLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	if rl.Cur > 1<<30 {
		return 1 << 30
	}
	return int(rl.Cur)
}
