package poll

// interest is what a descriptor is watched for: readable, writable, or both.
// A descriptor watched for nothing is not in the poller at all ("detached"),
// because epoll reports hang-ups even to a descriptor registered with an
// empty mask, and level-triggered that would wake the loop forever.
type interest uint8

const (
	wantRead interest = 1 << iota
	wantWrite
)

// event is one readiness report, the same on every system.
type event struct {
	fd    int32
	ready uint8
}

const (
	readyRead  uint8 = 1 << iota
	readyWrite       // room in the send buffer
	readyHup         // hang-up or error: a read or write will say which
)

// maxEvents is how many readiness reports one wait returns at most; more
// stay pending in the kernel (level-triggered) for the next wait.
const maxEvents = 256

// Every system's poller provides (see poller_epoll.go, poller_kqueue.go):
//
//	newPoller() (*poller, error)
//	(*poller).add(fd int, in interest) error
//	(*poller).mod(fd int, old, in interest) error
//	(*poller).del(fd int, old interest) error
//	(*poller).wait(evs []event, msec int) (int, error) // msec < 0: no timeout
//	(*poller).wake()                                   // from any goroutine
//	(*poller).close() error
//
// add, mod, del and wake may be called from any goroutine: epoll_ctl and
// kevent are safe to call while another thread waits on the same poller.
