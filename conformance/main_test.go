package conformance

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine outlives the tests (every Tether
// connection's reader, every echo loop, every peer reader must be gone), and
// prints the summary table with -v or TETHER_CONFORMANCE_SUMMARY=1.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(summarizingM{m})
}

// summarizingM runs the tests, then prints the summary before goleak looks
// for leaks.
type summarizingM struct{ m *testing.M }

func (s summarizingM) Run() int {
	code := s.m.Run()
	if testing.Verbose() || os.Getenv("TETHER_CONFORMANCE_SUMMARY") == "1" {
		printSummary(os.Stdout)
	}
	return code
}

// outcome is how a case ended in one role: OK, FAIL, BUG (a known library
// bug reproduced) or SKIP.
type outcome struct {
	status string
	dur    time.Duration
}

var results = struct {
	sync.Mutex
	byCase map[string]map[role]outcome
}{byCase: map[string]map[role]outcome{}}

func record(r role, id, status string, d time.Duration) {
	results.Lock()
	defer results.Unlock()
	if results.byCase[id] == nil {
		results.byCase[id] = map[role]outcome{}
	}
	results.byCase[id][r] = outcome{status, d}
}

// printSummary writes one row per case, in suite order, then the totals.
func printSummary(w io.Writer) {
	results.Lock()
	defer results.Unlock()
	if len(results.byCase) == 0 {
		return
	}
	roles := []role{roleServer, roleClient}
	var b strings.Builder
	fmt.Fprintf(&b, "\nTether conformance summary (Autobahn|Testsuite families 1-7, 9 and Tether's extras)\n")
	fmt.Fprintf(&b, "%-10s", "CASE")
	for _, r := range roles {
		fmt.Fprintf(&b, " %-8s %9s  ", strings.ToUpper(string(r)), "TIME")
	}
	fmt.Fprintf(&b, " %s\n", "DESCRIPTION")
	for _, c := range allCases() {
		rs := results.byCase[c.ID]
		if rs == nil {
			continue
		}
		fmt.Fprintf(&b, "%-10s", c.ID)
		for _, r := range roles {
			o, ok := rs[r]
			switch {
			case !ok:
				fmt.Fprintf(&b, " %-8s %9s  ", "-", "")
			case o.status == "SKIP":
				fmt.Fprintf(&b, " %-8s %9s  ", o.status, "")
			default:
				fmt.Fprintf(&b, " %-8s %9s  ", o.status, o.dur.Round(time.Millisecond))
			}
		}
		bug := ""
		if id := knownBug(roleServer, c.ID) + knownBug(roleClient, c.ID); id != "" {
			bug = " [" + strings.Join(uniq(knownBug(roleServer, c.ID), knownBug(roleClient, c.ID)), ",") + "]"
		}
		fmt.Fprintf(&b, " %s%s\n", c.Desc, bug)
	}
	var totals []string
	for _, r := range roles {
		n, ok, bug, fail, skip := 0, 0, 0, 0, 0
		for _, rs := range results.byCase {
			o, found := rs[r]
			if !found {
				continue
			}
			n++
			switch o.status {
			case "OK":
				ok++
			case "BUG":
				bug++
			case "FAIL":
				fail++
			case "SKIP":
				skip++
			}
		}
		if n == 0 {
			continue
		}
		s := fmt.Sprintf("%s: %d/%d OK", r, ok, n)
		if bug > 0 {
			s += fmt.Sprintf(" (%d known library bugs)", bug)
		}
		if fail > 0 {
			s += fmt.Sprintf(" (%d FAILED)", fail)
		}
		if skip > 0 {
			s += fmt.Sprintf(" (%d skipped)", skip)
		}
		totals = append(totals, s)
	}
	fmt.Fprintf(&b, "%s\n", strings.Join(totals, ", "))
	for _, id := range sortedBugIDs() {
		fmt.Fprintf(&b, "  %s: %s\n", id, bugs[id])
	}
	io.WriteString(w, b.String())
}

func uniq(ss ...string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range ss {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
