//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package poll

import "golang.org/x/sys/unix"

// On macOS and the BSDs system calls go through x/sys/unix (through libc
// where the system requires it), and writev is a loop of writes: not every
// BSD has it in x/sys.

type sysScratch struct{}

const maxIovecs = 16

func sysRead(fd int, p []byte) (n int, again bool, err error) {
	for {
		n, err := unix.Read(fd, p)
		switch err {
		case nil:
			return n, false, nil
		case unix.EINTR:
		case unix.EAGAIN:
			return 0, true, nil
		default:
			return 0, false, osErr("read", err)
		}
	}
}

func sysWrite(fd int, p []byte) (n int, err error) {
	for len(p) > 0 {
		k, err := unix.Write(fd, p)
		switch err {
		case nil:
			n += k
			p = p[k:]
		case unix.EINTR:
		case unix.EAGAIN:
			return n, nil
		default:
			return n, osErr("write", err)
		}
	}
	return n, nil
}

func sysWritev(fd int, bufs [][]byte, _ *sysScratch) (int, error) {
	total := 0
	for _, b := range bufs {
		n, err := sysWrite(fd, b)
		total += n
		if err != nil || n < len(b) {
			return total, err
		}
	}
	return total, nil
}
