package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/tetherws/tether"
)

// session is one run of connect: the connection, what it was asked to do,
// and where it prints.
type session struct {
	c      *tether.Conn
	kf     connectFlags
	out    io.Writer
	errOut io.Writer
	sent   int
}

// runConnectFlags dials url, sends standard input as kf says and prints
// each message received, then ends as kf says: at end of input (after a
// moment for replies, or after --wait, or never with --no-close), after
// the first message with --one-message, or when the peer closes. A peer's
// close is always reported with its code; the exit is 0 only when the peer
// answered our own close with 1000 or 1001.
func runConnectFlags(ctx context.Context, url string, opts *tether.DialOptions, kf connectFlags, in io.Reader, out, errOut io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	var rtts *tether.Subscription
	if kf.printRTT {
		if opts.Registry == nil {
			opts.Registry = tether.NewRegistry()
		}
		rtts = opts.Registry.Subscribe(64)
	}
	c, _, err := tether.Dial(ctx, url, opts)
	if err != nil {
		if rtts != nil {
			rtts.Close()
		}
		return dialError(url, err)
	}
	defer c.CloseNow()
	if rtts != nil {
		errOut = &lockedWriter{w: errOut}
		done := make(chan struct{})
		go func() {
			defer close(done)
			printRTTs(rtts, errOut)
		}()
		defer func() {
			rtts.Close()
			<-done
		}()
	}
	s := &session{c: c, kf: kf, out: out, errOut: errOut}
	return s.run(ctx, in)
}

func (s *session) run(ctx context.Context, in io.Reader) error {
	printed := make(chan error, 1)
	received := make(chan struct{}, 1<<16)
	go func() { printed <- s.printMessages(received) }()

	inputDone := make(chan error, 1)
	if s.kf.listenOnly {
		inputDone = nil // never: only the peer or a signal ends it
	} else {
		go func() { inputDone <- s.send(ctx, in) }()
	}
	var first <-chan struct{}
	if s.kf.oneMessage {
		first = received
	}
	select {
	case err := <-inputDone:
		if err != nil { // a write failed: the connection ended, and says why
			return s.report(<-printed)
		}
		if done, err := s.endOfInput(ctx, received, printed); done {
			return err
		}
	case err := <-printed:
		return s.report(err)
	case <-first:
	case <-ctx.Done():
	}
	s.c.Close(tether.StatusNormal, "")
	return s.report(<-printed)
}

// endOfInput waits as the flags say once input has ended. done reports that
// the connection ended meanwhile, with err its exit.
func (s *session) endOfInput(ctx context.Context, received <-chan struct{}, printed <-chan error) (done bool, err error) {
	var timeout <-chan time.Time
	switch {
	case s.kf.noClose:
	case s.kf.wait > 0:
		timeout = time.After(s.kf.wait)
	default:
		if s.kf.oneMessage {
			break // the first message (below) or the peer ends it
		}
		awaitReplies(received, s.sent)
		return false, nil
	}
	var first <-chan struct{}
	if s.kf.oneMessage {
		first = received
	}
	select {
	case err := <-printed:
		return true, s.report(err)
	case <-timeout:
	case <-first:
	case <-ctx.Done():
	}
	return false, nil
}

// send writes standard input as the flags say; it returns nil at end of
// input, or the write's error.
func (s *session) send(ctx context.Context, in io.Reader) error {
	if s.kf.raw {
		p, err := io.ReadAll(in)
		if err != nil {
			return nil // end of input, as far as we can read it
		}
		s.sent++
		return s.c.Write(ctx, tether.Binary, p)
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		typ, p := tether.Text, sc.Bytes()
		if s.kf.binary {
			typ = tether.Binary
		}
		if s.kf.jsonlInput {
			var err error
			if typ, p, err = parseJSONLine(p); err != nil {
				fmt.Fprintf(s.errOut, "tether: input line skipped: %v\n", err)
				continue
			}
		}
		if err := s.c.Write(ctx, typ, p); err != nil {
			return err
		}
		s.sent++
	}
	return nil
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

func (s *session) printMessages(received chan<- struct{}) error {
	w := bufio.NewWriter(s.out)
	print := printers[s.kf.output]
	for {
		typ, p, err := s.c.Read(context.Background())
		if err != nil {
			w.Flush()
			return err
		}
		print(w, typ, p)
		w.Flush()
		select {
		case received <- struct{}{}:
		default:
		}
	}
}

// report says how the connection ended and picks the exit. The peer's own
// code is what it reports, even when our close went first: a peer that
// closed 1009 while our 1000 was on its way has refused something, and
// that is a failure.
func (s *session) report(err error) error {
	var ce *tether.CloseError
	if !errors.As(err, &ce) {
		fmt.Fprintf(s.errOut, "connection closed: %v\n", err)
		return exitError{1}
	}
	code, reason := ce.Code, ce.Reason
	if ce.Rcvd != nil {
		code, reason = ce.Rcvd.Code, ce.Rcvd.Reason
	}
	clean := ce.Initiator == "local" && ce.Rcvd != nil && (code == tether.StatusNormal || code == tether.StatusGoingAway)
	if clean {
		return nil
	}
	fmt.Fprintf(s.errOut, "connection closed: %d %s\n", code, reason)
	return exitError{1}
}

// printRTTs prints each keepalive round trip until the subscription ends.
func printRTTs(sub *tether.Subscription, errOut io.Writer) {
	for e := range sub.C {
		if e.Kind == tether.EventPong {
			fmt.Fprintf(errOut, "rtt %v\n", e.RTT)
		}
	}
}

// lockedWriter serializes writes of goroutines sharing standard error.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
