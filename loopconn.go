package tether

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/tetherws/tether/internal/poll"
)

// The driver is also the net.Conn of the connection it drives: the write
// path, the close path and the deadlines of the protocol code are the same
// for both engines, and here they reach the engine's socket.
//
// Writes go to the socket at once when it takes them, else to the
// connection's write queue, which the loop flushes; past the queue's bound
// Write waits for room, until the write deadline. Close flushes what is
// queued before it closes the socket (the close frame that says why is not
// lost), bounded by the connection's CloseTimeout.
//
// Reading is the loop's, frame by frame, except at the end: once a
// connection is closing (a close frame came, the peer broke the protocol),
// the rest of its life runs on a goroutine with the pull code both engines
// share, and Read serves it the bytes the loop hands over (pull).
//
// The addresses are kept as netip.AddrPort, not net.Addr: the *TCPAddr
// values would cost a connection two allocations more for its life.

// sockAddrs are a connection's addresses, compact: an IP address as its
// 16 bytes, not a netip.Addr (24 bytes, for a zone pointer most never
// use), nor a *net.TCPAddr (two allocations).
type sockAddrs struct {
	rip, lip     [16]byte
	rport, lport uint16
	v4           bool         // rip and lip hold IPv4 addresses (4-in-6)
	other        *[2]net.Addr // remote and local as given: Unix sockets, zoned IPv6
}

func (a *sockAddrs) set(nc net.Conn) {
	r, rok := nc.RemoteAddr().(*net.TCPAddr)
	l, lok := nc.LocalAddr().(*net.TCPAddr)
	if !rok || !lok || r.Zone != "" || l.Zone != "" {
		a.other = &[2]net.Addr{nc.RemoteAddr(), nc.LocalAddr()}
		return
	}
	rp, lp := r.AddrPort(), l.AddrPort()
	a.rip, a.lip = rp.Addr().As16(), lp.Addr().As16()
	a.rport, a.lport = rp.Port(), lp.Port()
	a.v4 = rp.Addr().Is4()
}

func (a *sockAddrs) tcp(ip [16]byte, port uint16) net.Addr {
	addr := netip.AddrFrom16(ip)
	if a.v4 {
		addr = addr.Unmap()
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(addr, port))
}

// pullBuf holds the bytes read for the end phase's Read.
type pullBuf struct {
	buf    []byte
	off    int
	err    error // what ends reading: io.EOF, a read error, net.ErrClosed
	dl     time.Time
	wake   chan struct{} // capacity 1: bytes, an error or a new deadline
	paused bool          // reading paused: buf is at its bound
}

// pullBound is what the end phase buffers before the loop stops reading.
const pullBound = 64 << 10

func (d *driver) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	d.mu.Lock()
	var pb *pullBuf
	if d.ext != nil {
		pb = d.ext.pull
	}
	if pb == nil {
		d.mu.Unlock()
		return 0, errors.New("tether: read outside the end phase of an engine connection")
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if pb.off < len(pb.buf) {
			n := copy(p, pb.buf[pb.off:])
			pb.off += n
			if pb.off == len(pb.buf) {
				pb.buf, pb.off = pb.buf[:0], 0
			}
			if pb.paused && len(pb.buf)-pb.off < pullBound/2 {
				pb.paused = false
				d.pc.ResumeRead() // under mu, so that it cannot pass feed's PauseRead
			}
			d.mu.Unlock()
			return n, nil
		}
		if pb.err != nil {
			err := pb.err
			d.mu.Unlock()
			return 0, d.opErr("read", err)
		}
		var expired <-chan time.Time
		if !pb.dl.IsZero() {
			wait := time.Until(pb.dl)
			if wait <= 0 {
				d.mu.Unlock()
				return 0, d.opErr("read", os.ErrDeadlineExceeded)
			}
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			expired = timer.C
		}
		d.mu.Unlock()
		select {
		case <-pb.wake:
		case <-expired:
		}
		d.mu.Lock()
	}
}

// startPull begins the end phase: from now on the loop's bytes are for
// Read. rest is what the loop read past the point where it stopped.
func (d *driver) startPull(rest []byte) {
	d.mu.Lock()
	d.extLocked().pull = &pullBuf{wake: make(chan struct{}, 1)}
	d.mu.Unlock()
	if len(rest) > 0 {
		d.feed(rest)
	}
}

// feed hands Read bytes the loop read; past the bound the loop stops
// reading until Read has taken them.
func (d *driver) feed(p []byte) {
	d.mu.Lock()
	pb := d.ext.pull
	pb.buf = append(pb.buf, p...)
	if !pb.paused && len(pb.buf)-pb.off >= pullBound {
		pb.paused = true
		d.pc.PauseRead()
	}
	d.mu.Unlock()
	signal(pb.wake)
}

// endPull hands Read the error that ended reading.
func (d *driver) endPull(err error) {
	d.mu.Lock()
	pb := d.ext.pull
	if pb.err == nil {
		pb.err = err
	}
	d.mu.Unlock()
	signal(pb.wake)
}

func (d *driver) Write(p []byte) (int, error) {
	for {
		err := d.pc.Send(p)
		if err == nil {
			return len(p), nil
		}
		if err != poll.ErrWouldBlock {
			return 0, d.opErr("write", err)
		}
		// The queue is at its bound: wait for room, as a blocking write
		// waits for the socket, until the deadline.
		d.mu.Lock()
		dl := time.Time{}
		if d.ext != nil {
			dl = unixTime(d.ext.wdl)
		}
		if !dl.IsZero() && !time.Now().Before(dl) {
			d.mu.Unlock()
			return 0, d.opErr("write", os.ErrDeadlineExceeded)
		}
		ctx, cancel := context.WithCancel(context.Background())
		if !dl.IsZero() {
			ctx, cancel = context.WithDeadline(context.Background(), dl)
		}
		d.extLocked().wstop = cancel
		d.mu.Unlock()
		err = d.pc.Write(ctx, p)
		d.mu.Lock()
		d.ext.wstop = nil
		d.mu.Unlock()
		cancel()
		switch {
		case err == nil:
			return len(p), nil
		case errors.Is(err, context.DeadlineExceeded):
			return 0, d.opErr("write", os.ErrDeadlineExceeded)
		case errors.Is(err, context.Canceled):
			continue // the deadline moved: look again
		}
		return 0, d.opErr("write", err)
	}
}

// Close flushes what is queued, then closes the socket; a peer that does
// not read gets linger to take it.
func (d *driver) Close() error {
	if err := d.pc.Close(); err != nil {
		return d.opErr("close", err)
	}
	if d.pc.Queued() > 0 {
		time.AfterFunc(d.c.cfg.closeTimeout, func() { d.pc.CloseNow() })
	}
	return nil
}

// CloseWrite sends FIN once what is queued is written.
func (d *driver) CloseWrite() error {
	if err := d.pc.CloseWrite(); err != nil {
		return d.opErr("close", err)
	}
	return nil
}

func (d *driver) LocalAddr() net.Addr {
	if d.addrs.other != nil {
		return d.addrs.other[1]
	}
	return d.addrs.tcp(d.addrs.lip, d.addrs.lport)
}

func (d *driver) RemoteAddr() net.Addr {
	if d.addrs.other != nil {
		return d.addrs.other[0]
	}
	return d.addrs.tcp(d.addrs.rip, d.addrs.rport)
}

func (d *driver) SetDeadline(t time.Time) error {
	d.SetReadDeadline(t)
	return d.SetWriteDeadline(t)
}

func (d *driver) SetReadDeadline(t time.Time) error {
	d.mu.Lock()
	var pb *pullBuf
	if d.ext != nil {
		pb = d.ext.pull
	}
	if pb != nil {
		pb.dl = t
	}
	d.mu.Unlock()
	if pb != nil {
		signal(pb.wake)
	}
	return nil
}

func (d *driver) SetWriteDeadline(t time.Time) error {
	d.mu.Lock()
	if t.IsZero() && d.ext == nil {
		d.mu.Unlock()
		return nil
	}
	x := d.extLocked()
	x.wdl = 0
	if !t.IsZero() {
		x.wdl = t.UnixNano()
	}
	if x.wstop != nil {
		x.wstop()
	}
	d.mu.Unlock()
	return nil
}

// opErr makes err what a *net.TCPConn would have returned for op.
func (d *driver) opErr(op string, err error) error {
	if err == io.EOF {
		return err
	}
	if errors.Is(err, poll.ErrClosed) || errors.Is(err, poll.ErrEngineClosed) {
		err = net.ErrClosed
	}
	local := d.LocalAddr()
	return &net.OpError{Op: op, Net: local.Network(), Source: local, Addr: d.RemoteAddr(), Err: err}
}
