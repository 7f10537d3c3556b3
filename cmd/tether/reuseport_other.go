//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package main

import (
	"errors"
	"syscall"
)

func reusePort(string, string, syscall.RawConn) error {
	return errors.New("--reuseport: SO_REUSEPORT is not available on this system")
}
