package servers

import (
	"context"
	"io"
	"log/slog"
	"net/http"

	"github.com/tetherws/tether"
)

// Tether as its README advises for many connections: Accept in a net/http
// handler, then Go, which serves the connection on its own reader goroutine
// (each message written back by handle as it comes, in a pooled buffer, no
// hand-over between goroutines) and returns, so the handler returns too and
// net/http frees the request and its goroutine. Logs are discarded (the
// other libraries log nothing); the connection registry stays on, as by
// default.
//
// Variants: "serve" keeps the handler's goroutine, blocked in Serve (the
// same echo, one goroutine more per connection); "read" echoes with the
// README's simplest loop, Read and Write in the handler's goroutine (Read
// hands over a new slice per message); "reader" echoes with Reader and
// Writer (io.Copy), recycling the message buffers; "noregistry" keeps
// connections out of the registry.
func init() { register("tether", newTether) }

func newTether(o Options) (Server, error) {
	opts := &tether.AcceptOptions{ConnOptions: tether.ConnOptions{
		PingInterval: -1,
		PingTimeout:  o.KeepaliveTimeout,
		ReadLimit:    o.ReadLimit,
		Logger:       slog.New(slog.DiscardHandler),
	}}
	if o.Keepalive > 0 {
		opts.PingInterval = o.Keepalive
	}
	if !o.Compression {
		opts.CompressionMode = tether.CompressionDisabled
	}
	if o.Variant == "noregistry" {
		opts.Registry = tether.NoRegistry
	}
	var echo func(context.Context, *tether.Conn)
	switch o.Variant {
	case "serve":
		echo = tetherEchoServe
	case "read":
		echo = tetherEcho
	case "reader":
		echo = tetherEchoReader
	}
	h := newHub[*tether.Conn]()
	return mux(func(w http.ResponseWriter, r *http.Request) {
		c, err := tether.Accept(w, r, opts)
		if err != nil {
			return
		}
		Conns.Add(1)
		if echo == nil {
			tetherEchoGo(c)
			return
		}
		defer Conns.Add(-1)
		defer c.CloseNow()
		echo(r.Context(), c)
	}, func(w http.ResponseWriter, r *http.Request) {
		c, err := tether.Accept(w, r, opts)
		if err != nil {
			return
		}
		Conns.Add(1)
		defer Conns.Add(-1)
		defer c.CloseNow()
		h.add(c)
		defer h.remove(c)
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			pm, err := tether.NewPreparedMessage(typ, msg)
			if err != nil {
				return
			}
			h.each(func(s *tether.Conn) { s.WritePrepared(context.Background(), pm) })
		}
	}), nil
}

// tetherEchoGo serves c in the background and returns. The request's
// context ends with the handler, so handle writes under its own.
func tetherEchoGo(c *tether.Conn) {
	ctx := context.Background()
	err := c.Go(func(typ tether.MessageType, p []byte) error {
		return c.Write(ctx, typ, p)
	}, func(error) {
		c.CloseNow()
		Conns.Add(-1)
	})
	if err != nil {
		c.CloseNow()
		Conns.Add(-1)
	}
}

func tetherEchoServe(ctx context.Context, c *tether.Conn) {
	c.Serve(ctx, func(typ tether.MessageType, p []byte) error {
		return c.Write(ctx, typ, p)
	})
}

func tetherEcho(ctx context.Context, c *tether.Conn) {
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			return
		}
	}
}

func tetherEchoReader(ctx context.Context, c *tether.Conn) {
	buf := make([]byte, 32<<10)
	for {
		typ, r, err := c.Reader(ctx)
		if err != nil {
			return
		}
		w, err := c.Writer(ctx, typ)
		if err != nil {
			return
		}
		if _, err := io.CopyBuffer(w, r, buf); err != nil {
			return
		}
		if err := w.Close(); err != nil {
			return
		}
	}
}
