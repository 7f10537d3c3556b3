// Package interop proves that Tether speaks RFC 6455 with two independent
// implementations, python-websockets 10.4 and Node's ws 8.23.0, in both
// directions, on loopback. The peer programs live in peers/ (see
// peers/selftest.sh); a missing peer skips its tests, or fails them when the
// CI environment variable is set.
package interop

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine outlives the tests: Tether's
// readers and timers, the httptest servers' handlers and os/exec's pipe
// copiers must all be gone once every test has cleaned up.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
