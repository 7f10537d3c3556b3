//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package poll

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

const supported = true

// dupConn takes nc's socket out of the Go runtime's poller: it duplicates
// the descriptor (close-on-exec), makes the duplicate non-blocking (the
// flag lives on the shared file description, which Go had set; set it
// anyway in case nc came from elsewhere), then closes nc, so the runtime
// forgets its descriptor and its net.Conn can be collected. The socket
// lives on through the duplicate.
func dupConn(nc net.Conn) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, ErrNoDescriptor
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, ErrNoDescriptor
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) {
		fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, osErr("fcntl", derr)
	}
	switch nc.(type) {
	case *net.TCPConn, *net.UnixConn:
		// Go's own sockets are non-blocking already: two system calls
		// saved on every handshake.
	default:
		if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(fd)
			return -1, osErr("fcntl", err)
		}
	}
	nc.Close()
	return fd, nil
}

func sysClose(fd int) error { return osErr("close", unix.Close(fd)) }

func sysShutdownWrite(fd int) error { return osErr("shutdown", unix.Shutdown(fd, unix.SHUT_WR)) }
