//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package poll

import "net"

// No engine here: New fails first, so none of these is ever reached.

const supported = false

type sysScratch struct{}

const maxIovecs = 1

func sysRead(int, []byte) (int, bool, error)            { return 0, false, ErrUnsupported }
func sysWrite(int, []byte) (int, error)                 { return 0, ErrUnsupported }
func sysWritev(int, [][]byte, *sysScratch) (int, error) { return 0, ErrUnsupported }
func dupConn(net.Conn) (int, error)                     { return -1, ErrUnsupported }
func sysClose(int) error                                { return nil }
func sysShutdownWrite(int) error                        { return nil }
