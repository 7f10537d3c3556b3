package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/tetherws/tether"
)

// connectFlags are connect's own flags: what to send, when to stop, how to
// print. docs/cli.md describes each.
type connectFlags struct {
	noClose     bool
	wait        time.Duration
	oneMessage  bool
	listenOnly  bool
	binary      bool
	raw         bool
	jsonlInput  bool
	output      string
	quiet       bool
	printRTT    bool
	compression string
}

func connectCmd() *cobra.Command {
	var (
		cf           connFlags
		kf           connectFlags
		tf           clientTLS
		headers      []string
		subprotocols []string
		origin       string
	)
	cmd := &cobra.Command{
		Use:   "connect URL",
		Short: "Send standard input lines as text messages and print what comes back",
		Args:  exactArgs(1, "connect needs the URL, for example ws://127.0.0.1:8080/echo"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if kf.quiet && !cmd.Flags().Changed("log-level") {
				cf.logLevel = "error"
			}
			logger, err := cf.logger(os.Stderr)
			if err != nil {
				return err
			}
			opts, err := dialOptions(&cf, &kf, &tf, logger, headers)
			if err != nil {
				return err
			}
			opts.Subprotocols, opts.Origin = subprotocols, origin
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runConnectFlags(ctx, args[0], opts, kf, os.Stdin, os.Stdout, os.Stderr)
		},
	}
	cf.register(cmd)
	tf.register(cmd, "")
	fl := cmd.Flags()
	fl.StringArrayVar(&headers, "header", nil, "extra handshake header 'Name: value' (repeatable)")
	fl.StringArrayVar(&subprotocols, "subprotocol", nil, "subprotocol to offer (repeatable)")
	fl.StringVar(&origin, "origin", "", "Origin header")
	fl.BoolVarP(&kf.noClose, "no-close", "n", false, "at end of input keep reading until the peer closes (or SIGINT)")
	fl.DurationVarP(&kf.wait, "wait", "w", 0, "at end of input keep reading for this long, then close with 1000")
	fl.BoolVarP(&kf.oneMessage, "one-message", "1", false, "close with 1000 and exit after the first message received")
	fl.BoolVar(&kf.listenOnly, "listen-only", false, "send nothing, ignore standard input; read until the peer closes (or SIGINT)")
	fl.BoolVarP(&kf.binary, "binary", "b", false, "send each input line as a binary message")
	fl.BoolVar(&kf.raw, "raw", false, "send all of standard input as one binary message; print messages as raw bytes unless --output is given")
	fl.BoolVar(&kf.jsonlInput, "jsonl-input", false, `each input line is {"type":"text"|"binary","data":...} as --output jsonl prints`)
	fl.StringVarP(&kf.output, "output", "o", "text", "how to print messages: text (binary in hex), hex, base64, jsonl or raw")
	fl.BoolVarP(&kf.quiet, "quiet", "q", false, "no logs below error level (the close report of a failed connection still prints)")
	fl.BoolVar(&kf.printRTT, "print-rtt", false, "print each keepalive round trip on standard error ('rtt 1.2ms')")
	fl.StringVar(&kf.compression, "compression", "on", "offer permessage-deflate: on or off")
	return cmd
}

// dialOptions turns the flags into DialOptions.
func dialOptions(cf *connFlags, kf *connectFlags, tf *clientTLS, logger *slog.Logger, headers []string) (*tether.DialOptions, error) {
	copts, err := cf.options(logger)
	if err != nil {
		return nil, err
	}
	switch kf.compression {
	case "on":
	case "off":
		copts.CompressionMode = tether.CompressionDisabled
	default:
		return nil, fmt.Errorf("--compression must be on or off, not %q", kf.compression)
	}
	if kf.raw && !kf.outputSet() {
		kf.output = "raw"
	}
	if _, ok := printers[kf.output]; !ok {
		return nil, fmt.Errorf("--output must be text, hex, base64, jsonl or raw, not %q", kf.output)
	}
	if n := btoi(kf.binary) + btoi(kf.raw) + btoi(kf.jsonlInput) + btoi(kf.listenOnly); n > 1 {
		return nil, fmt.Errorf("--binary, --raw, --jsonl-input and --listen-only exclude each other")
	}
	if kf.noClose && kf.wait > 0 {
		return nil, fmt.Errorf("--no-close and --wait exclude each other")
	}
	h, err := parseHeaders(headers)
	if err != nil {
		return nil, err
	}
	tc, err := tf.config()
	if err != nil {
		return nil, err
	}
	return &tether.DialOptions{ConnOptions: copts, HTTPHeader: h, TLSConfig: tc}, nil
}

// outputSet reports whether --output was given a value other than its
// default; --raw only changes the default.
func (kf *connectFlags) outputSet() bool { return kf.output != "text" }

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func parseHeaders(headers []string) (http.Header, error) {
	h := http.Header{}
	for _, kv := range headers {
		k, v, ok := strings.Cut(kv, ":")
		if !ok {
			return nil, fmt.Errorf("--header %q: want 'Name: value'", kv)
		}
		h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return h, nil
}

// runConnect is connect with its default flags: lines in as text, messages
// out as text (binary in hex).
func runConnect(ctx context.Context, url string, opts *tether.DialOptions, in io.Reader, out, errOut io.Writer) error {
	return runConnectFlags(ctx, url, opts, connectFlags{output: "text"}, in, out, errOut)
}
