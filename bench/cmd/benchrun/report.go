package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

var libNames = map[string]string{
	"tether": "**tether**", "tether-goroutine": "**tether**, goroutine engine", "tether-serve": "`tether serve`",
	"gorilla": "gorilla/websocket", "coder": "coder/websocket", "gobwas": "gobwas/ws",
	"gws": "lxzan/gws", "nbio": "lesismal/nbio", "rawtcp": "raw TCP (limit)", "node": "Node ws", "python": "python-websockets",
}

// describe gathers the machine and the versions of everything compared.
func describe(root, benchDir string) *environment {
	env := &environment{Date: time.Now().UTC(), Cores: runtime.NumCPU(), Go: runtime.Version(),
		Versions: map[string]string{}, missing: map[string]string{}}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				env.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %f kB", &kb)
		env.Memory = fmt.Sprintf("%.0f GiB", kb/(1<<20))
	}
	env.Load = []string{loadAverage()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		env.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if f, err := os.Open(filepath.Join(benchDir, "go.mod")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) >= 2 && strings.Contains(fs[0], "/") && strings.HasPrefix(fs[1], "v") {
				for lib, path := range map[string]string{"gorilla": "gorilla/websocket", "coder": "coder/websocket", "gobwas": "gobwas/ws", "gws": "lxzan/gws", "nbio": "lesismal/nbio"} {
					if strings.HasSuffix(fs[0], path) {
						env.Versions[lib] = fs[1]
					}
				}
			}
		}
		f.Close()
	}
	nodeWS := filepath.Join(root, "interop/peers/node/node_modules/ws/package.json")
	if b, err := os.ReadFile(nodeWS); err != nil {
		env.missing["node"] = "Node's ws is not installed (make deps, or npm ci in interop/peers/node)"
	} else if nv, err := exec.Command("node", "--version").Output(); err != nil {
		env.missing["node"] = "node not found"
	} else {
		var pkg struct{ Version string }
		json.Unmarshal(b, &pkg)
		env.Versions["node"] = pkg.Version + " on Node " + strings.TrimSpace(string(nv))
	}
	if v, err := exec.Command("/usr/bin/python3", "-c", "import websockets, sys; print(websockets.__version__, sys.version.split()[0])").Output(); err != nil {
		env.missing["python"] = "python3-websockets is not installed (make deps)"
	} else {
		f := strings.Fields(string(v))
		env.Versions["python"] = f[0] + " on Python " + f[1]
	}
	return env
}

// loadAverage is the 1-minute load average from /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// value is a metric's median over a library's runs, and its spread.
type value struct {
	med, lo, hi float64
	n           int
}

func values(samples []sample, key string) (value, bool) {
	var v []float64
	for _, s := range samples {
		if x, ok := s[key]; ok && !math.IsNaN(x) && !math.IsInf(x, 0) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return value{}, false
	}
	return value{med: median(v), lo: slices.Min(v), hi: slices.Max(v), n: len(v)}, true
}

// bestPeer returns the best median among the peers and whose it is.
func bestPeer(o *outcome, libs []string, m metric) (float64, string) {
	best, who := math.NaN(), ""
	for _, lib := range libs {
		if !isPeer(lib) {
			continue
		}
		v, ok := values(o.Samples[lib], m.key)
		if !ok {
			continue
		}
		if who == "" || (m.lower && v.med < best) || (!m.lower && v.med > best) {
			best, who = v.med, lib
		}
	}
	return best, who
}

// ratio is v against the best peer, >= 1 when v is at least as good.
func ratio(v, best float64, lower bool) float64 {
	if lower {
		return best / v
	}
	return v / best
}

func format(v float64, m metric) string {
	if m.key == "ext" {
		switch {
		case v > 0:
			return "yes"
		case v < 0:
			return "not negotiated"
		}
		return "no"
	}
	if m.digits == 0 {
		return grouped(v)
	}
	return fmt.Sprintf("%.*f", m.digits, v)
}

func grouped(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func writeReport(path string, env *environment, scs []scenario, results map[string]*outcome) error {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# Tether benchmarks: side by side with the peers\n\n")
	p("Written by `bench/cmd/benchrun -profile %s` (`make bench%s`) on %s, in %s.\n\n",
		env.profile, map[string]string{"quick": "", "full": "-full"}[env.profile], env.Date.Format("2006-01-02 15:04 MST"), env.elapsed.Round(time.Second))
	p("| | |\n|---|---|\n")
	p("| machine | %s, %d cores, %s, %s; load average %s at the start and the end of the run (other work shares the machine) |\n",
		env.CPU, env.Cores, env.Memory, env.Kernel, strings.Join(env.Load, " and "))
	p("| Go | %s |\n", env.Go)
	p("| pinning | each server on CPU 1, the load client (`tether bench`, one raw-frame client for every server) on CPU 0, with `taskset` |\n")
	quickNote := ""
	if env.profile == "quick" {
		quickNote = fmt.Sprintf("; past %s of running, the scenarios left run once (issue 17's come first); (e-off) and (i-e) only in `make bench-full`", env.windows.budget)
	}
	p("| runs | median of %d runs per row ((e), (f), (h): %d, %d, %d); echo windows %s after a %s warm-up; libraries in a rotating order%s |\n",
		env.windows.runs, env.windows.memRuns, env.windows.scaleRuns, env.windows.scaleRuns, env.windows.echo, env.windows.warmup, quickNote)
	var vs []string
	for _, lib := range []string{"gorilla", "coder", "gobwas", "gws", "nbio", "node", "python"} {
		if v := env.Versions[lib]; v != "" {
			vs = append(vs, libNames[lib]+" "+v)
		} else if m := env.missing[lib]; m != "" {
			vs = append(vs, libNames[lib]+": skipped, "+m)
		}
	}
	p("| peers | %s |\n", strings.Join(vs, ", "))
	engine := "auto (`TETHER_ENGINE` unset: the engine Tether picks)"
	if env.engine != "" {
		engine = "`TETHER_ENGINE=" + env.engine + "`"
	}
	p("| Tether's rows | **tether**: the library (benchserver: `Accept`, then `Go`), engine %s; **tether**, goroutine engine: the same server with `TETHER_ENGINE=goroutine`; "+
		"`tether serve`: the command's /echo, engine as **tether**'s |\n\n", engine)
	p("The machine is shared with other engineers' tests, so throughput and latency move from run to run " +
		"(the ± after the first figure of a row is half the range of its runs). On 2 cores the client's core saturates " +
		"before a good server's does, so messages/s cannot rank the fast servers: **server CPU time per message** " +
		"(from /proc/PID/stat over the measured window) does. \"vs best peer\" is the figure against the best peer's " +
		"(gorilla, coder, gobwas, gws, nbio, Node ws, python-websockets): 1.00 or more means at least as good. " +
		"Raw TCP is the limit, not a peer. How each server is written: [docs/bench.md](../../docs/bench.md).\n\n")
	writeIssue17(&b, results)
	writeAcceptance(&b, results)
	for _, sc := range scs {
		writeTable(&b, sc, results[sc.id])
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func writeTable(b *strings.Builder, sc scenario, o *outcome) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("## (%s) %s\n\n", sc.id, sc.title)
	if sc.note != "" {
		p("%s\n\n", sc.note)
	}
	if o == nil {
		p("Not run.\n\n")
		return
	}
	if o.Runs < o.Planned {
		p("Past the run's time budget (a loaded machine): %d of %d runs.\n\n", o.Runs, o.Planned)
	}
	p("| library |")
	align := "|---|"
	for _, m := range sc.metrics {
		p(" %s |", m.label)
		align += "---:|"
		if m.ratio {
			p(" vs best peer |")
			align += "---:|"
		}
	}
	p("\n%s\n", align)
	for _, lib := range sc.libs {
		p("| %s |", libNames[lib])
		if len(o.Samples[lib]) == 0 {
			msg := "no result"
			if errs := o.Errors[lib]; len(errs) > 0 {
				msg = "failed: " + clip(errs[0], 100)
			}
			p(" %s |%s\n", msg, strings.Repeat(" |", columns(sc)-1))
			continue
		}
		for i, m := range sc.metrics {
			v, ok := values(o.Samples[lib], m.key)
			if !ok {
				p(" |")
				if m.ratio {
					p(" |")
				}
				continue
			}
			cell := format(v.med, m)
			if i == 0 && v.n > 1 && v.med != 0 {
				cell += fmt.Sprintf(" ±%.0f%%", 50*(v.hi-v.lo)/math.Abs(v.med))
			}
			p(" %s |", cell)
			if m.ratio {
				best, _ := bestPeer(o, sc.libs, m)
				if math.IsNaN(best) {
					p(" |")
				} else {
					p(" %.2f |", ratio(v.med, best, m.lower))
				}
			}
		}
		p("\n")
	}
	p("\n")
	var notes []string
	for _, m := range sc.metrics {
		if !m.ratio {
			continue
		}
		if _, who := bestPeer(o, sc.libs, m); who != "" {
			notes = append(notes, fmt.Sprintf("best peer for %s: %s", m.label, libNames[who]))
		}
	}
	if t, ok := values(o.Samples["tether"], "cpu_us"); ok {
		if raw, ok := values(o.Samples["rawtcp"], "cpu_us"); ok {
			notes = append(notes, fmt.Sprintf("Tether's server CPU per message is %.2fx raw TCP's", t.med/raw.med))
		}
	}
	if t, ok := values(o.Samples["tether"], "cpu_us_ping"); ok {
		if raw, ok := values(o.Samples["rawtcp"], "cpu_us_ping"); ok {
			notes = append(notes, fmt.Sprintf("Tether's server CPU per ping is %.2fx the raw TCP floor's", t.med/raw.med))
		}
	}
	for _, lib := range sc.libs {
		if errs := o.ClientErrors[lib]; len(errs) > 0 {
			notes = append(notes, fmt.Sprintf("%s: client errors over its runs: %s", libNames[lib], formatCounts(errs)))
		}
		if n := len(o.Errors[lib]); n > 0 && len(o.Samples[lib]) > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d of its runs failed (%s)", libNames[lib], n, clip(o.Errors[lib][0], 80)))
		}
	}
	if len(notes) > 0 {
		p("%s.\n\n", strings.Join(notes, "; "))
	}
}

// formatCounts lists counts by kind, most frequent first.
func formatCounts(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return int(m[b] - m[a])
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func columns(sc scenario) int {
	n := 0
	for _, m := range sc.metrics {
		n++
		if m.ratio {
			n++
		}
	}
	return n
}

func clip(s string, n int) string {
	s = strings.ReplaceAll(s, "|", "/")
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// writeAcceptance checks the issue's targets against the medians.
func writeAcceptance(b *strings.Builder, results map[string]*outcome) {
	type check struct {
		target string
		sc     string
		key    string
		lower  bool
		test   func(tether float64, o *outcome) (string, bool)
	}
	vsPeer := func(sc, key string, lower bool) func(float64, *outcome) (string, bool) {
		return func(t float64, o *outcome) (string, bool) {
			best, who := bestPeer(o, peersOf(o), metric{key: key, lower: lower})
			if who == "" {
				return "no peer figure", false
			}
			r := ratio(t, best, lower)
			return fmt.Sprintf("%.2f (tether %s, best peer %s %s)", r, short(t), libNames[who], short(best)), r >= 1
		}
	}
	checks := []check{
		{"(a) p50 latency, vs best peer ≥ 1.0", "a", "p50_us", true, vsPeer("a", "p50_us", true)},
		{"(b) msg/s, vs best peer ≥ 1.0", "b", "msgs", false, vsPeer("b", "msgs", false)},
		{"(b) server CPU/echo below every peer's", "b", "cpu_us", true, vsPeer("b", "cpu_us", true)},
		{"(b) server CPU/echo within 15 % of raw TCP's", "b", "cpu_us", true, func(t float64, o *outcome) (string, bool) {
			raw, ok := values(o.Samples["rawtcp"], "cpu_us")
			if !ok {
				return "no raw TCP figure", false
			}
			return fmt.Sprintf("%.2fx raw TCP (%.2f vs %.2f µs)", t/raw.med, t, raw.med), t <= raw.med*1.15
		}},
		{"(c) msg/s, vs best peer ≥ 1.0", "c", "msgs", false, vsPeer("c", "msgs", false)},
		{"(c) server CPU/echo, vs best peer ≥ 1.0", "c", "cpu_us", true, vsPeer("c", "cpu_us", true)},
		{"(d) MB/s, vs best peer ≥ 1.0", "d", "mbps", false, vsPeer("d", "mbps", false)},
		{"(g) handshakes/s, vs best peer ≥ 1.0", "g", "hs", false, vsPeer("g", "hs", false)},
		{"(e) RSS per idle connection, keepalive on, below gobwas's", "e-on", "rss_kib", true, func(t float64, o *outcome) (string, bool) {
			g, ok := values(o.Samples["gobwas"], "rss_kib")
			if !ok {
				return "no gobwas figure", false
			}
			return fmt.Sprintf("tether %.1f KiB, gobwas %.1f KiB", t, g.med), t < g.med
		}},
		{"(f) keepalive, 19,000 conns at 1 s: < 2 % of one core", "f", "cpu_pct", true, func(t float64, o *outcome) (string, bool) {
			fig := fmt.Sprintf("%.2f %% of one core", t)
			if raw, ok := values(o.Samples["rawtcp"], "cpu_pct"); ok {
				fig += fmt.Sprintf(" (raw TCP floor %.2f %%)", raw.med)
			}
			return fig, t < 2
		}},
	}
	fmt.Fprintf(b, "## Acceptance targets (issue 8)\n\n| target | met | figure |\n|---|:---:|---|\n")
	for _, c := range checks {
		o := results[c.sc]
		if o == nil {
			continue
		}
		t, ok := values(o.Samples["tether"], c.key)
		if !ok {
			fmt.Fprintf(b, "| %s | – | no Tether figure |\n", c.target)
			continue
		}
		fig, met := c.test(t.med, o)
		mark := "no"
		if met {
			mark = "yes"
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", c.target, mark, fig)
	}
	fmt.Fprintf(b, "\n")
}

func peersOf(o *outcome) []string {
	var libs []string
	for lib := range o.Samples {
		libs = append(libs, lib)
	}
	slices.Sort(libs)
	return libs
}

func short(v float64) string {
	switch {
	case math.Abs(v) >= 1000:
		return grouped(v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}
