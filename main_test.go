package tether

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine outlives the tests: every
// connection's reader and timers must be gone once it has closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
