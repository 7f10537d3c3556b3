package tether

import (
	"errors"
	"io"
	"net"
)

// Socket reads and writes on TCP and Unix connections make their system
// calls directly (syscall.RawSyscall) inside RawConn's callbacks, which park
// the goroutine on the runtime's poller when the socket is not ready. The
// sockets are non-blocking, so a call returns at once (EAGAIN at worst) and
// does not need the scheduler told about it: a plain syscall.Read or
// net.Conn.Write enters and leaves a system call for the runtime, and when
// the process had gone idle (all its Ps idle, as a server between two
// messages is) entering wakes the runtime's sysmon thread, one futex wake,
// two context switches and a futex wait per message. With a single
// connection's request and reply (bench scenario a) that was 0.7 futex
// calls per message. Other connections (TLS, pipes) use net.Conn.

// sockErr makes err what net.Conn would have returned for op: a
// *net.OpError naming the connection, whatever RawConn wrapped it in.
func sockErr(op string, nc net.Conn, err error) error {
	if err == nil {
		return nil
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	if err == io.EOF {
		return err
	}
	netw := ""
	if a := nc.LocalAddr(); a != nil {
		netw = a.Network()
	}
	return &net.OpError{Op: op, Net: netw, Source: nc.LocalAddr(), Addr: nc.RemoteAddr(), Err: err}
}
