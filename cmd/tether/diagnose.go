package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/tetherws/tether/diagnose"
)

func diagnoseCmd() *cobra.Command {
	var (
		asJSON  bool
		svgPath string
		lines   bool
	)
	cmd := &cobra.Command{
		Use:   "diagnose [FILE...]",
		Short: "Tell which keepalive line belongs to which connection, and what is wrong",
		Long: "diagnose reads Tether's logs and python-websockets' debug logs (standard input when no FILE is\n" +
			"given), groups the keepalive lines into one stream per connection, even lines that carry no\n" +
			"connection ID, and reports each stream's interval and round trip, then what is wrong. On a\n" +
			"server's log it measures each client's ping cadence; given both ends' logs (server.log\n" +
			"clients.log), it pairs the two streams of each connection. --lines lists every keepalive\n" +
			"line with its stream. Connections are named by the last 8 characters of their ID, as on\n" +
			"the dashboard. Exit status: 0 with a report, 1 on an error, 3 when the logs hold no\n" +
			"keepalive traffic at all.",
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, files []string) error {
			return runDiagnose(diagnoseRun{
				files: files, stdin: os.Stdin, out: cmd.OutOrStdout(), errOut: os.Stderr,
				json: asJSON, svg: svgPath, lines: lines, progress: isTerminal(os.Stderr),
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the analysis as JSON")
	cmd.Flags().StringVar(&svgPath, "svg", "", "also write a timeline of the streams to this SVG file")
	cmd.Flags().BoolVar(&lines, "lines", false, "list every keepalive and connection line (FILE:LINE, stream, what) instead of the report; with --json, add them to it as attribution")
	return cmd
}

// diagnoseRun is one `tether diagnose`: where it reads and writes.
type diagnoseRun struct {
	files       []string
	stdin       io.Reader
	out, errOut io.Writer
	json        bool
	svg         string
	lines       bool // list each line's stream (--lines)
	progress    bool // show a progress bar on errOut
}

func runDiagnose(r diagnoseRun) error {
	start := time.Now()
	a := diagnose.NewAnalyzer()
	bar := r.progressBar()
	if bar != nil {
		a.Progress = func(int64) {}
	}
	feedNamed := func(name string, in io.Reader) error {
		if bar == nil {
			return a.FeedNamed(name, in)
		}
		pr := progressbar.NewReader(in, bar)
		return a.FeedNamed(name, &pr)
	}
	feed := func(in io.Reader) error { return feedNamed("", in) }
	if len(r.files) == 0 {
		if err := feed(r.stdin); err != nil {
			return fmt.Errorf("reading standard input: %w", err)
		}
	}
	for _, name := range r.files {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		err = feedNamed(name, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
	}
	if bar != nil {
		bar.Finish()
	}
	rep := a.Report()
	took := time.Since(start)
	if r.svg != "" {
		if err := writeSVG(r.svg, rep); err != nil {
			return err
		}
	}
	if err := r.write(rep, took); err != nil {
		return err
	}
	if rep.NoKeepalive() {
		return exitError{exitNoKeepalive}
	}
	return nil
}

// exitNoKeepalive is diagnose's exit status when the logs hold no keepalive
// traffic: a script can tell "nothing to read" (wrong log level, wrong
// file) from a report, which exits 0, and from an error, which exits 1.
const exitNoKeepalive = 3

func (r diagnoseRun) write(rep *diagnose.Report, took time.Duration) error {
	w := bufio.NewWriter(r.out)
	if r.lines {
		rep.Attribute()
	}
	if r.lines && !r.json {
		if err := rep.WriteLines(w); err != nil {
			return err
		}
		return w.Flush()
	}
	if r.json {
		if err := rep.WriteJSON(w); err != nil {
			return err
		}
		return w.Flush()
	}
	if err := rep.WriteText(w); err != nil {
		return err
	}
	if !rep.NoKeepalive() {
		fmt.Fprintf(w, "\nRead %d lines in %s (%s lines/s).\n", rep.Lines.Lines, took.Round(time.Millisecond), rate(rep.Lines.Lines, took))
	}
	if r.svg != "" {
		fmt.Fprintf(w, "Timeline written to %s.\n", r.svg)
	}
	return w.Flush()
}

// progressBar returns a bar sized to the files, or nil when there is no
// terminal to show it on.
func (r diagnoseRun) progressBar() *progressbar.ProgressBar {
	if !r.progress {
		return nil
	}
	total := int64(-1)
	if len(r.files) > 0 {
		total = 0
		for _, name := range r.files {
			if fi, err := os.Stat(name); err == nil {
				total += fi.Size()
			}
		}
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(r.errOut),
		progressbar.OptionSetDescription("reading"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetWidth(30))
}

func writeSVG(path string, rep *diagnose.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := rep.WriteSVG(f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

func rate(lines int, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	v := float64(lines) / d.Seconds()
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2f M", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.0f k", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
