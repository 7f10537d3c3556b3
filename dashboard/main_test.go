package dashboard

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a goroutine outlives the tests: the handler's
// event loop and its feeds must be gone once Close returns.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
