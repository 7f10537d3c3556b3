package serve

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a goroutine of the servers, their hubs and
// brokers, or the embedded NATS servers outlives the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
