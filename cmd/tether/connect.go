package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/tetherws/tether"
)

func connectCmd() *cobra.Command {
	var (
		cf           connFlags
		headers      []string
		subprotocols []string
		origin       string
	)
	cmd := &cobra.Command{
		Use:   "connect URL",
		Short: "Send standard input lines as text messages and print what comes back",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			logger, err := cf.logger(os.Stderr)
			if err != nil {
				return err
			}
			copts, err := cf.options(logger)
			if err != nil {
				return err
			}
			h := http.Header{}
			for _, kv := range headers {
				k, v, ok := strings.Cut(kv, ":")
				if !ok {
					return fmt.Errorf("--header %q: want 'Name: value'", kv)
				}
				h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
			}
			opts := &tether.DialOptions{ConnOptions: copts, HTTPHeader: h, Subprotocols: subprotocols, Origin: origin}
			return runConnect(cmd.Context(), args[0], opts, os.Stdin, os.Stdout, os.Stderr)
		},
	}
	cf.register(cmd)
	fl := cmd.Flags()
	fl.StringArrayVar(&headers, "header", nil, "extra handshake header 'Name: value' (repeatable)")
	fl.StringArrayVar(&subprotocols, "subprotocol", nil, "subprotocol to offer (repeatable)")
	fl.StringVar(&origin, "origin", "", "Origin header")
	return cmd
}

// runConnect sends each input line as a text message and prints each received
// message (text as is, binary as hex). At end of input it closes with 1000
// and returns nil; when the connection ends otherwise it prints the close
// code and reason on stderr and returns a non-zero exit.
func runConnect(ctx context.Context, url string, opts *tether.DialOptions, in io.Reader, out, errOut io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	c, _, err := tether.Dial(ctx, url, opts)
	if err != nil {
		return err
	}
	defer c.CloseNow()

	printed := make(chan error, 1)
	received := make(chan struct{}, 1<<16)
	go func() { printed <- printMessages(c, out, received) }()
	sent := 0

	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-c.Done():
				return
			}
		}
	}()

	for {
		select {
		case line, ok := <-lines:
			if !ok {
				awaitReplies(received, sent)
				c.Close(tether.StatusNormal, "")
				<-printed
				return nil
			}
			if err := c.Write(ctx, tether.Text, []byte(line)); err != nil {
				return closed(errOut, <-printed)
			}
			sent++
		case err := <-printed:
			return closed(errOut, err)
		}
	}
}

// awaitReplies gives the server a moment to answer before the close: it
// returns once as many messages came back as were sent (an echo server), or
// after a quiet spell with nothing arriving, or after a few seconds at most.
func awaitReplies(received <-chan struct{}, sent int) {
	const quiet, most = 300 * time.Millisecond, 5 * time.Second
	deadline := time.After(most)
	for n := 0; n < sent; n++ {
		select {
		case <-received:
		case <-time.After(quiet):
			return
		case <-deadline:
			return
		}
	}
}

func printMessages(c *tether.Conn, out io.Writer, received chan<- struct{}) error {
	w := bufio.NewWriter(out)
	for {
		typ, p, err := c.Read(context.Background())
		if err != nil {
			w.Flush()
			return err
		}
		if typ == tether.Binary {
			w.WriteString(hex.EncodeToString(p))
		} else {
			w.Write(p)
		}
		w.WriteByte('\n')
		w.Flush()
		select {
		case received <- struct{}{}:
		default:
		}
	}
}

// closed reports how the connection ended and picks the exit code.
func closed(errOut io.Writer, err error) error {
	var ce *tether.CloseError
	if !errors.As(err, &ce) {
		fmt.Fprintf(errOut, "connection closed: %v\n", err)
		return exitError{1}
	}
	fmt.Fprintf(errOut, "connection closed: %d %s\n", ce.Code, ce.Reason)
	if ce.Code == tether.StatusNormal {
		return nil
	}
	return exitError{1}
}
