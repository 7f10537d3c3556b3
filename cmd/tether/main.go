// Command tether serves, connects to, proxies and diagnoses WebSocket
// connections. It is a thin layer over the tether packages; its flags and
// output are a contract (docs/contracts.md, Contract 1).
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

func main() {
	root := rootCmd()
	cmd, err := root.ExecuteC()
	if err == nil {
		return
	}
	if e, ok := err.(exitError); ok {
		os.Exit(e.code)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "tether:") {
		msg = "tether: " + msg
	}
	fmt.Fprintln(os.Stderr, msg)
	if errors.As(err, new(usageError)) {
		fmt.Fprintln(os.Stderr)
		fmt.Fprint(os.Stderr, cmd.UsageString())
	}
	os.Exit(1)
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "tether",
		Short:         "WebSocket server, client, proxy and diagnostics with keepalive you can see",
		Version:       version(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("tether {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(serveCmd(), connectCmd(), diagnoseCmd(), benchCmd(), certCmd(), proxyCmd())
	return root
}

// version is the module's version and the commit it was built from, as
// the Go toolchain recorded them.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown version)"
	}
	v := bi.Main.Version
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = " (modified)"
			}
		}
	}
	if rev != "" {
		v += " commit " + rev + modified
	}
	return v + " " + bi.GoVersion
}

// exitError ends the program with a code after its message was printed.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }
