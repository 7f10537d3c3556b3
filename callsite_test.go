package tether

import (
	"strings"
	"testing"
)

// siteHere stands for Dial or Accept: captureSite skips it and itself.
func siteHere() *site { return captureSite() }

// TestCallSitesShared: connections opened from the same place share one
// site, other places get their own, and each names its caller's line.
func TestCallSitesShared(t *testing.T) {
	var same []*site
	for range 3 {
		same = append(same, siteHere())
	}
	other := siteHere()
	if same[0] != same[1] || same[1] != same[2] {
		t.Error("three connections from one line got distinct sites")
	}
	if other == same[0] {
		t.Error("a connection from another line shares the first line's site")
	}
	a, b := same[0].String(), other.String()
	if !strings.Contains(a, "callsite_test.go:") || !strings.Contains(b, "callsite_test.go:") || a == b {
		t.Errorf("sites %q and %q: want two lines of callsite_test.go", a, b)
	}
}
