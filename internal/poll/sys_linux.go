//go:build linux

package poll

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Reads and writes on the (non-blocking) sockets are raw system calls: they
// never block, so telling the scheduler about them (syscall.Syscall's
// entersyscall/exitsyscall) would only cost time, and from an idle process
// wake the runtime's sysmon thread (see the root package's sysio.go).

// sysScratch is a loop's reusable iovec array for writev.
type sysScratch struct {
	iov []unix.Iovec
}

// maxIovecs bounds one writev; what is left goes in the next.
const maxIovecs = 64

// sysRead reads once into p; again reports EAGAIN (nothing to read).
func sysRead(fd int, p []byte) (n int, again bool, err error) {
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch e {
		case 0:
			return int(r), false, nil
		case syscall.EINTR:
		case syscall.EAGAIN:
			return 0, true, nil
		default:
			return 0, false, osErr("read", e)
		}
	}
}

// sysWrite writes as much of p as the socket takes now.
func sysWrite(fd int, p []byte) (n int, err error) {
	for len(p) > 0 {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch e {
		case 0:
			n += int(r)
			p = p[r:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			return n, nil
		default:
			return n, osErr("write", e)
		}
	}
	return n, nil
}

// sysWritev writes bufs in one system call (as much as the socket takes).
func sysWritev(fd int, bufs [][]byte, s *sysScratch) (int, error) {
	if len(bufs) == 1 {
		return sysWrite(fd, bufs[0])
	}
	s.iov = s.iov[:0]
	for _, b := range bufs {
		if len(b) > 0 {
			v := unix.Iovec{Base: &b[0]}
			v.SetLen(len(b))
			s.iov = append(s.iov, v)
		}
	}
	defer clear(s.iov) // do not keep the buffers alive from here
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&s.iov[0])), uintptr(len(s.iov)))
		switch e {
		case 0:
			return int(r), nil
		case syscall.EINTR:
		case syscall.EAGAIN:
			return 0, nil
		default:
			return 0, osErr("writev", e)
		}
	}
}
