// Command benchrun runs the benchmark scenarios of issues 8 and 17 against
// Tether and its peers and writes the tables to results/latest.md, issue
// 17's figures first as ratios with their targets.
//
// Each server runs in its own process pinned to one CPU and the neutral
// load client (`tether bench`) in another pinned to the other CPU (taskset);
// each figure is the median of several runs, libraries taken in a rotating
// order so that a noisy moment does not always hit the same one.
//
//	cd bench && go run ./cmd/benchrun                   # quick: what make bench runs
//	cd bench && go run ./cmd/benchrun -profile full     # longer windows, more runs
//	cd bench && go run ./cmd/benchrun -scenarios b,e-on -libs tether,gws
//	cd bench && go run ./cmd/benchrun -client /tmp/tether -scenarios b  # a prebuilt load client
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// runner holds what every measurement needs.
type runner struct {
	tetherBin, serverBin, peerDir string
	serverCPU, clientCPU          string
	variants                      map[string]string
	// tetherEnv is what the "tether" and "tether-serve" rows add to their
	// environment: nothing (the engine Tether picks, auto) unless
	// -tether-engine names one.
	tetherEnv []string
	// deadline is when the run stops repeating: past it, each scenario
	// that is left is measured once per library.
	deadline time.Time
	// lastErrors are the error kinds the last client run counted.
	lastErrors map[string]int64
}

// outcome is what the runs of one scenario gave, by library.
type outcome struct {
	Samples map[string][]sample `json:"samples"`
	Errors  map[string][]string `json:"errors,omitempty"`
	// Runs is how many rounds were run, fewer than planned past the
	// time budget.
	Runs    int `json:"runs"`
	Planned int `json:"planned"`
	// ClientErrors are the errors the load client counted, by kind, over
	// a library's runs.
	ClientErrors map[string]map[string]int64 `json:"client_errors,omitempty"`
}

func main() {
	profile := flag.String("profile", "quick", "quick (make bench: under 10 minutes) or full (make bench-full)")
	runs := flag.Int("runs", 0, "runs per library and scenario (0: the profile's)")
	only := flag.String("scenarios", "", "comma-separated scenario ids to run (default: e-on,e-19k,f,b-100,b-10k,g,a,b,c,d,h,i-b; full adds e-off,i-e)")
	libsFlag := flag.String("libs", "", "comma-separated libraries (default all)")
	out := flag.String("out", "results/latest.md", "markdown report")
	raw := flag.String("raw", "results/latest.json", "raw samples (JSON)")
	variant := flag.String("variant", "", "server variations for profiling, lib=variant,... (e.g. tether=reader)")
	serverCPU := flag.String("server-cpu", "1", "CPU list the servers are pinned to")
	clientCPU := flag.String("client-cpu", "0", "CPU list the client is pinned to")
	budget := flag.Duration("budget", 0, "time after which the scenarios left run once per library (0: the profile's)")
	client := flag.String("client", "", "a prebuilt `tether` binary to use as the load client (default: build ../cmd/tether)")
	engine := flag.String("tether-engine", "", "TETHER_ENGINE for the tether and tether-serve rows (default: unset, the engine Tether picks); tether-goroutine always runs with goroutine")
	flag.Parse()

	w := quick
	if *profile == "full" {
		w = full
	} else if *profile != "quick" {
		fatal(fmt.Errorf("-profile must be quick or full"))
	}
	if *runs > 0 {
		w.runs, w.memRuns, w.scaleRuns = *runs, *runs, *runs
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	start := time.Now()
	r, env, err := setup(*serverCPU, *clientCPU, *variant, *client)
	if err != nil {
		fatal(err)
	}
	if *engine != "" {
		r.tetherEnv = []string{engineVar + "=" + *engine}
	}
	env.engine = *engine
	if *budget == 0 {
		*budget = w.budget
	}
	r.deadline = start.Add(*budget)
	defer os.RemoveAll(filepath.Dir(r.serverBin))
	var selected []scenario
	for _, sc := range scenarios(w) {
		if *only != "" && !slices.Contains(strings.Split(*only, ","), sc.id) {
			continue
		}
		if *only == "" && sc.fullOnly && *profile != "full" {
			continue
		}
		sc.libs = slices.DeleteFunc(slices.Clone(sc.libs), func(l string) bool {
			return (*libsFlag != "" && !slices.Contains(strings.Split(*libsFlag, ","), l)) || env.missing[l] != ""
		})
		selected = append(selected, sc)
	}
	results := map[string]*outcome{}
	for _, sc := range selected {
		results[sc.id] = r.runScenario(ctx, sc)
		if ctx.Err() != nil {
			break
		}
	}
	env.elapsed = time.Since(start)
	env.Load = append(env.Load, loadAverage())
	env.profile, env.windows = *profile, w
	if err := writeRaw(*raw, env, results); err != nil {
		fatal(err)
	}
	if err := writeReport(*out, env, selected, results); err != nil {
		fatal(err)
	}
	fmt.Fprintf(os.Stderr, "benchrun: wrote %s and %s in %s\n", *out, *raw, env.elapsed.Round(time.Second))
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "benchrun:", err)
	os.Exit(1)
}

// runScenario measures every library runs times, rotating their order.
func (r *runner) runScenario(ctx context.Context, sc scenario) *outcome {
	o := &outcome{Samples: map[string][]sample{}, Errors: map[string][]string{}, Planned: sc.runs}
	t0 := time.Now()
	for run := range sc.runs {
		if run > 0 && time.Now().After(r.deadline) {
			fmt.Fprintf(os.Stderr, "(%s) past the time budget: %d of %d runs\n", sc.id, run, sc.runs)
			break
		}
		o.Runs++
		order := slices.Clone(sc.libs)
		if len(order) > 0 {
			k := run % len(order)
			order = append(order[k:], order[:k]...)
		}
		for _, lib := range order {
			if ctx.Err() != nil {
				return o
			}
			r.measureOnce(ctx, sc, o, lib, fmt.Sprintf("run %d/%d", run+1, sc.runs))
		}
	}
	// A library none of whose runs gave a figure gets one more try: on
	// this shared machine a server starved of its CPU falls behind now and
	// then. The report still counts the failed run.
	for _, lib := range sc.libs {
		if len(o.Samples[lib]) == 0 && len(o.Errors[lib]) > 0 && ctx.Err() == nil {
			r.measureOnce(ctx, sc, o, lib, "retry")
		}
	}
	fmt.Fprintf(os.Stderr, "(%s) %s: %s\n", sc.id, sc.title, time.Since(t0).Round(100*time.Millisecond))
	return o
}

// measureOnce measures lib once and records the sample, or the error, and
// the client's error counts in o.
func (r *runner) measureOnce(ctx context.Context, sc scenario, o *outcome, lib, label string) {
	r.lastErrors = nil
	s, err := sc.measure(ctx, r, lib)
	for k, v := range r.lastErrors {
		if o.ClientErrors == nil {
			o.ClientErrors = map[string]map[string]int64{}
		}
		if o.ClientErrors[lib] == nil {
			o.ClientErrors[lib] = map[string]int64{}
		}
		o.ClientErrors[lib][k] += v
	}
	if err != nil {
		o.Errors[lib] = append(o.Errors[lib], err.Error())
		fmt.Fprintf(os.Stderr, "(%s) %s %-8s failed: %v\n", sc.id, label, lib, err)
		return
	}
	o.Samples[lib] = append(o.Samples[lib], s)
	fmt.Fprintf(os.Stderr, "(%s) %s %-8s %s\n", sc.id, label, lib, brief(sc, s))
}

func brief(sc scenario, s sample) string {
	var parts []string
	for _, m := range sc.metrics {
		if v, ok := s[m.key]; ok {
			parts = append(parts, m.label+" "+format(v, m))
		}
	}
	return strings.Join(parts, ", ")
}

// environment describes the machine and the tools, for the report.
type environment struct {
	Date   time.Time `json:"date"`
	CPU    string    `json:"cpu"`
	Cores  int       `json:"cores"`
	Memory string    `json:"memory"`
	Kernel string    `json:"kernel"`
	// Load is the 1-minute load average when the run started and ended:
	// the machine is shared, and other work moves the figures.
	Load     []string          `json:"load"`
	Go       string            `json:"go"`
	Versions map[string]string `json:"versions"`
	missing  map[string]string
	engine   string // -tether-engine
	elapsed  time.Duration
	profile  string
	windows  windows
}

// setup builds the client (unless client names a prebuilt one) and the
// server into a temporary directory and finds the cross-language peers.
func setup(serverCPU, clientCPU, variant, client string) (*runner, *environment, error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return nil, nil, err
	}
	benchDir := filepath.Dir(strings.TrimSpace(string(gomod)))
	if filepath.Base(benchDir) != "bench" {
		return nil, nil, fmt.Errorf("run from the bench module (cd bench), not %s", benchDir)
	}
	root := filepath.Dir(benchDir)
	tmp, err := os.MkdirTemp("", "benchrun")
	if err != nil {
		return nil, nil, err
	}
	r := &runner{
		tetherBin: filepath.Join(tmp, "tether"), serverBin: filepath.Join(tmp, "benchserver"),
		peerDir: filepath.Join(benchDir, "peers"), serverCPU: serverCPU, clientCPU: clientCPU,
		variants: map[string]string{},
	}
	for _, kv := range strings.Split(variant, ",") {
		if lib, v, ok := strings.Cut(kv, "="); ok {
			r.variants[lib] = v
		}
	}
	builds := []struct{ dir, out, pkg string }{{root, r.tetherBin, "./cmd/tether"}, {benchDir, r.serverBin, "./cmd/benchserver"}}
	if client != "" {
		if r.tetherBin, err = filepath.Abs(client); err != nil {
			return nil, nil, err
		}
		builds = builds[1:]
	}
	for _, b := range builds {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		cmd.Dir = b.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, nil, fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return nil, nil, fmt.Errorf("taskset not found (util-linux): the runs pin server and client to separate CPUs")
	}
	env := describe(root, benchDir)
	return r, env, nil
}

func writeRaw(path string, env *environment, results map[string]*outcome) error {
	b, err := json.MarshalIndent(struct {
		Env     *environment        `json:"environment"`
		Profile string              `json:"profile"`
		Results map[string]*outcome `json:"results"`
	}{env, env.profile, results}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
