// Package feedclient stands for an application outside Tether's repository:
// a client that follows a feed of JSON events over a WebSocket, resuming
// where it left off after each reconnection, and a greeting over a
// net.Conn. TestOutsideModule builds it as a module of its own.
package feedclient

import (
	"bufio"
	"context"
	"net"
	"strings"
	"time"

	"github.com/tetherws/tether"
)

// Event is one message of the feed.
type Event struct {
	Seq  int    `json:"seq"`
	Text string `json:"text"`
}

// Subscribe is what the client sends on each connection.
type Subscribe struct {
	Since int `json:"since"`
}

// Options configure Follow.
type Options struct {
	// Clock times the backoff; nil is the wall clock.
	Clock tether.Clock
	// OnRetry, if set, is told of each redial and its delay.
	OnRetry func(attempt int, delay time.Duration)
}

// Follow follows the feed at url until ctx ends, passing each event to
// handle. After a lost connection it redials with a backoff of 1 s (at
// random, the first time), then 2 s, 4 s, 8 s, capped at 10 s, and
// subscribes again from the last event it got.
func Follow(ctx context.Context, url string, opts Options, handle func(Event)) error {
	last := 0
	ro := &tether.ReconnectOptions{
		DialOptions:  tether.DialOptions{ConnOptions: tether.ConnOptions{Clock: opts.Clock, PingInterval: -1}},
		InitialDelay: time.Second,
		MinDelay:     2 * time.Second,
		MaxDelay:     10 * time.Second,
		Factor:       2,
		Jitter:       -1,
		OnRetry: func(attempt int, delay time.Duration, _ error) {
			if opts.OnRetry != nil {
				opts.OnRetry(attempt, delay)
			}
		},
	}
	return tether.ReconnectFunc(ctx, url, ro, func(c *tether.Conn) error {
		if err := tether.WriteJSON(ctx, c, Subscribe{Since: last}); err != nil {
			return nil // lost already: redial
		}
		for {
			var e Event
			if err := tether.ReadJSON(ctx, c, &e); err != nil {
				return nil
			}
			last = e.Seq
			handle(e)
		}
	})
}

// Greet speaks a line protocol over any net.Conn: it sends "HELLO name"
// and returns the answer line.
func Greet(nc net.Conn, name string) (string, error) {
	if _, err := nc.Write([]byte("HELLO " + name + "\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(nc).ReadString('\n')
	return strings.TrimSuffix(line, "\n"), err
}
