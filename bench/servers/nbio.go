package servers

import (
	"net"
	"net/http"
	"time"

	"github.com/lesismal/nbio/logging"
	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"
)

// lesismal/nbio, the event-driven peer: its own HTTP server (nbhttp.Engine)
// in IOModNonBlocking, the mode its README and its author's
// go-websocket-benchmark ("nbio_nonblocking") use for many connections:
// every connection lives on nbio's epoll loops, with no goroutine of its
// own. The websocket Upgrader echoes in OnMessage, as the README's
// example does, with ReleaseWebsocketPayload on (the payload goes back to
// nbio's pool after OnMessage). The benchmark's memory limit
// (debug.SetMemoryLimit) and custom mempool are left out: no other server
// gets one. MaxLoad is raised from nbio's default so that 19,000
// connections are all served.
//
// Keepalive: nbio's README shows none, so this follows nbio's own API for
// it: Conn.Keepalive(interval), a timer per connection that writes a ping
// every interval, and Upgrader.KeepaliveTime, the read deadline that every
// frame received (pongs too) pushes back, here interval + timeout, so a
// peer that stops answering is closed as with the other servers. Without
// keepalive the deadline is cleared after the upgrade, as
// go-websocket-benchmark does (nbhttp's 120 s request deadline would
// otherwise close idle connections).
func init() { register("nbio", newNbio) }

func newNbio(o Options) (Server, error) {
	logging.SetLevel(logging.LevelNone) // the other servers log nothing
	h := newHub[*websocket.Conn]()
	upgrader := func(onMessage func(*websocket.Conn, websocket.MessageType, []byte), bcast bool) *websocket.Upgrader {
		u := websocket.NewUpgrader()
		u.MessageLengthLimit = int(o.ReadLimit)
		u.EnableCompression(o.Compression)
		u.KeepaliveTime = 0
		if o.Keepalive > 0 {
			u.KeepaliveTime = o.Keepalive + o.KeepaliveTimeout
		}
		u.OnOpen(func(c *websocket.Conn) {
			Conns.Add(1)
			if bcast {
				h.add(c)
			}
			if o.Keepalive > 0 {
				c.SetSession(c.Keepalive(o.Keepalive))
			}
		})
		u.OnClose(func(c *websocket.Conn, err error) {
			if t, ok := c.Session().(*time.Timer); ok {
				t.Stop()
			}
			if bcast {
				h.remove(c)
			}
			Conns.Add(-1)
		})
		u.OnMessage(onMessage)
		return u
	}
	echo := upgrader(func(c *websocket.Conn, typ websocket.MessageType, p []byte) {
		c.WriteMessage(typ, p)
	}, false)
	bcast := upgrader(func(c *websocket.Conn, typ websocket.MessageType, p []byte) {
		h.each(func(s *websocket.Conn) { s.WriteMessage(typ, p) })
	}, true)
	serve := func(u *websocket.Upgrader) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			c, err := u.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			if o.Keepalive <= 0 {
				c.SetReadDeadline(time.Time{})
			}
		}
	}
	m := http.NewServeMux()
	m.HandleFunc("/echo", serve(echo))
	m.HandleFunc("/broadcast", serve(bcast))
	return &nbioServer{mux: m}, nil
}

type nbioServer struct{ mux *http.ServeMux }

// Serve runs an nbhttp.Engine on ln: nbhttp accepts on the listener it is
// given (Config.Listen) and hands each connection to its pollers.
func (s *nbioServer) Serve(ln net.Listener) error {
	engine := nbhttp.NewEngine(nbhttp.Config{
		Network:                 "tcp",
		Addrs:                   []string{ln.Addr().String()},
		Listen:                  func(string, string) (net.Listener, error) { return ln, nil },
		IOMod:                   nbhttp.IOModNonBlocking,
		ReleaseWebsocketPayload: true,
		MaxLoad:                 1 << 20,
		Handler:                 s.mux,
	})
	if err := engine.Start(); err != nil {
		return err
	}
	engine.Wait()
	return nil
}
