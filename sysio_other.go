//go:build !unix

package tether

import (
	"net"
	"syscall"
)

// Elsewhere than on Unix, connections use net.Conn's reads and writes.

func rawSocket(net.Conn) (syscall.RawConn, bool) { return nil, false }

// sysRead and sockWrite are only called with a RawConn from rawSocket.
func sysRead(uintptr, []byte) (int, syscall.Errno) { panic("tether: raw socket I/O on this system") }

func sockWrite(net.Conn, syscall.RawConn, []byte) error {
	panic("tether: raw socket I/O on this system")
}
