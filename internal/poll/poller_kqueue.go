//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package poll

import (
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// poller is a kqueue, with a pipe to wake it (EVFILT_USER is missing on
// some BSDs). kqueue filters are level-triggered unless EV_CLEAR is set.
type poller struct {
	kq     int
	rp, wp int // the wake-up pipe's ends
	woken  atomic.Bool
	raw    [maxEvents]unix.Kevent_t
}

func newPoller() (*poller, error) {
	kq, err := unix.Kqueue()
	if err != nil {
		return nil, osErr("kqueue", err)
	}
	unix.CloseOnExec(kq)
	var pp [2]int
	if err := unix.Pipe(pp[:]); err != nil {
		unix.Close(kq)
		return nil, osErr("pipe", err)
	}
	p := &poller{kq: kq, rp: pp[0], wp: pp[1]}
	for _, fd := range pp {
		unix.CloseOnExec(fd)
		unix.SetNonblock(fd, true)
	}
	if err := p.change(p.rp, unix.EVFILT_READ, unix.EV_ADD); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func (p *poller) change(fd, filter, flags int) error {
	var ch [1]unix.Kevent_t
	unix.SetKevent(&ch[0], fd, filter, flags)
	_, err := unix.Kevent(p.kq, ch[:], nil, nil)
	return osErr("kevent", err)
}

func (p *poller) add(fd int, in interest) error { return p.mod(fd, 0, in) }

// mod adds and deletes the read and write filters whose interest changed.
func (p *poller) mod(fd int, old, in interest) error {
	for _, f := range [...]struct {
		bit    interest
		filter int
	}{{wantRead, unix.EVFILT_READ}, {wantWrite, unix.EVFILT_WRITE}} {
		switch {
		case in&f.bit != 0 && old&f.bit == 0:
			if err := p.change(fd, f.filter, unix.EV_ADD); err != nil {
				return err
			}
		case in&f.bit == 0 && old&f.bit != 0:
			if err := p.change(fd, f.filter, unix.EV_DELETE); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *poller) del(fd int, old interest) error { return p.mod(fd, old, 0) }

func (p *poller) wait(evs []event, msec int) (int, error) {
	var ts *unix.Timespec
	if msec >= 0 {
		t := unix.NsecToTimespec(int64(msec) * 1e6)
		ts = &t
	}
	n, err := unix.Kevent(p.kq, nil, p.raw[:min(len(evs), maxEvents)], ts)
	if err == unix.EINTR {
		return 0, nil
	}
	if err != nil {
		return 0, osErr("kevent", err)
	}
	k := 0
	for _, r := range p.raw[:n] {
		fd := int(r.Ident)
		if fd == p.rp {
			p.drainWake()
			continue
		}
		var ready uint8
		switch {
		case r.Flags&unix.EV_ERROR != 0:
			ready = readyHup
		case r.Filter == unix.EVFILT_READ:
			ready = readyRead // EV_EOF too: the read returns what is left, then 0
		case r.Filter == unix.EVFILT_WRITE:
			ready = readyWrite
		}
		evs[k] = event{fd: int32(fd), ready: ready}
		k++
	}
	return k, nil
}

// drainWake empties the pipe, then clears the flag (see poller_epoll.go).
func (p *poller) drainWake() {
	var b [64]byte
	for {
		if n, err := unix.Read(p.rp, b[:]); n <= 0 || err != nil {
			break
		}
	}
	p.woken.Store(false)
}

func (p *poller) wake() {
	if !p.woken.CompareAndSwap(false, true) {
		return
	}
	unix.Write(p.wp, []byte{1})
}

func (p *poller) close() error {
	unix.Close(p.rp)
	unix.Close(p.wp)
	return osErr("close", unix.Close(p.kq))
}
