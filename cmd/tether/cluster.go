package main

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/tetherws/tether/hub/natsbroker"
)

// clusterFlags are serve's cluster flags (docs/contracts.md: --nats,
// --node; and the history of --jetstream).
type clusterFlags struct {
	nats       string
	node       string
	jetstream  bool
	history    int
	historyAge time.Duration
}

func (f *clusterFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.nats, "nats", "", "cluster mode: NATS server URL (or a comma-separated list); /broadcast and the dashboard span every node")
	fl.StringVar(&f.node, "node", "", "cluster mode: this node's name (default the host name)")
	fl.BoolVar(&f.jetstream, "jetstream", false, "cluster mode: keep each room's history in JetStream, so subscribers can resume with ?since=")
	fl.IntVar(&f.history, "history", natsbroker.DefaultHistory, "with --jetstream: messages kept per room")
	fl.DurationVar(&f.historyAge, "history-age", natsbroker.DefaultHistoryAge, "with --jetstream: how long a message is kept (0: no limit)")
}

// check refuses cluster flags that would be ignored.
func (f *clusterFlags) check(cmd *cobra.Command) error {
	fl := cmd.Flags()
	if f.nats == "" {
		for _, name := range []string{"node", "jetstream", "history", "history-age"} {
			if fl.Changed(name) {
				return fmt.Errorf("--%s needs --nats", name)
			}
		}
		return nil
	}
	if !f.jetstream {
		for _, name := range []string{"history", "history-age"} {
			if fl.Changed(name) {
				return fmt.Errorf("--%s needs --jetstream", name)
			}
		}
	}
	if f.history <= 0 {
		return fmt.Errorf("--history must be positive")
	}
	if f.historyAge < 0 {
		return fmt.Errorf("--history-age must not be negative")
	}
	return nil
}

// nodeName is --node, or the host name.
func (f *clusterFlags) nodeName() string {
	if f.node != "" {
		return f.node
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "tether"
}

func (f *clusterFlags) brokerOptions(logger *slog.Logger) natsbroker.Options {
	o := natsbroker.Options{URL: f.nats, JetStream: f.jetstream, History: f.history, HistoryAge: f.historyAge, Logger: logger}
	if o.HistoryAge == 0 {
		o.HistoryAge = -1 // the flag's 0 is the broker's "no limit"
	}
	return o
}

// redactURLs hides the passwords of a comma-separated list of URLs, for
// the log.
func redactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			if _, ok := u.User.Password(); !ok {
				u.User = url.User("xxxxx") // a token as the user name
			}
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}
