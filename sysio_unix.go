//go:build unix

package tether

import (
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// rawSocket reports whether nc is a socket whose descriptor Go keeps
// non-blocking, so that a raw system call on it never blocks.
func rawSocket(nc net.Conn) (syscall.RawConn, bool) {
	var sc syscall.Conn
	switch t := nc.(type) {
	case *net.TCPConn:
		sc = t
	case *net.UnixConn:
		sc = t
	default:
		return nil, false
	}
	rc, err := sc.SyscallConn()
	return rc, err == nil
}

// sysRead reads into p with a raw read(2), retrying on EINTR.
func sysRead(fd uintptr, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if e == 0 {
			return int(n), 0
		}
		if e != syscall.EINTR {
			return 0, e
		}
	}
}

// rawWrite is one write's state for RawConn.Write's callback. The states
// are pooled, not kept per connection: a write holds one only while it
// lasts, so an idle connection holds none.
type rawWrite struct {
	p   []byte // what is left to write
	err syscall.Errno
	fn  func(fd uintptr) bool // write, bound once
}

var rawWrites = sync.Pool{New: func() any {
	w := new(rawWrite)
	w.fn = w.write
	return w
}}

// write is RawConn.Write's callback: it writes what it can and returns
// false to wait until the socket is writable again.
func (w *rawWrite) write(fd uintptr) bool {
	for len(w.p) > 0 {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&w.p[0])), uintptr(len(w.p)))
		switch e {
		case 0:
			w.p = w.p[n:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			w.err = e
			return true
		}
	}
	return true
}

// sockWrite writes p whole to nc, whose RawConn (from rawSocket) is rc, as
// nc.Write does (its deadline included), and fails the way it does.
func sockWrite(nc net.Conn, rc syscall.RawConn, p []byte) error {
	w := rawWrites.Get().(*rawWrite)
	w.p, w.err = p, 0
	err := rc.Write(w.fn)
	if err == nil && w.err != 0 {
		err = os.NewSyscallError("write", w.err)
	}
	w.p = nil
	rawWrites.Put(w)
	return sockErr("write", nc, err)
}
