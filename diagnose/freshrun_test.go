package diagnose

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestFreshPythonRun runs the fixture generator for one case with real
// python-websockets (Debian's, under /usr/bin/python3, not whatever python3
// is first on PATH) and holds the fresh log to its truth as the committed
// ones are: two unlabeled clients at one cadence, one of whose servers never
// answers. Without python-websockets it skips, unless CI is set: there it
// must run.
func TestFreshPythonRun(t *testing.T) {
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import websockets").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI: %s cannot import websockets (apt-get install python3-websockets): %v", python, err)
		}
		t.Skipf("%s cannot import websockets: %v", python, err)
	}
	if testing.Short() {
		t.Skip("a real run of a few seconds")
	}
	dir := t.TempDir()
	// gen.py takes a tether binary for its Tether cases; this one has none.
	cmd := exec.Command(python, "testdata/gen/gen.py", dir, "--tether", "/nonexistent", "--only", "unanswered-asctime")
	cmd.Env = append(os.Environ(), "TZ=UTC")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gen.py: %v\n%s", err, out)
	}
	var tr truth
	b, err := os.ReadFile(filepath.Join(dir, "unanswered-asctime.truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "unanswered-asctime.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := Analyze(f)
	if err != nil {
		t.Fatal(err)
	}
	claimed := checkAgainstTruth(t, rep, &tr)
	// A fresh run's timing varies (more so under a loaded CI): lines of the
	// healthy connection may be left unattributed now and then, which the
	// committed fixtures (TestGeneratedLogs) hold at zero. Here the dead
	// connection must be found, and nearly every line placed.
	wrong := attribution(t, rep, &tr, claimed, t.Logf)
	if keepalive := len(rep.Attribution); wrong*5 > keepalive {
		t.Errorf("%d of %d lines attributed wrongly", wrong, keepalive)
	}
	timedOut := false
	for _, s := range rep.Streams {
		timedOut = timedOut || s.Timeouts > 0
	}
	if !timedOut {
		t.Error("no stream with the keepalive timeout of the connection whose server never answers")
	}
}
