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
	goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2/toxics.(*ToxicStub).Run"),
	goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2.(*ToxicLink).read"),
	goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2.(*ToxicLink).write"),
}
