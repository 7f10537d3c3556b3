package tethertest_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/tetherws/tether"
	"github.com/tetherws/tether/tethertest"
)

// t stands for the *testing.T of a test. An example has none, so its
// cleanups never run: the examples close what they open themselves, which
// a test leaves to t.
var t = &testing.T{}

// A keepalive tested without sleeping: the client pings on the fake clock,
// and only when the test advances it.
func ExampleClock() {
	clk := tethertest.NewClock()
	client, _ := tethertest.Pair(t,
		&tether.DialOptions{ConnOptions: tether.ConnOptions{Clock: clk, PingInterval: 20 * time.Second}},
		&tether.AcceptOptions{ConnOptions: tether.ConnOptions{Clock: clk, PingInterval: -1}})
	defer client.CloseNow()

	clk.Advance(15 * time.Second)
	fmt.Println("pings after 15 s:", client.Stats().PingsSent)
	clk.Advance(5 * time.Second) // the first ping is due 16-20 s after opening
	fmt.Println("pings after 20 s:", client.Stats().PingsSent)
	// Output:
	// pings after 15 s: 0
	// pings after 20 s: 1
}

// Two connected ends, without a network.
func ExamplePair() {
	ctx := context.Background()
	client, server := tethertest.Pair(t, nil, nil)
	defer client.CloseNow()
	defer server.CloseNow()
	client.Write(ctx, tether.Text, []byte("hello"))
	_, msg, _ := server.Read(ctx)
	fmt.Println(server.Role(), "read", string(msg))
	// Output: server read hello
}

// A server for code that dials a URL; Echo sends every message back.
func ExampleNewServer() {
	ctx := context.Background()
	srv := tethertest.NewServer(t, nil, tethertest.Echo)
	defer srv.Close()
	c := srv.Dial(t, "/echo", nil)
	c.Write(ctx, tether.Text, []byte("hello"))
	_, reply, _ := c.Read(ctx)
	fmt.Println(string(reply))
	// Output: hello
}

// A handler of your own: this one greets, then closes.
func ExampleNewServer_handler() {
	ctx := context.Background()
	srv := tethertest.NewServer(t, nil, func(c *tether.Conn, r *http.Request) {
		c.Write(r.Context(), tether.Text, []byte("welcome to "+r.URL.Path))
		c.Close(tether.StatusNormal, "")
	})
	defer srv.Close()
	c := srv.Dial(t, "/lobby", nil)
	_, msg, _ := c.Read(ctx)
	fmt.Println(string(msg))
	// Output: welcome to /lobby
}
