package tether

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/tetherws/tether/internal/bufpool"
)

// readBufSize is the read buffer a connection borrows while bytes arrive.
const readBufSize = 4096

// connReader is a connection's read buffer. On a plain TCP connection it
// holds no memory while the connection waits: it borrows a pooled buffer only
// when the socket has data (the read happens inside RawConn.Read's callback,
// which parks on the runtime's poller until the socket is readable) and
// returns it as soon as every byte in it has been consumed. An idle
// connection therefore keeps no read buffer, as epoll-based designs do,
// without a goroutine of its own for polling. Connections without a raw file
// descriptor (TLS, pipes) keep one buffer for their lifetime.
type connReader struct {
	nc   net.Conn
	rc   syscall.RawConn // nil but on TCP and Unix sockets (see sysio.go)
	buf  *[]byte
	r, w int32 // unread bytes of buf; int32 keeps the struct in 96 bytes

	// readFn is b.read bound once, so reading allocates nothing: it reads
	// into dst, or into a borrowed buffer when dst is nil, and leaves its
	// results in n and rerr.
	readFn func(fd uintptr) bool
	dst    []byte
	n      int
	rerr   syscall.Errno
}

func newConnReader(nc net.Conn, early *bufio.Reader) *connReader {
	b := &connReader{nc: nc}
	if rc, ok := rawSocket(nc); ok {
		b.rc = rc
		b.readFn = b.read
	}
	if early != nil && early.Buffered() > 0 {
		// Bytes read past the handshake (a client that sent a frame at once).
		n := early.Buffered()
		b.buf = bufpool.Get(max(n, readBufSize))
		*b.buf = (*b.buf)[:cap(*b.buf)]
		io.ReadFull(early, (*b.buf)[:n])
		b.w = int32(n)
	}
	return b
}

func (b *connReader) buffered() int { return int(b.w - b.r) }

// release gives the buffer back once it holds nothing unread.
func (b *connReader) release() {
	if b.r == b.w && b.buf != nil && b.rc != nil {
		bufpool.Put(b.buf)
		b.buf, b.r, b.w = nil, 0, 0
	}
}

// fill reads at least one more byte into the buffer.
func (b *connReader) fill() error {
	if b.buf == nil && b.rc != nil {
		return b.fillIdle()
	}
	if b.buf == nil {
		b.buf = bufpool.Get(readBufSize)
		*b.buf = (*b.buf)[:cap(*b.buf)]
	}
	if b.r > 0 { // make room at the end
		n := copy(*b.buf, (*b.buf)[b.r:b.w])
		b.r, b.w = 0, int32(n)
	}
	n, err := b.sockRead((*b.buf)[b.w:])
	b.w += int32(n)
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// fillIdle waits for the socket to become readable without holding a
// buffer, then reads into a borrowed one.
func (b *connReader) fillIdle() error {
	b.n, b.rerr = 0, 0
	if err := b.rc.Read(b.readFn); err != nil {
		b.dropEmpty()
		return sockErr("read", b.nc, err)
	}
	if b.rerr != 0 {
		b.dropEmpty()
		return sockErr("read", b.nc, os.NewSyscallError("read", b.rerr))
	}
	if b.n <= 0 {
		b.dropEmpty()
		return io.EOF
	}
	b.r, b.w = 0, int32(b.n)
	return nil
}

// read is RawConn.Read's callback: it reads into dst, or with dst nil into
// a borrowed buffer, or returns false to park until the socket is readable.
func (b *connReader) read(fd uintptr) bool {
	if b.dst != nil {
		n, e := sysRead(fd, b.dst)
		if e == syscall.EAGAIN {
			return false
		}
		b.n, b.rerr = n, e
		return true
	}
	bp := bufpool.Get(readBufSize)
	p := (*bp)[:cap(*bp)]
	b.n, b.rerr = sysRead(fd, p)
	if b.rerr == syscall.EAGAIN {
		bufpool.Put(bp)
		return false
	}
	b.buf = bp
	*b.buf = p
	return true
}

// sockRead reads into p as net.Conn.Read does: at least one byte, io.EOF at
// the end, the read deadline honored.
func (b *connReader) sockRead(p []byte) (int, error) {
	if b.rc == nil || len(p) == 0 {
		return b.nc.Read(p)
	}
	b.dst, b.n, b.rerr = p, 0, 0
	err := b.rc.Read(b.readFn)
	b.dst = nil
	if err == nil && b.rerr != 0 {
		err = os.NewSyscallError("read", b.rerr)
	}
	if err == nil && b.n == 0 {
		err = io.EOF
	}
	return b.n, sockErr("read", b.nc, err)
}

func (b *connReader) dropEmpty() {
	if b.buf != nil && b.r == b.w {
		bufpool.Put(b.buf)
		b.buf, b.r, b.w = nil, 0, 0
	}
}

// Peek returns the next n bytes (n <= readBufSize) without consuming them.
func (b *connReader) Peek(n int) ([]byte, error) {
	for b.buffered() < n {
		if err := b.fill(); err != nil {
			if errors.Is(err, io.EOF) && b.buffered() > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return (*b.buf)[b.r : int(b.r)+n], nil
}

// Discard consumes n buffered bytes.
func (b *connReader) Discard(n int) {
	b.r += int32(n)
	b.release()
}

// Read reads what is buffered, or reads large requests straight from the
// connection (the middle of a big payload), or fills the buffer first.
func (b *connReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.buffered() == 0 {
		if len(p) >= readBufSize {
			return b.sockRead(p)
		}
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, (*b.buf)[b.r:b.w])
	b.r += int32(n)
	b.release()
	return n, nil
}

// close returns the buffer for good.
func (b *connReader) close() {
	if b.buf != nil {
		bufpool.Put(b.buf)
		b.buf, b.r, b.w = nil, 0, 0
	}
}
