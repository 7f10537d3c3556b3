// Package faults holds Tether's fault-injection suite: real Tether clients
// and servers talking through Toxiproxy, used as a Go library in the test
// process, which blackholes, delays, throttles, slices and resets their
// traffic; and the hostile-input suite, raw peers that try to make a
// server hold more than it should. Every case states a bound (for a dead
// peer: ping interval plus ping timeout, with slack) and checks the close
// code and its initiator, and that connections, descriptors and goroutines
// go back to their baseline. The package has no code of its own: see
// docs/reliability.md for the table of what is shown.
//
// TETHER_SOAK=1 runs the long version (make soak).
package faults
