package servers

import (
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	"github.com/gobwas/ws/wsutil"
)

// gobwas/ws as its README shows: UpgradeHTTP, then a goroutine with
// wsutil.ReadClientData and wsutil.WriteServerMessage; with compression,
// the README's wsflate example (frame by frame, CompressFrame and
// DecompressFrame). gobwas has no keepalive of its own: a timer per
// connection writes pings, under the connection's write lock; broadcasts
// write one compiled frame to every connection.
func init() { register("gobwas", newGobwas) }

type gobwasConn struct {
	net.Conn
	mu sync.Mutex // one frame at a time
	t  *time.Timer
}

func (c *gobwasConn) write(f func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return f()
}

func newGobwas(o Options) (Server, error) {
	wsutil.SetMaxMessageSize(o.ReadLimit)
	h := newHub[*gobwasConn]()
	accept := func(w http.ResponseWriter, r *http.Request) (*gobwasConn, *wsflate.Extension) {
		var ext *wsflate.Extension
		up := ws.HTTPUpgrader{}
		if o.Compression {
			ext = &wsflate.Extension{Parameters: wsflate.DefaultParameters}
			up.Negotiate = ext.Negotiate
		}
		nc, _, _, err := up.Upgrade(r, w)
		if err != nil {
			return nil, nil
		}
		Conns.Add(1)
		c := &gobwasConn{Conn: nc}
		if o.Keepalive > 0 {
			c.t = time.AfterFunc(o.Keepalive, func() {
				if c.write(func() error { _, err := c.Write(ws.CompiledPing); return err }) == nil {
					c.t.Reset(o.Keepalive)
				}
			})
		}
		if ext != nil {
			if _, ok := ext.Accepted(); !ok {
				ext = nil
			}
		}
		return c, ext
	}
	done := func(c *gobwasConn) {
		if c.t != nil {
			c.t.Stop()
		}
		c.Close()
		Conns.Add(-1)
	}
	return mux(func(w http.ResponseWriter, r *http.Request) {
		c, ext := accept(w, r)
		if c == nil {
			return
		}
		go func() {
			defer done(c)
			if ext != nil {
				gobwasFlateEcho(c, o.ReadLimit)
				return
			}
			for {
				msg, op, err := wsutil.ReadClientData(c)
				if err != nil {
					return
				}
				if c.write(func() error { return wsutil.WriteServerMessage(c, op, msg) }) != nil {
					return
				}
			}
		}()
	}, func(w http.ResponseWriter, r *http.Request) {
		c, _ := accept(w, r)
		if c == nil {
			return
		}
		h.add(c)
		go func() {
			defer done(c)
			defer h.remove(c)
			for {
				msg, op, err := wsutil.ReadClientData(c)
				if err != nil {
					return
				}
				frame, err := ws.CompileFrame(ws.NewFrame(op, true, msg))
				if err != nil {
					return
				}
				h.each(func(s *gobwasConn) {
					s.write(func() error { _, err := s.Write(frame); return err })
				})
			}
		}()
	}), nil
}

// gobwasFlateEcho is the README's compression loop, answering control
// frames too.
func gobwasFlateEcho(c *gobwasConn, limit int64) {
	for {
		h, err := ws.ReadHeader(c)
		if err != nil || h.Length > limit {
			return
		}
		f := ws.Frame{Header: h, Payload: make([]byte, h.Length)}
		if _, err := io.ReadFull(c, f.Payload); err != nil {
			return
		}
		f = ws.UnmaskFrameInPlace(f)
		switch f.Header.OpCode {
		case ws.OpPing:
			c.write(func() error { return ws.WriteFrame(c, ws.NewPongFrame(f.Payload)) })
			continue
		case ws.OpPong:
			continue
		case ws.OpClose:
			c.write(func() error { return ws.WriteFrame(c, ws.NewCloseFrame(f.Payload)) })
			return
		}
		compressed, err := wsflate.IsCompressed(f.Header)
		if err != nil {
			return
		}
		if compressed {
			if f, err = wsflate.DecompressFrame(f); err != nil {
				return
			}
		}
		reply, err := wsflate.CompressFrame(ws.NewFrame(f.Header.OpCode, true, f.Payload))
		if err != nil {
			return
		}
		if c.write(func() error { return ws.WriteFrame(c, reply) }) != nil {
			return
		}
	}
}
