package servers

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// coder/websocket as its echo example shows: Reader and Writer joined by
// io.Copy, with the request's context; keepalive with Ping (which waits for
// the pong) from a goroutine, as its docs suggest.
func init() { register("coder", newCoder) }

func newCoder(o Options) (Server, error) {
	opts := &websocket.AcceptOptions{InsecureSkipVerify: true, CompressionMode: websocket.CompressionDisabled}
	if o.Compression {
		opts.CompressionMode = websocket.CompressionNoContextTakeover
	}
	h := newHub[*websocket.Conn]()
	accept := func(w http.ResponseWriter, r *http.Request) (*websocket.Conn, func()) {
		c, err := websocket.Accept(w, r, opts)
		if err != nil {
			return nil, nil
		}
		Conns.Add(1)
		c.SetReadLimit(o.ReadLimit)
		stop := coderKeepalive(c, o)
		return c, func() {
			stop()
			c.CloseNow()
			Conns.Add(-1)
		}
	}
	return mux(func(w http.ResponseWriter, r *http.Request) {
		c, done := accept(w, r)
		if c == nil {
			return
		}
		defer done()
		ctx := r.Context()
		buf := make([]byte, 32<<10)
		for {
			typ, rd, err := c.Reader(ctx)
			if err != nil {
				return
			}
			wr, err := c.Writer(ctx, typ)
			if err != nil {
				return
			}
			if _, err := io.CopyBuffer(wr, rd, buf); err != nil {
				return
			}
			if err := wr.Close(); err != nil {
				return
			}
		}
	}, func(w http.ResponseWriter, r *http.Request) {
		c, done := accept(w, r)
		if c == nil {
			return
		}
		defer done()
		h.add(c)
		defer h.remove(c)
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			h.each(func(s *websocket.Conn) { s.Write(context.Background(), typ, msg) })
		}
	}), nil
}

func coderKeepalive(c *websocket.Conn, o Options) (stop func()) {
	if o.Keepalive <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(o.Keepalive)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), o.KeepaliveTimeout)
				err := c.Ping(ctx)
				cancel()
				if err != nil {
					c.Close(websocket.StatusInternalError, "keepalive ping timeout")
					return
				}
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}
