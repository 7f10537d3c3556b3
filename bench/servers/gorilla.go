package servers

import (
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// gorilla/websocket as its echo and chat examples show: ReadMessage and
// WriteMessage in one goroutine; keepalive as in the chat example (a
// goroutine with a ticker writes pings, the pong handler extends the read
// deadline); broadcasts with a PreparedMessage.
func init() { register("gorilla", newGorilla) }

func newGorilla(o Options) (Server, error) {
	up := websocket.Upgrader{EnableCompression: o.Compression, CheckOrigin: func(*http.Request) bool { return true }}
	h := newHub[*websocket.Conn]()
	accept := func(w http.ResponseWriter, r *http.Request) (*websocket.Conn, func()) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return nil, nil
		}
		Conns.Add(1)
		c.SetReadLimit(o.ReadLimit)
		stop := gorillaKeepalive(c, o)
		return c, func() {
			stop()
			c.Close()
			Conns.Add(-1)
		}
	}
	return mux(func(w http.ResponseWriter, r *http.Request) {
		c, done := accept(w, r)
		if c == nil {
			return
		}
		defer done()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, msg); err != nil {
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
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			pm, err := websocket.NewPreparedMessage(mt, msg)
			if err != nil {
				return
			}
			h.each(func(s *websocket.Conn) { s.WritePreparedMessage(pm) })
		}
	}), nil
}

// gorillaKeepalive is the chat example's ping loop.
func gorillaKeepalive(c *websocket.Conn, o Options) (stop func()) {
	if o.Keepalive <= 0 {
		return func() {}
	}
	pongWait := o.Keepalive + o.KeepaliveTimeout
	c.SetReadDeadline(time.Now().Add(pongWait))
	c.SetPongHandler(func(string) error { return c.SetReadDeadline(time.Now().Add(pongWait)) })
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(o.Keepalive)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if err := c.WriteControl(websocket.PingMessage, nil, time.Now().Add(10*time.Second)); err != nil {
					return
				}
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}
