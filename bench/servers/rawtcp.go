package servers

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// rawtcp is the limit: a goroutine per connection that answers the opening
// handshake and then echoes each frame (unmasked, as a server must) with
// one read buffer and one write per frame, nothing else: no message
// assembly, no UTF-8 check, no registry. Its socket I/O is Tether's (raw
// system calls, see sock). It serves /echo only.
//
// With Keepalive set it also pings, at the least cost Go allows: one
// goroutine for the whole server writes a ping to each connection once per
// interval, and the connection's own goroutine reads the pong and drops it.
// No timer per connection, no round-trip time, no timeout: the floor under
// any library's keepalive.
func init() {
	register("rawtcp", func(o Options) (Server, error) {
		s := &rawTCP{}
		if o.Keepalive > 0 {
			s.pinger = &rawPinger{}
			go s.pinger.run(o.Keepalive)
		}
		return s, nil
	})
}

type rawTCP struct{ pinger *rawPinger }

func (s *rawTCP) Serve(ln net.Listener) error {
	for {
		nc, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			Conns.Add(1)
			defer Conns.Add(-1)
			defer nc.Close()
			if sk, ok := newSock(nc); ok {
				nc = sk
			}
			br := bufio.NewReaderSize(nc, 4096)
			if rawHandshake(nc, br) != nil {
				return
			}
			if s.pinger != nil {
				s.pinger.add(nc)
				defer s.pinger.remove(nc)
			}
			rawEcho(nc, br)
		}()
	}
}

// sock is a TCP connection whose reads and writes make their system calls
// directly (syscall.RawSyscall, in RawConn's callbacks, which wait on the
// runtime's poller), as Tether's do: the socket is non-blocking, so the
// calls need no scheduler bookkeeping, and the limit is not held back by it.
type sock struct {
	net.Conn
	rc              syscall.RawConn
	readFn, writeFn func(fd uintptr) bool // bound once: no allocation per call
	rp              []byte
	rn              int
	rerr            syscall.Errno
	wmu             sync.Mutex // the pinger writes too
	wp              []byte
	werr            syscall.Errno
}

func newSock(nc net.Conn) (*sock, bool) {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil, false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil, false
	}
	s := &sock{Conn: nc, rc: rc}
	s.readFn, s.writeFn = s.read, s.write
	return s, true
}

func (s *sock) read(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&s.rp[0])), uintptr(len(s.rp)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		case 0:
			s.rn = int(n)
		}
		s.rerr = e
		return true
	}
}

func (s *sock) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.rp, s.rn, s.rerr = p, 0, 0
	err := s.rc.Read(s.readFn)
	s.rp = nil
	switch {
	case err != nil:
		return 0, err
	case s.rerr != 0:
		return 0, s.rerr
	case s.rn == 0:
		return 0, io.EOF
	}
	return s.rn, nil
}

func (s *sock) write(fd uintptr) bool {
	for len(s.wp) > 0 {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&s.wp[0])), uintptr(len(s.wp)))
		switch e {
		case 0:
			s.wp = s.wp[n:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			s.werr = e
			return true
		}
	}
	return true
}

func (s *sock) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.wp, s.werr = p, 0
	err := s.rc.Write(s.writeFn)
	n := len(p) - len(s.wp)
	s.wp = nil
	if err == nil && s.werr != 0 {
		err = s.werr
	}
	return n, err
}

// rawPinger pings every connection once per interval, spread evenly over it:
// each of the interval's hundred slices pings the hundredth of the
// connections whose turn it is.
type rawPinger struct {
	mu    sync.Mutex
	conns []net.Conn
	index map[net.Conn]int
}

const rawPingSlices = 100

func (p *rawPinger) add(nc net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.index == nil {
		p.index = map[net.Conn]int{}
	}
	p.index[nc] = len(p.conns)
	p.conns = append(p.conns, nc)
}

func (p *rawPinger) remove(nc net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i, ok := p.index[nc]
	if !ok {
		return
	}
	last := len(p.conns) - 1
	p.conns[i] = p.conns[last]
	p.index[p.conns[i]] = i
	p.conns = p.conns[:last]
	delete(p.index, nc)
}

func (p *rawPinger) run(interval time.Duration) {
	ping := []byte{0x89, 0} // FIN, ping, no payload
	t := time.NewTicker(interval / rawPingSlices)
	var due []net.Conn
	for k := 0; ; k = (k + 1) % rawPingSlices {
		<-t.C
		p.mu.Lock()
		n := len(p.conns)
		due = append(due[:0], p.conns[k*n/rawPingSlices:(k+1)*n/rawPingSlices]...)
		p.mu.Unlock()
		for _, nc := range due {
			nc.Write(ping)
		}
	}
}

func rawHandshake(nc net.Conn, br *bufio.Reader) error {
	req, err := http.ReadRequest(br)
	if err != nil {
		return err
	}
	key := req.Header.Get("Sec-WebSocket-Key")
	if key == "" {
		io.WriteString(nc, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
		return errors.New("not a WebSocket handshake")
	}
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	_, err = io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: "+base64.StdEncoding.EncodeToString(h[:])+"\r\n\r\n")
	return err
}

// rawEcho reads frames and writes each back unmasked; a close frame is
// answered and ends the connection, a ping gets its pong.
func rawEcho(nc net.Conn, br *bufio.Reader) {
	var (
		hdr [14]byte
		buf []byte
	)
	for {
		if _, err := io.ReadFull(br, hdr[:2]); err != nil {
			return
		}
		n := uint64(hdr[1] & 0x7f)
		ext := 0
		switch n {
		case 126:
			ext = 2
		case 127:
			ext = 8
		}
		masked := hdr[1]&0x80 != 0
		extra := ext
		if masked {
			extra += 4
		}
		if _, err := io.ReadFull(br, hdr[2:2+extra]); err != nil {
			return
		}
		switch ext {
		case 2:
			n = uint64(binary.BigEndian.Uint16(hdr[2:]))
		case 8:
			n = binary.BigEndian.Uint64(hdr[2:])
		}
		if n > 1<<30 {
			return
		}
		// The reply's header goes right before the payload, in one buffer.
		out := 2 + ext
		if need := out + int(n); cap(buf) < need {
			buf = make([]byte, need)
		}
		buf = buf[:out+int(n)]
		if _, err := io.ReadFull(br, buf[out:]); err != nil {
			return
		}
		if masked {
			rawMask(hdr[2+ext:6+ext], buf[out:])
		}
		op := hdr[0] & 0x0f
		switch op {
		case 0x9:
			op = 0xA
		case 0xA:
			continue // a pong answers the keepalive: nothing to send
		}
		buf[0] = hdr[0]&0xf0 | op
		buf[1] = hdr[1] & 0x7f
		copy(buf[2:out], hdr[2:2+ext])
		if _, err := nc.Write(buf); err != nil || op == 0x8 {
			return
		}
	}
}

func rawMask(key []byte, b []byte) {
	k := uint64(binary.LittleEndian.Uint32(key))
	k |= k << 32
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k)
	}
	for ; i < len(b); i++ {
		b[i] ^= key[i&3]
	}
}
