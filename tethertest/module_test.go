package tethertest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestOutsideModule is the test kit's acceptance test: a module of its own,
// outside the repository (testdata/feedclient, copied to a temporary
// directory, with a replace directive pointing at this repository), tests
// its reconnect logic on the fake clock, deterministically, and uses
// ReadJSON, WriteJSON and NetConn, through the public API only. Its go.mod
// states this repository's go line: go mod tidy must not raise it (no
// dependency needs more), and go vet must pass at it.
func TestOutsideModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and tests a separate module")
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	goLine := repoGoLine(t, repo)
	dir := t.TempDir()
	for _, name := range []string{"feedclient.go", "feedclient_test.go"} {
		b, err := os.ReadFile(filepath.Join("testdata", "feedclient", name))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name), string(b))
	}
	gomod := "module example.com/feedclient\n\ngo " + goLine + "\n\n" +
		"require github.com/tetherws/tether v0.0.0\n\n" +
		"replace github.com/tetherws/tether => " + repo + "\n"
	writeFile(t, filepath.Join(dir, "go.mod"), gomod)
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "go.sum"), string(sum))

	goCmd(t, dir, "mod", "tidy")
	if got := repoGoLine(t, dir); got != goLine {
		t.Fatalf("go mod tidy raised the importer's go line from %s to %s", goLine, got)
	}
	goCmd(t, dir, "vet", "./...")
	out := goCmd(t, dir, "test", "-race", "-count=1", "-v", "./...")
	for _, test := range []string{"TestFollowResumesWithBackoff", "TestGreetOverNetConn"} {
		if !strings.Contains(out, "--- PASS: "+test) {
			t.Errorf("%s did not pass in the outside module:\n%s", test, out)
		}
	}
}

var goLineRE = regexp.MustCompile(`(?m)^go ([0-9.]+)$`)

// repoGoLine returns the go line of the go.mod in dir.
func repoGoLine(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := goLineRE.FindSubmatch(b)
	if m == nil {
		t.Fatalf("no go line in %s/go.mod", dir)
	}
	return string(m[1])
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// goCmd runs the go command in dir with the local toolchain and no workspace,
// and fails the test with its output if it fails.
func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}
