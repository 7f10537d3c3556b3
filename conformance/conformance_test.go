package conformance

import (
	"sync"
	"testing"
)

var casesOnce = sync.OnceValue(func() []*Case {
	var cs []*Case
	for _, fam := range []func() []*Case{family1, family2, family3, family4, family5, family6, family7, family9, familyX} {
		cs = append(cs, fam()...)
	}
	seen := map[string]bool{}
	for _, c := range cs {
		if seen[c.ID] {
			panic("duplicate case " + c.ID)
		}
		seen[c.ID] = true
	}
	return cs
})

// allCases returns every case, in suite order.
func allCases() []*Case { return casesOnce() }

// TestConformance runs every case in both roles, as subtests named
// "server/5.6" and "client/5.6".
func TestConformance(t *testing.T) {
	for _, r := range []role{roleServer, roleClient} {
		t.Run(string(r), func(t *testing.T) {
			t.Parallel()
			env := newRoleEnv(t, r)
			for _, c := range allCases() {
				t.Run(c.ID, func(t *testing.T) { runCase(t, env, c) })
			}
		})
	}
}
