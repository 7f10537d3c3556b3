package main

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/spf13/cobra"
	"github.com/tetherws/tether"
)

// exactArgs is cobra.ExactArgs with a hint: what the command wants.
func exactArgs(n int, hint string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("accepts %d argument(s), received %d: %s", n, len(args), hint)}
		}
		return nil
	}
}

// usageError is an error in the arguments: main prints the command's usage
// after it.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// dialError adds a hint to a failed dial when the URL looks like a common
// mistake.
func dialError(url string, err error) error {
	if !strings.Contains(url, "://") {
		return fmt.Errorf("%w (hint: a URL needs its scheme: ws://%s or wss://%s)", err, url, url)
	}
	var he *tether.HandshakeError
	if errors.As(err, &he) && he.StatusCode == 404 {
		return fmt.Errorf("%w (hint: check the path; tether serve has /echo and /broadcast)", err)
	}
	return err
}

// checkAddr catches a port given without a host: net.Listen would take
// "9507" as a host name and fail with a puzzling error.
func checkAddr(flag, addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return usageError{fmt.Errorf("%s %q: want HOST:PORT (hint: %s 127.0.0.1:%s, or :%s for every interface)", flag, addr, flag, addr, addr)}
	}
	return nil
}
