package faults

import (
	"github.com/rs/zerolog"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine outlives the tests: Tether's,
// the proxies' and the peers'.
func TestMain(m *testing.M) {
	zerolog.SetGlobalLevel(zerolog.Disabled) // Toxiproxy's toxics log through the global logger
	goleak.VerifyTestMain(m, toxiproxyLeaks...)
}

// toxiproxyLeaks are the proxy's own goroutines that outlive its links: a
// toxic blocked sending to a link that is gone (Toxiproxy 2.5). They are
// the test harness's, not Tether's, and countGoroutines leaves them out.
var toxiproxyLeaks = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/Shopify/toxiproxy/v2/toxics.(*LatencyToxic).Pipe"),
	goleak.IgnoreTopFunction("github.com/Shopify/toxiproxy/v2/toxics.(*BandwidthToxic).Pipe"),
	goleak.IgnoreTopFunction("github.com/Shopify/toxiproxy/v2/toxics.(*SlicerToxic).Pipe"),
	goleak.IgnoreTopFunction("github.com/Shopify/toxiproxy/v2/toxics.(*TimeoutToxic).Pipe"),
	goleak.IgnoreTopFunction("github.com/Shopify/toxiproxy/v2/toxics.(*ResetToxic).Pipe"),
	goleak.IgnoreTopFunction("github.com/Shopify/toxiproxy/v2/toxics.(*NoopToxic).Pipe"),
}
