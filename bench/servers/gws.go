package servers

import (
	"net/http"
	"time"

	"github.com/lxzan/gws"
)

// lxzan/gws as its README's best practice shows: an Upgrader with an event
// handler, ReadLoop in its own goroutine, the echo in OnMessage; parallel
// message processing off (an echo needs none, and it costs). Keepalive: a
// timer per connection writes pings and SetDeadline is extended by each
// pong, as the README extends it on pings; broadcasts use a Broadcaster,
// which encodes the frame once.
func init() { register("gws", newGws) }

type gwsHandler struct {
	o    Options
	hub  *hub[*gws.Conn]
	echo bool
}

func (h *gwsHandler) OnOpen(c *gws.Conn) {
	Conns.Add(1)
	if h.hub != nil {
		h.hub.add(c)
	}
	if ka := h.o.Keepalive; ka > 0 {
		c.SetDeadline(time.Now().Add(ka + h.o.KeepaliveTimeout))
		var t *time.Timer
		t = time.AfterFunc(ka, func() {
			if c.WritePing(nil) == nil {
				t.Reset(ka)
			}
		})
		c.Session().Store("t", t)
	}
}

func (h *gwsHandler) OnClose(c *gws.Conn, err error) {
	if v, ok := c.Session().Load("t"); ok {
		v.(*time.Timer).Stop()
	}
	if h.hub != nil {
		h.hub.remove(c)
	}
	Conns.Add(-1)
}

func (h *gwsHandler) OnPing(c *gws.Conn, payload []byte) { c.WritePong(payload) }

func (h *gwsHandler) OnPong(c *gws.Conn, payload []byte) {
	if ka := h.o.Keepalive; ka > 0 {
		c.SetDeadline(time.Now().Add(ka + h.o.KeepaliveTimeout))
	}
}

func (h *gwsHandler) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	if h.echo {
		c.WriteMessage(m.Opcode, m.Bytes())
		return
	}
	b := gws.NewBroadcaster(m.Opcode, m.Bytes())
	defer b.Close()
	h.hub.each(func(s *gws.Conn) { b.Broadcast(s) })
}

func newGws(o Options) (Server, error) {
	opt := func() *gws.ServerOption {
		return &gws.ServerOption{
			ReadMaxPayloadSize: int(o.ReadLimit),
			PermessageDeflate:  gws.PermessageDeflate{Enabled: o.Compression},
		}
	}
	echo := gws.NewUpgrader(&gwsHandler{o: o, echo: true}, opt())
	bcast := gws.NewUpgrader(&gwsHandler{o: o, hub: newHub[*gws.Conn]()}, opt())
	serve := func(up *gws.Upgrader) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(w, r)
			if err != nil {
				return
			}
			go c.ReadLoop()
		}
	}
	return mux(serve(echo), serve(bcast)), nil
}
