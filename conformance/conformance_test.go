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
	cs = append(cs, serveTwins(cs)...)
	seen := map[string]bool{}
	for _, c := range cs {
		if seen[c.ID] {
			panic("duplicate case " + c.ID)
		}
		seen[c.ID] = true
	}
	return cs
})

// orderCases are the cases where good messages and a bad frame arrive
// together: the echo of the messages must precede the failure.
var orderCases = []string{"3.2", "3.3", "3.4", "4.1.3", "4.1.4", "4.1.5", "4.2.3", "4.2.4", "4.2.5", "5.15"}

// serveTwins repeats the order cases with Tether echoing through Serve
// instead of Read and Write, as "serve-3.2": one rule for both ways of
// reading.
func serveTwins(cs []*Case) []*Case {
	var out []*Case
	for _, c := range cs {
		for _, id := range orderCases {
			if c.ID == id {
				twin := *c
				twin.ID, twin.Desc, twin.Serve = "serve-"+id, c.Desc+" (Tether echoes with Serve)", true
				out = append(out, &twin)
			}
		}
	}
	return out
}

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
