//go:build linux

package poll

import (
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// poller is an epoll instance, level-triggered, with an eventfd to wake it.
type poller struct {
	epfd  int
	wfd   int         // eventfd
	woken atomic.Bool // a wake-up is pending: later wakes need no write
	raw   [maxEvents]unix.EpollEvent
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, osErr("epoll_create1", err)
	}
	wfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, osErr("eventfd", err)
	}
	p := &poller{epfd: epfd, wfd: wfd}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wfd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wfd, &ev); err != nil {
		p.close()
		return nil, osErr("epoll_ctl", err)
	}
	return p, nil
}

func epollMask(in interest) uint32 {
	var m uint32
	if in&wantRead != 0 {
		m |= unix.EPOLLIN
	}
	if in&wantWrite != 0 {
		m |= unix.EPOLLOUT
	}
	return m
}

func (p *poller) add(fd int, in interest) error {
	ev := unix.EpollEvent{Events: epollMask(in), Fd: int32(fd)}
	return osErr("epoll_ctl", unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev))
}

func (p *poller) mod(fd int, _, in interest) error {
	ev := unix.EpollEvent{Events: epollMask(in), Fd: int32(fd)}
	return osErr("epoll_ctl", unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, fd, &ev))
}

func (p *poller) del(fd int, _ interest) error {
	return osErr("epoll_ctl", unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil))
}

// wait blocks until readiness, a wake-up or msec milliseconds. The wake-up
// is consumed here and not reported: the loop looks at its queues after
// every wait anyway.
func (p *poller) wait(evs []event, msec int) (int, error) {
	n, err := unix.EpollWait(p.epfd, p.raw[:min(len(evs), maxEvents)], msec)
	if err == unix.EINTR {
		return 0, nil
	}
	if err != nil {
		return 0, osErr("epoll_wait", err)
	}
	k := 0
	for _, r := range p.raw[:n] {
		if int(r.Fd) == p.wfd {
			p.drainWake()
			continue
		}
		var ready uint8
		if r.Events&unix.EPOLLIN != 0 {
			ready |= readyRead
		}
		if r.Events&unix.EPOLLOUT != 0 {
			ready |= readyWrite
		}
		if r.Events&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			ready |= readyHup
		}
		evs[k] = event{fd: r.Fd, ready: ready}
		k++
	}
	return k, nil
}

// drainWake resets the eventfd, then the flag. In that order: a wake that
// comes between the two finds the flag set and writes nothing, which is
// fine, as the loop looks at its queues after this wait; cleared first, a
// wake's write could be drained by the read, leaving the flag set with
// nothing to wake the next wait, and every later wake would be lost.
func (p *poller) drainWake() {
	var b [8]byte
	unix.Read(p.wfd, b[:])
	p.woken.Store(false)
}

func (p *poller) wake() {
	if !p.woken.CompareAndSwap(false, true) {
		return
	}
	b := [8]byte{1}
	unix.Write(p.wfd, b[:])
}

func (p *poller) close() error {
	unix.Close(p.wfd)
	return osErr("close", unix.Close(p.epfd))
}
