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

// dialHelper stands for an application's helper around Dial: marked, it is
// skipped like Tether's own frames.
func dialHelper() *site {
	Helper()
	return siteHere()
}

// unmarkedHelper is the same helper without the mark.
func unmarkedHelper() *site { return siteHere() }

// TestHelperSkipped: a connection opened through a marked helper names the
// helper's caller, each caller its own line; through an unmarked helper,
// every connection names the helper's line.
func TestHelperSkipped(t *testing.T) {
	a := dialHelper()
	b := dialHelper()
	if a.String() == b.String() {
		t.Errorf("two callers of a marked helper got one call site %q", a)
	}
	for _, s := range []*site{a, b} {
		if !strings.Contains(s.String(), "callsite_test.go:") {
			t.Errorf("call site %q: want a line of callsite_test.go", s)
		}
	}
	u1 := unmarkedHelper()
	u2 := unmarkedHelper()
	if u1.String() != u2.String() {
		t.Errorf("an unmarked helper's connections got call sites %q and %q, want the helper's one line", u1, u2)
	}
	if a.String() == u1.String() || b.String() == u1.String() {
		t.Errorf("marked helper's call sites %q, %q include the unmarked helper's line %q", a, b, u1)
	}
}
