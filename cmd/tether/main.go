// Command tether serves, connects to and (later) diagnoses WebSocket
// connections. It is a thin layer over the tether packages; its flags and
// output are a contract (docs/contracts.md, Contract 1).
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{
		Use:           "tether",
		Short:         "WebSocket server, client and diagnostics with keepalive you can see",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(), connectCmd(), diagnoseCmd(), benchCmd(), certCmd(), proxyCmd())
	if err := root.Execute(); err != nil {
		if e, ok := err.(exitError); ok {
			os.Exit(e.code)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "tether:") {
			msg = "tether: " + msg
		}
		fmt.Fprintln(os.Stderr, msg)
		os.Exit(1)
	}
}

// exitError ends the program with a code after its message was printed.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }
