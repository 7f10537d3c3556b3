package tether_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/tetherws/tether"
)

// serveExample starts handler on a loopback port, as your server would on
// its own, and returns its ws:// URL. The examples dial it to show the
// server at work.
func serveExample(handler http.HandlerFunc) (url string, stop func()) {
	srv := httptest.NewServer(handler)
	return "ws" + strings.TrimPrefix(srv.URL, "http"), srv.Close
}

// An echo endpoint in a net/http server: Accept in a handler, then read and
// write until the connection ends.
func ExampleAccept() {
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		c, err := tether.Accept(w, r, nil) // same-origin check on; nil options = defaults
		if err != nil {
			return // Accept already answered 400, 403 or 426
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return // a *tether.CloseError says how it ended
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	})
	url, stop := serveExample(mux.ServeHTTP) // in production: http.ListenAndServe(addr, mux)
	defer stop()

	ctx := context.Background()
	c, _, err := tether.Dial(ctx, url+"/echo", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	c.Write(ctx, tether.Text, []byte("hello"))
	_, reply, _ := c.Read(ctx)
	fmt.Println(string(reply))
	c.Close(tether.StatusNormal, "")
	// Output: hello
}

// A client with its own keepalive: a ping every 5 s, and the connection
// fails with 1011 if a pong takes longer than 3 s. Its records carry its
// ID, so its keepalive lines can be told from any other connection's.
func ExampleDial() {
	url, stop := serveExample(echo)
	defer stop()

	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, _, err := tether.Dial(ctx, url, &tether.DialOptions{
		ConnOptions: tether.ConnOptions{PingInterval: 5 * time.Second, PingTimeout: 3 * time.Second, Logger: logger},
	})
	if err != nil {
		fmt.Println(err) // a *tether.HandshakeError carries the HTTP status and response
		return
	}
	defer c.Close(tether.StatusNormal, "bye")
	if _, err := c.Ping(ctx); err != nil { // one ping now, waiting for its pong
		fmt.Println(err)
		return
	}
	st := c.Stats()
	fmt.Println("interval", st.PingInterval, "timeout", st.PingTimeout, "pongs", st.PongsReceived)
	// Output: interval 5s timeout 3s pongs 1
}

// Serve calls the function for each message on the connection's reader
// goroutine, with the message in a pooled buffer: no allocation per message.
func ExampleConn_Serve() {
	url, stop := serveExample(func(w http.ResponseWriter, r *http.Request) {
		c, err := tether.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.Serve(r.Context(), func(typ tether.MessageType, msg []byte) error {
			// msg is valid until this function returns: copy what you keep.
			return c.Write(r.Context(), typ, append([]byte("echo: "), msg...))
		})
	})
	defer stop()

	ctx := context.Background()
	c, _, _ := tether.Dial(ctx, url, nil)
	for _, m := range []string{"one", "two"} {
		c.Write(ctx, tether.Text, []byte(m))
		_, reply, _ := c.Read(ctx)
		fmt.Println(string(reply))
	}
	c.Close(tether.StatusNormal, "")
	// Output:
	// echo: one
	// echo: two
}

// Go serves a connection like Serve but returns at once, so the HTTP
// handler returns and net/http frees the request: the way to hold many
// connections. The request's context ends with the handler, so the
// function writes under another.
func ExampleConn_Go() {
	ended := make(chan error, 1)
	url, stop := serveExample(func(w http.ResponseWriter, r *http.Request) {
		c, err := tether.Accept(w, r, nil)
		if err != nil {
			return
		}
		c.Go(func(typ tether.MessageType, msg []byte) error {
			return c.Write(context.Background(), typ, msg)
		}, func(err error) { ended <- err }) // called once, when the connection has ended
	})
	defer stop()

	ctx := context.Background()
	c, _, _ := tether.Dial(ctx, url, nil)
	c.Write(ctx, tether.Text, []byte("served by Go"))
	_, reply, _ := c.Read(ctx)
	fmt.Println(string(reply))
	c.Close(tether.StatusNormal, "done")
	fmt.Println("server side ended:", <-ended)
	// Output:
	// served by Go
	// server side ended: websocket closed: 1000 done
}

// JSON messages, as gorilla's ReadJSON and WriteJSON or coder's wsjson.
func ExampleWriteJSON() {
	type order struct {
		Item string `json:"item"`
		Qty  int    `json:"qty"`
	}
	url, stop := serveExample(func(w http.ResponseWriter, r *http.Request) {
		c, err := tether.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		var o order
		for tether.ReadJSON(r.Context(), c, &o) == nil {
			o.Qty *= 2
			tether.WriteJSON(r.Context(), c, o)
		}
	})
	defer stop()

	ctx := context.Background()
	c, _, _ := tether.Dial(ctx, url, nil)
	tether.WriteJSON(ctx, c, order{Item: "tea", Qty: 2})
	var got order
	tether.ReadJSON(ctx, c, &got)
	fmt.Printf("%+v\n", got)
	c.Close(tether.StatusNormal, "")
	// Output: {Item:tea Qty:4}
}

// A line protocol tunnelled through a WebSocket: both ends see a net.Conn.
func ExampleNetConn() {
	url, stop := serveExample(func(w http.ResponseWriter, r *http.Request) {
		c, err := tether.Accept(w, r, nil)
		if err != nil {
			return
		}
		nc := tether.NetConn(r.Context(), c, tether.Binary) // closed when the handler returns
		sc := bufio.NewScanner(nc)
		for sc.Scan() {
			fmt.Fprintln(nc, strings.ToUpper(sc.Text()))
		}
	})
	defer stop()

	ctx := context.Background()
	c, _, _ := tether.Dial(ctx, url, nil)
	nc := tether.NetConn(ctx, c, tether.Binary)
	defer nc.Close()
	fmt.Fprintln(nc, "hello through a tunnel")
	line, _ := bufio.NewReader(nc).ReadString('\n')
	fmt.Print(line)
	// Output: HELLO THROUGH A TUNNEL
}

// A helper that dials for its callers marks itself, so that the registry's
// duplicate-connection warning names the lines that called it, not the
// line inside it that called Dial.
func ExampleHelper() {
	connect := func(ctx context.Context, url string) (*tether.Conn, error) {
		tether.Helper()
		c, _, err := tether.Dial(ctx, url, nil)
		return c, err
	}
	_ = connect
}

// echo is a handler that echoes every message.
func echo(w http.ResponseWriter, r *http.Request) {
	c, err := tether.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	for {
		typ, msg, err := c.Read(r.Context())
		if err != nil {
			return
		}
		c.Write(r.Context(), typ, msg)
	}
}
