// Package poll is Tether's event engine: a few event loops (epoll on Linux,
// kqueue on macOS and the BSDs) that own adopted sockets, so that an idle
// connection costs a small struct and no goroutine, no buffer and no runtime
// timer.
package poll
