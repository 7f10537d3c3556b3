package tethertest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/tetherws/tether"
)

// pairTimeout bounds Pair's handshake, which needs no network: only a
// deadlock in the code under test could make it wait.
const pairTimeout = 10 * time.Second

// pairURL is the URL the client end of a pair dials and reports as its Path.
const pairURL = "ws://tethertest.pair/"

// Pair returns a client and a server connection joined in memory (a
// net.Pipe): they do a real opening handshake, through tether.Dial and
// tether.Accept, and exchange real frames, so everything but the network
// is what production runs. The options may be nil; set their Clock to a
// *Clock to drive keepalive by hand. Unless the options name a registry,
// the connections are kept out of tether.DefaultRegistry (tests running in
// parallel would otherwise see each other's pairs, and the registry warn
// about them). Both are closed at the end of the test, and Pair fails the
// test if the handshake fails.
//
// Dial's proxy settings and NetDialContext are replaced: the client end
// never touches the network.
func Pair(tb testing.TB, client *tether.DialOptions, server *tether.AcceptOptions) (clientConn, serverConn *tether.Conn) {
	tb.Helper()
	cc, sc, err := pair(client, server)
	if err != nil {
		tb.Fatalf("tethertest.Pair: %v", err)
	}
	tb.Cleanup(func() {
		cc.CloseNow()
		sc.CloseNow()
	})
	return cc, sc
}

func pair(client *tether.DialOptions, server *tether.AcceptOptions) (*tether.Conn, *tether.Conn, error) {
	var dopts tether.DialOptions
	if client != nil {
		dopts = *client
	}
	var aopts tether.AcceptOptions
	if server != nil {
		aopts = *server
	}
	outOfDefault(&dopts.ConnOptions)
	outOfDefault(&aopts.ConnOptions)

	a, b := net.Pipe()
	accepted := make(chan acceptResult, 1)
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := tether.Accept(w, r, &aopts)
		accepted <- acceptResult{c, err}
	})}
	ln := newOneConnListener(b)
	served := make(chan struct{})
	go func() {
		defer close(served)
		hs.Serve(ln)
	}()
	defer func() {
		hs.Close() // closes the listener; the hijacked connection is not its own
		<-served
	}()

	dopts.Proxy = func(*http.Request) (*url.URL, error) { return nil, nil }
	dialed := false
	dopts.NetDialContext = func(context.Context, string, string) (net.Conn, error) {
		if dialed { // a redirect: there is nowhere else to go
			return nil, errors.New("tethertest: a pair's client cannot dial twice")
		}
		dialed = true
		return a, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), pairTimeout)
	defer cancel()
	cc, _, err := tether.Dial(ctx, pairURL, &dopts)
	if err != nil {
		a.Close()
		b.Close()
		return nil, nil, err
	}
	select {
	case res := <-accepted:
		if res.err != nil {
			cc.CloseNow()
			return nil, nil, res.err
		}
		return cc, res.c, nil
	case <-ctx.Done():
		cc.CloseNow()
		return nil, nil, errors.New("tethertest: the server end of a pair did not accept")
	}
}

type acceptResult struct {
	c   *tether.Conn
	err error
}

// outOfDefault keeps a connection out of tether.DefaultRegistry unless the
// options name a registry.
func outOfDefault(o *tether.ConnOptions) {
	if o.Registry == nil {
		o.Registry = tether.NoRegistry
	}
}

// oneConnListener hands out one connection, then blocks until closed, which
// is how http.Server is made to serve a single net.Pipe end.
type oneConnListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	addr  net.Addr
}

func newOneConnListener(c net.Conn) *oneConnListener {
	l := &oneConnListener{conns: make(chan net.Conn, 1), done: make(chan struct{}), addr: c.LocalAddr()}
	l.conns <- c
	return l
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *oneConnListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return l.addr }
