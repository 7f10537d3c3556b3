package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/tetherws/tether"
)

// connFlags are the flags serve and connect share.
type connFlags struct {
	pingInterval time.Duration
	pingTimeout  time.Duration
	mode         string
	maxSize      int64
	logLevel     string
	logFormat    string
	logFrames    bool
}

func (f *connFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.DurationVar(&f.pingInterval, "ping-interval", tether.DefaultPingInterval, "keepalive ping interval (0 disables)")
	fl.DurationVar(&f.pingTimeout, "ping-timeout", tether.DefaultPingTimeout, "time to wait for a keepalive pong (0: never time out)")
	fl.StringVar(&f.mode, "keepalive-mode", "fixed", "keepalive mode: fixed (every interval) or idle (only after an idle interval)")
	fl.Int64Var(&f.maxSize, "max-size", tether.DefaultReadLimit, "largest message accepted, in bytes")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fl.BoolVar(&f.logFrames, "log-frames", false, "log every frame sent and received (at debug level)")
}

// options turns the flags into connection options. On the command line 0
// disables, where the library's zero value means "default".
func (f *connFlags) options(logger *slog.Logger) (tether.ConnOptions, error) {
	o := tether.ConnOptions{
		PingInterval: f.pingInterval,
		PingTimeout:  f.pingTimeout,
		ReadLimit:    f.maxSize,
		Logger:       logger,
		LogFrames:    f.logFrames,
	}
	if o.PingInterval <= 0 {
		o.PingInterval = -1
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = -1
	}
	if o.ReadLimit <= 0 {
		return o, fmt.Errorf("--max-size must be positive")
	}
	switch f.mode {
	case "fixed":
	case "idle":
		o.KeepaliveMode = tether.KeepaliveIdle
	default:
		return o, fmt.Errorf("--keepalive-mode must be fixed or idle, not %q", f.mode)
	}
	return o, nil
}

func (f *connFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error (for frames: --log-level debug --log-frames)", f.logLevel)}
	}
	ho := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(f.logFormat) {
	case "text":
		return slog.New(slog.NewTextHandler(w, ho)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, ho)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, not %q", f.logFormat)
}
