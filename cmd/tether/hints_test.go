package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestHints runs the common mistakes through the command tree: each one is
// a usage error (main prints the usage after it) with a hint, or a dial
// error naming the scheme it lacks.
func TestHints(t *testing.T) {
	cases := []struct {
		args  []string
		usage bool
		want  string
	}{
		{[]string{"serve", "--addr", "9507"}, true, "hint: --addr 127.0.0.1:9507"},
		{[]string{"serve", "--log-level", "verbose"}, true, "want debug, info, warn or error"},
		{[]string{"connect"}, true, "connect needs the URL"},
		{[]string{"connect", "--no-such-flag", "ws://x"}, true, "unknown flag"},
		{[]string{"connect", "127.0.0.1:1/echo"}, false, "hint: a URL needs its scheme: ws://127.0.0.1:1/echo"},
		{[]string{"proxy", "--upstream", "127.0.0.1:1"}, false, "needs its scheme (hint: ws://127.0.0.1:1)"},
	}
	for _, tc := range cases {
		root := rootCmd()
		root.SetArgs(tc.args)
		root.SetIn(strings.NewReader(""))
		root.SetOut(new(bytes.Buffer))
		_, err := root.ExecuteC()
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.As(err, new(usageError)) != tc.usage {
			t.Errorf("%v: %v, want %q (usage error: %v)", tc.args, err, tc.want, tc.usage)
		}
	}
	var out bytes.Buffer
	root := rootCmd()
	root.SetArgs([]string{"--version"})
	root.SetOut(&out)
	if err := root.Execute(); err != nil || !strings.HasPrefix(out.String(), "tether ") {
		t.Fatalf("--version: %q %v", out.String(), err)
	}
}
