package conformance

import (
	"bytes"
	"fmt"
)

// Family 1: framing. Text and binary messages of the payload lengths at the
// edges of the 7-bit, 16-bit and 64-bit length encodings.
func family1() []*Case {
	var cs []*Case
	sizes := []int{0, 125, 126, 127, 128, 65535, 65536}
	for sub, kind := range []struct {
		op      byte
		name    string
		pattern string
	}{{opText, "text", "*"}, {opBinary, "binary", "\xfe"}} {
		for i, n := range sizes {
			payload := repeat(kind.pattern, n)
			cs = append(cs, &Case{
				ID:   fmt.Sprintf("1.%d.%d", sub+1, i+1),
				Desc: fmt.Sprintf("%s message, payload %d bytes", kind.name, n),
				Run: func(p *Peer) {
					p.Send(Frame{Op: kind.op, Fin: true, Payload: payload})
					p.ExpectMessage(kind.op, payload)
					p.CloseNormal()
				},
			})
		}
		payload := repeat(kind.pattern, 65536)
		cs = append(cs, &Case{
			ID:   fmt.Sprintf("1.%d.8", sub+1),
			Desc: fmt.Sprintf("%s message, payload 65536 bytes, sent in chops of 997 octets", kind.name),
			Run: func(p *Peer) {
				p.SendChops(997, Frame{Op: kind.op, Fin: true, Payload: payload})
				p.ExpectMessage(kind.op, payload)
				p.CloseNormal()
			},
		})
	}
	return cs
}

// Family 2: pings and pongs.
func family2() []*Case {
	bin := []byte{0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff}
	pingCase := func(id, desc string, payload []byte, chop int) *Case {
		return &Case{ID: id, Desc: desc, Run: func(p *Peer) {
			if chop > 0 {
				p.SendChops(chop, pingBytes(payload))
			} else {
				p.Send(pingBytes(payload))
			}
			p.ExpectPong(payload)
			p.CloseNormal()
		}}
	}
	tenPings := func(id, desc string, chop int) *Case {
		return &Case{ID: id, Desc: desc, Run: func(p *Peer) {
			var frames []Frame
			for i := range 10 {
				frames = append(frames, pingFrame(fmt.Sprintf("payload-%d", i)))
			}
			if chop > 0 {
				p.SendChops(chop, frames...)
			} else {
				p.Send(frames...)
			}
			for i := range 10 {
				p.ExpectPong([]byte(fmt.Sprintf("payload-%d", i)))
			}
			p.CloseNormal()
		}}
	}
	return []*Case{
		pingCase("2.1", "ping without payload", nil, 0),
		pingCase("2.2", "ping with small text payload", []byte("Hello, world!"), 0),
		pingCase("2.3", "ping with small binary (non UTF-8) payload", bin, 0),
		pingCase("2.4", "ping with binary payload of 125 bytes", bytes.Repeat([]byte{0xfe}, 125), 0),
		{ID: "2.5", Desc: "ping with binary payload of 126 bytes: protocol error", Run: func(p *Peer) {
			p.Send(pingBytes(bytes.Repeat([]byte{0xfe}, 126)))
			p.ExpectFail(1002)
		}},
		pingCase("2.6", "ping with payload of 125 bytes, sent in octet-wise chops", bytes.Repeat([]byte{0xfe}, 125), 1),
		{ID: "2.7", Desc: "unsolicited pong without payload: nothing comes back", Run: func(p *Peer) {
			p.Send(pongFrame(""), closeFrame(1000, ""))
			p.ExpectCloseEcho(1000)
		}},
		{ID: "2.8", Desc: "unsolicited pong with payload: nothing comes back", Run: func(p *Peer) {
			p.Send(pongFrame("unsolicited pong payload"), closeFrame(1000, ""))
			p.ExpectCloseEcho(1000)
		}},
		{ID: "2.9", Desc: "unsolicited pong with payload, then ping with payload: pong for the ping", Run: func(p *Peer) {
			p.Send(pongFrame("unsolicited pong payload"), pingFrame("ping payload"))
			p.ExpectPong([]byte("ping payload"))
			p.CloseNormal()
		}},
		tenPings("2.10", "10 pings with payload: 10 pongs, in order", 0),
		tenPings("2.11", "10 pings with payload, sent in octet-wise chops: 10 pongs, in order", 1),
	}
}

// Family 3: reserved bits.
func family3() []*Case {
	const hello = "Hello, world!"
	rsvText := func(rsv byte) Frame { f := textFrame(hello); f.Rsv = rsv; return f }
	// send writes the frames in one chop (0), frame-wise (-1) or in chops.
	send := func(p *Peer, chop int, frames ...Frame) {
		switch {
		case chop == 0:
			p.Send(frames...)
		case chop < 0:
			p.SendSync(frames...)
		default:
			p.SendChops(chop, frames...)
		}
	}
	afterEcho := func(id, desc string, rsv byte, chop int) *Case {
		return &Case{ID: id, Desc: desc, Run: func(p *Peer) {
			send(p, chop, textFrame(hello), rsvText(rsv), pingFrame(""))
			// Strict: the first message is echoed before the connection
			// fails, however the bytes arrive; the ping is not answered.
			p.ExpectInOrder(textEvent(hello))
			p.ExpectFail(1002)
		}}
	}
	single := func(id, desc string, f Frame) *Case {
		return &Case{ID: id, Desc: desc, Run: func(p *Peer) {
			p.Send(f)
			p.ExpectFail(1002)
		}}
	}
	bin := binaryFrame(bytes.Repeat([]byte{0xff}, 8))
	bin.Rsv = 5
	ping := pingFrame(hello)
	ping.Rsv = 6
	cl := closeFrame(1000, "")
	cl.Rsv = 7
	return []*Case{
		single("3.1", "text message with RSV = 1: protocol error", rsvText(1)),
		afterEcho("3.2", "text, then text with RSV = 2, then ping: protocol error, no pong", 2, 0),
		afterEcho("3.3", "text, then text with RSV = 3, then ping, frame-wise chops: protocol error", 3, -1),
		afterEcho("3.4", "text, then text with RSV = 4, then ping, octet-wise chops: protocol error", 4, 1),
		single("3.5", "binary message with RSV = 5: protocol error", bin),
		single("3.6", "ping with RSV = 6: protocol error", ping),
		single("3.7", "close with RSV = 7: protocol error", cl),
	}
}

// Family 4: reserved opcodes.
func family4() []*Case {
	const hello = "Hello, world!"
	var cs []*Case
	for sub, ops := range [][]byte{{3, 4, 5, 6, 7}, {0xB, 0xC, 0xD, 0xE, 0xF}} {
		kind := "non-control"
		if sub == 1 {
			kind = "control"
		}
		for i, op := range ops {
			f := Frame{Op: op, Fin: true}
			withPayload := i == 1 || i >= 3
			if withPayload {
				f.Payload = []byte("reserved opcode payload")
			}
			desc := fmt.Sprintf("frame with reserved %s opcode %#x", kind, op)
			if withPayload {
				desc += " and payload"
			}
			id := fmt.Sprintf("4.%d.%d", sub+1, i+1)
			if i < 2 {
				cs = append(cs, &Case{ID: id, Desc: desc + ": protocol error", Run: func(p *Peer) {
					p.Send(f)
					p.ExpectFail(1002)
				}})
				continue
			}
			cs = append(cs, &Case{ID: id, Desc: "text, then " + desc + ", then ping: protocol error, no pong", Run: func(p *Peer) {
				p.Send(textFrame(hello), f, pingFrame(""))
				p.ExpectInOrder(textEvent(hello))
				p.ExpectFail(1002)
			}})
		}
	}
	return cs
}
