//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package poll

// Elsewhere (Windows, Solaris, WebAssembly...) there is no engine: New
// returns ErrUnsupported and the root package keeps its reader goroutines.

type poller struct{}

func newPoller() (*poller, error)                 { return nil, ErrUnsupported }
func (*poller) add(int, interest) error           { return ErrUnsupported }
func (*poller) mod(int, interest, interest) error { return ErrUnsupported }
func (*poller) del(int, interest) error           { return ErrUnsupported }
func (*poller) wait([]event, int) (int, error)    { return 0, ErrUnsupported }
func (*poller) wake()                             {}
func (*poller) close() error                      { return nil }
