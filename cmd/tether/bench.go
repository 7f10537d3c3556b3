package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/tetherws/tether/loadgen"
)

func benchCmd() *cobra.Command {
	var (
		b       benchRun
		mode    string
		headers []string
	)
	cmd := &cobra.Command{
		Use:   "bench URL...",
		Short: "Load-test a WebSocket server: messages/s, MB/s, latency percentiles, errors by close code",
		Long: `bench opens connections to one or more ws:// (or wss://) URLs and drives them:

  echo       send messages and time each reply (closed loop, or --rate messages/s)
  idle       hold the connections open, answering pings (memory, keepalive cost)
  handshake  open and close connections, --conns at a time
  broadcast  --conns subscribers and one publisher time each message through the server

Connections are spread over the URLs in turn. A run that needs more open files than
the process may have (ulimit -n) is split over several processes (--procs).
With --json it prints one JSON line per phase ({"event":"measure"} when the measured
window starts, {"event":"done"} when it ends) and then the result.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b.cfg.URLs = args
			b.cfg.Mode = loadgen.Mode(mode)
			h, err := parseBenchHeaders(headers)
			if err != nil {
				return err
			}
			b.cfg.Header = h
			b.in, b.out, b.errOut = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
			b.progress = !b.json && !b.worker && isTerminal(os.Stderr)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return b.run(ctx)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&mode, "mode", string(loadgen.Echo), "echo, idle, handshake or broadcast")
	fl.IntVarP(&b.cfg.Conns, "conns", "c", loadgen.DefaultConns, "connections (handshake: at a time; broadcast: subscribers)")
	fl.DurationVarP(&b.cfg.Duration, "duration", "d", loadgen.DefaultDuration, "measured window, after the warm-up")
	fl.Int64VarP(&b.cfg.Messages, "messages", "n", 0, "end the window after this many replies, handshakes or broadcasts instead")
	fl.DurationVar(&b.cfg.Warmup, "warmup", time.Second, "unmeasured load before the window (idle: settling time)")
	fl.IntVarP(&b.cfg.Size, "size", "s", loadgen.DefaultSize, "message size in bytes")
	fl.BoolVar(&b.cfg.Text, "text", false, "send text messages (default binary)")
	fl.Float64VarP(&b.cfg.Rate, "rate", "r", 0, "target messages/s over all connections, open loop (0: closed loop)")
	fl.BoolVar(&b.cfg.Compression, "compression", false, "offer permessage-deflate (the server picks the parameters)")
	fl.DurationVar(&b.cfg.Timeout, "timeout", loadgen.DefaultTimeout, "bound on each handshake and on the wait for the last replies")
	fl.IntVar(&b.cfg.DialConcurrency, "dial-concurrency", loadgen.DefaultDialConcurrency, "dials in flight while connecting")
	fl.StringArrayVarP(&headers, "header", "H", nil, "extra handshake header 'Name: value' (repeatable)")
	fl.BoolVar(&b.cfg.Insecure, "insecure", false, "skip TLS certificate verification (wss://)")
	fl.BoolVar(&b.cfg.NoCloseHandshake, "no-close-handshake", false, "end by closing the sockets, without the closing handshake")
	fl.IntVar(&b.procs, "procs", 0, "client processes to split the connections over (0: as many as the open-file limit needs)")
	fl.BoolVar(&b.json, "json", false, "print JSON lines (phase events, then the result) instead of a summary")
	fl.BoolVar(&b.worker, "worker", false, "run as one process of a split run (implies --json)")
	fl.IntVar(&b.cfg.ConnOffset, "conn-offset", 0, "number of this process's first connection in a split run")
	fl.MarkHidden("worker")
	fl.MarkHidden("conn-offset")
	return cmd
}

// benchRun is one `tether bench`.
type benchRun struct {
	cfg      loadgen.Config
	procs    int
	json     bool
	worker   bool
	progress bool
	out      io.Writer
	errOut   io.Writer
	// in is where a worker waits, once connected, for the other workers
	// of its split run: the parent closes it when all are connected.
	in    io.Reader
	limit int // open-file limit; 0 reads the process's
}

func (b *benchRun) run(ctx context.Context) error {
	limit := b.limit
	if limit == 0 {
		limit = loadgen.OpenFileLimit()
	}
	if b.worker {
		b.json = true
		return b.local(ctx, limit)
	}
	procs := b.procs
	files := b.cfg.Files()
	if procs == 0 {
		procs = 1
		if limit > 0 && files > limit {
			procs = loadgen.ProcsFor(b.cfg.Conns, limit)
			fmt.Fprintf(b.errOut, "tether bench: %d connections need about %d open files, over this process's limit of %d: "+
				"splitting them over %d client processes\n", b.cfg.Conns, files, limit, procs)
		}
	}
	if procs <= 1 {
		return b.local(ctx, limit)
	}
	if b.cfg.Mode == loadgen.Broadcast {
		return fmt.Errorf("broadcast runs in one process: at most %d subscribers here (open-file limit %d)", limit-64, limit)
	}
	return b.split(ctx, procs, limit)
}

// local runs the whole load in this process.
func (b *benchRun) local(ctx context.Context, limit int) error {
	if err := loadgen.CheckOpenFiles(b.cfg.Conns, b.cfg.Files(), limit); err != nil {
		return err
	}
	cfg := b.cfg
	var bar *progressbar.ProgressBar
	var start time.Time
	cfg.OnEvent = func(ev string) {
		if b.json {
			b.printEvent(ev)
		}
		if ev == "connected" && b.worker && b.in != nil {
			// The warm-up and the window start when every process of the
			// split run has its connections, so that the windows coincide:
			// a process that connected first must not measure, and end,
			// while another still dials.
			io.Copy(io.Discard, b.in)
		}
		switch {
		case ev == "measure" && b.progress:
			start = time.Now()
			bar = b.newBar()
		case ev == "done" && bar != nil:
			bar.Finish()
		}
	}
	cfg.OnProgress = func(done int64) {
		if bar == nil {
			return
		}
		if cfg.Messages > 0 {
			bar.Set64(done)
		} else {
			bar.Set64(time.Since(start).Milliseconds())
		}
	}
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}
	return b.report(res)
}

func (b *benchRun) newBar() *progressbar.ProgressBar {
	total, desc := b.cfg.Duration.Milliseconds(), "measuring (ms)"
	if b.cfg.Messages > 0 {
		total, desc = b.cfg.Messages, "measuring (messages)"
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(b.errOut),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetWidth(30))
}

var outMu sync.Mutex

func (b *benchRun) printEvent(ev string) {
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Fprintf(b.out, `{"event":%q,"time":%q}`+"\n", ev, time.Now().UTC().Format(time.RFC3339Nano))
}

func (b *benchRun) report(res *loadgen.Result) error {
	if b.json {
		outMu.Lock()
		defer outMu.Unlock()
		return json.NewEncoder(b.out).Encode(res)
	}
	res.WriteSummary(b.out)
	return nil
}

// split runs the load as procs copies of this program, each with its share
// of the connections (and of the rate and message count), and merges what
// they measured. Each process waits, once connected, until all are (their
// standard input is closed then), so their warm-ups and windows start
// together. Its "measure" event comes when every process has started
// measuring, "done" when every one has stopped.
func (b *benchRun) split(ctx context.Context, procs, limit int) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	type child struct {
		cmd *exec.Cmd
		res *loadgen.Result
		err error
	}
	var (
		mu       sync.Mutex
		seen     = map[string]int{}
		children = make([]*child, procs)
		stdins   []io.Closer
		wg       sync.WaitGroup
	)
	// release lets every process go on past its connections: when all are
	// connected, or when one has ended (the others must not wait for it).
	release := sync.OnceFunc(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, in := range stdins {
			in.Close()
		}
	})
	onEvent := func(ev string) {
		mu.Lock()
		seen[ev]++
		all := seen[ev] == procs
		mu.Unlock()
		if all && ev == "connected" {
			release()
		}
		if all && b.json {
			b.printEvent(ev)
		}
	}
	offset := b.cfg.ConnOffset
	for i := range procs {
		share := b.cfg
		share.Conns = b.cfg.Conns / procs
		if i < b.cfg.Conns%procs {
			share.Conns++
		}
		share.ConnOffset = offset
		offset += share.Conns
		share.Rate = b.cfg.Rate * float64(share.Conns) / float64(b.cfg.Conns)
		if b.cfg.Messages > 0 {
			share.Messages = max(1, b.cfg.Messages*int64(share.Conns)/int64(b.cfg.Conns))
		}
		if err := loadgen.CheckOpenFiles(share.Conns, share.Files(), limit); err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, exe, workerArgs(share)...)
		cmd.Stderr = b.errOut
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return err
		}
		mu.Lock()
		stdins = append(stdins, stdin)
		mu.Unlock()
		if err := cmd.Start(); err != nil {
			release()
			return err
		}
		c := &child{cmd: cmd}
		children[i] = c
		wg.Go(func() {
			c.res, c.err = readWorker(stdout, onEvent)
			release()
			if werr := cmd.Wait(); c.err == nil && werr != nil {
				c.err = werr
			}
		})
	}
	wg.Wait()
	var parts []*loadgen.Result
	for i, c := range children {
		if c.err != nil {
			return fmt.Errorf("client process %d of %d: %w", i+1, procs, c.err)
		}
		parts = append(parts, c.res)
	}
	return b.report(loadgen.Merge(parts...))
}

// workerArgs are the arguments of one process of a split run.
func workerArgs(c loadgen.Config) []string {
	args := []string{"bench", "--worker",
		"--mode", string(c.Mode),
		"--conns", fmt.Sprint(c.Conns),
		"--conn-offset", fmt.Sprint(c.ConnOffset),
		"--duration", c.Duration.String(),
		"--messages", fmt.Sprint(c.Messages),
		"--warmup", c.Warmup.String(),
		"--size", fmt.Sprint(c.Size),
		"--rate", fmt.Sprint(c.Rate),
		"--timeout", c.Timeout.String(),
		"--dial-concurrency", fmt.Sprint(c.DialConcurrency),
		fmt.Sprintf("--text=%t", c.Text),
		fmt.Sprintf("--compression=%t", c.Compression),
		fmt.Sprintf("--insecure=%t", c.Insecure),
		fmt.Sprintf("--no-close-handshake=%t", c.NoCloseHandshake),
	}
	for k, vs := range c.Header {
		for _, v := range vs {
			args = append(args, "--header", k+": "+v)
		}
	}
	return append(append(args, "--"), c.URLs...)
}

// readWorker reads a worker's JSON lines: events, then its result.
func readWorker(r io.Reader, onEvent func(string)) (*loadgen.Result, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev struct {
			Event string `json:"event"`
		}
		if json.Unmarshal(line, &ev) == nil && ev.Event != "" {
			onEvent(ev.Event)
			continue
		}
		var res loadgen.Result
		if err := json.Unmarshal(line, &res); err != nil {
			return nil, fmt.Errorf("bad output %q: %w", clipText(string(line), 80), err)
		}
		io.Copy(io.Discard, r)
		return &res, nil
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("ended without a result")
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// parseBenchHeaders turns 'Name: value' flags into a header.
func parseBenchHeaders(list []string) (http.Header, error) {
	if len(list) == 0 {
		return nil, nil
	}
	h := http.Header{}
	for _, s := range list {
		name, value, ok := strings.Cut(s, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("--header %q: want 'Name: value'", s)
		}
		h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	return h, nil
}
