// Package browsertest finds what the tests that drive a real browser need:
// node, Debian's chromium and playwright-core (installed in dashboard/browser
// by make deps). A test without them is skipped, unless CI is set, where it
// fails: CI must prove what it claims.
package browsertest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Prereqs returns node's path after checking for chromium ($CHROMIUM, or
// /usr/bin/chromium) and for playwright-core installed in playwrightDir.
func Prereqs(tb testing.TB, playwrightDir string) (node string) {
	tb.Helper()
	missing := func(what string) {
		if os.Getenv("CI") != "" {
			tb.Fatalf("browser test needs %s (make deps installs it)", what)
		}
		tb.Skipf("browser test skipped: %s missing (make deps installs it)", what)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node")
	}
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		missing(chromium)
	}
	if _, err := os.Stat(filepath.Join(playwrightDir, "node_modules", "playwright-core", "package.json")); err != nil {
		missing("playwright-core in " + playwrightDir + " (npm ci)")
	}
	return node
}
