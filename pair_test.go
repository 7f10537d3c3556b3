package tether

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"github.com/tetherws/tether/internal/wire"
)

// pipeConn returns a Tether connection in role over one end of a net.Pipe and
// the other end, for tests that play the peer by hand.
func pipeConn(t *testing.T, role wire.Role, opts ConnOptions) (*Conn, net.Conn) {
	t.Helper()
	a, b := net.Pipe()
	c := newConn(a, nil, role, opts.config(), "", "/test")
	t.Cleanup(func() {
		b.Close()
		c.CloseNow()
	})
	return c, b
}

// pair returns a client and a server Tether connection joined by a net.Pipe.
func pair(t *testing.T, client, server ConnOptions) (*Conn, *Conn) {
	t.Helper()
	a, b := net.Pipe()
	cc := newConn(a, nil, wire.Client, client.config(), "", "ws://pipe/test")
	sc := newConn(b, nil, wire.Server, server.config(), "", "/test")
	t.Cleanup(func() {
		cc.CloseNow()
		sc.CloseNow()
	})
	return cc, sc
}

// rawPeer plays the server side of a connection frame by frame. A goroutine
// reads frames as they come, so the connection's writes never block on it.
type rawPeer struct {
	t      *testing.T
	nc     net.Conn
	frames chan frame
}

type frame struct {
	h       wire.Header
	payload []byte
}

func newRawPeer(t *testing.T, nc net.Conn) *rawPeer {
	p := &rawPeer{t: t, nc: nc, frames: make(chan frame, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(p.frames)
		br := bufio.NewReader(nc)
		for {
			f, err := readRawFrame(br)
			if err != nil {
				return
			}
			p.frames <- f
		}
	}()
	t.Cleanup(func() {
		nc.Close()
		<-done
	})
	return p
}

func readRawFrame(br *bufio.Reader) (frame, error) {
	var hb [wire.MaxHeaderSize]byte
	if _, err := io.ReadFull(br, hb[:2]); err != nil {
		return frame{}, err
	}
	n := wire.HeaderSize(hb[0], hb[1])
	if _, err := io.ReadFull(br, hb[2:n]); err != nil {
		return frame{}, err
	}
	h, _, err := wire.DecodeHeader(hb[:n])
	if err != nil {
		return frame{}, err
	}
	payload := make([]byte, h.Length)
	if _, err := io.ReadFull(br, payload); err != nil {
		return frame{}, err
	}
	if h.Masked {
		wire.Mask(h.Key, 0, payload)
	}
	return frame{h, payload}, nil
}

// readFrame returns the next frame the connection sent, failing the test
// after 5 s.
func (p *rawPeer) readFrame() (wire.Header, []byte) {
	p.t.Helper()
	select {
	case f, ok := <-p.frames:
		if !ok {
			p.t.Fatal("connection closed before the expected frame")
		}
		return f.h, f.payload
	case <-time.After(5 * time.Second):
		p.t.Fatal("timed out waiting for a frame")
	}
	return wire.Header{}, nil
}

// writeFrame writes one unmasked frame, as a server does.
func (p *rawPeer) writeFrame(op wire.Opcode, payload []byte) {
	p.t.Helper()
	p.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	b := wire.AppendHeader(nil, wire.Header{Fin: true, Opcode: op, Length: int64(len(payload))})
	if _, err := p.nc.Write(append(b, payload...)); err != nil {
		p.t.Fatalf("write frame: %v", err)
	}
}

// eventually polls cond until it holds, failing the test after 5 s. It waits
// for other goroutines, never for the clock under test.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
