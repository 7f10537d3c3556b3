package conformance

import (
	"fmt"
	"strings"
)

// Family 7: the closing handshake.
func family7() []*Case {
	const hello = "Hello World!"
	big := repeat("BAsd7&jh23", 256<<10)
	cs := []*Case{
		{ID: "7.1.1", Desc: "text message, then a normal close: echo, then clean close", Run: func(p *Peer) {
			p.Send(textFrame(hello))
			p.ExpectText(hello)
			p.CloseNormal()
		}},
		{ID: "7.1.2", Desc: "two close frames: clean close, the second ignored", Run: func(p *Peer) {
			p.Send(closeFrame(1000, ""), closeRaw(nil))
			p.ExpectCloseEcho(1000)
		}},
		{ID: "7.1.3", Desc: "ping after the close frame: no pong", Run: func(p *Peer) {
			p.Send(closeFrame(1000, ""), pingFrame(""))
			p.ExpectCloseEcho(1000)
		}},
		{ID: "7.1.4", Desc: "text message after the close frame: no echo", Run: func(p *Peer) {
			p.Send(closeFrame(1000, ""), textFrame(hello))
			p.ExpectCloseEcho(1000)
		}},
		{ID: "7.1.5", Desc: "first fragment, close, last fragment: no message, clean close", Run: func(p *Peer) {
			p.Send(frag(opText, false, "fragment1"), closeFrame(1000, ""), frag(opCont, true, "fragment2"))
			p.ExpectCloseEcho(1000)
		}},
		{ID: "7.1.6", Desc: "256 KiB message, small message, close, ping back to back: echoes may be cut by the close", Run: func(p *Peer) {
			p.Send(textBytes(big), textFrame(hello), closeFrame(1000, ""), pingFrame(""))
			// Informational in Autobahn: the echoes may or may not make it
			// before the close frame, but nothing else may.
			p.ExpectCloseEcho(1000, msgEvent(opText, big), textEvent(hello))
		}},
		{ID: "7.3.1", Desc: "close with payload of length 0: clean close", Run: func(p *Peer) {
			p.Send(closeRaw(nil))
			p.ExpectCloseEcho(1005) // an empty echo (or 1000) answers an empty close
		}},
		{ID: "7.3.2", Desc: "close with payload of length 1: protocol error", Run: func(p *Peer) {
			p.Send(closeRaw([]byte{0x03}))
			p.ExpectFail(1002)
		}},
		{ID: "7.3.3", Desc: "close with payload of length 2 (code 1000, no reason): clean close", Run: func(p *Peer) {
			p.Send(closeFrame(1000, ""))
			p.ExpectCloseEcho(1000)
		}},
		{ID: "7.3.4", Desc: "close with code 1000 and a reason: clean close", Run: func(p *Peer) {
			p.Send(closeFrame(1000, hello))
			p.ExpectCloseEcho(1000)
		}},
		{ID: "7.3.5", Desc: "close with payload of 125 bytes: clean close", Run: func(p *Peer) {
			p.Send(closeFrame(1000, strings.Repeat("*", 123)))
			p.ExpectCloseEcho(1000)
		}},
		{ID: "7.3.6", Desc: "close with payload of 126 bytes: protocol error", Run: func(p *Peer) {
			p.Send(closeFrame(1000, strings.Repeat("*", 124)))
			p.ExpectFail(1002)
		}},
		{ID: "7.5.1", Desc: "close with a reason that is not UTF-8: 1007", Run: func(p *Peer) {
			p.Send(closeFrame(1000, kosme+"\xed\xa0\x80"+"edited"))
			p.ExpectFail(1007)
		}},
	}
	// 7.7: valid codes are echoed. Autobahn lists 1000-1003, 1007-1011,
	// 3000, 3999, 4000 and 4999; this project also registers 1012-1014.
	for i, code := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999, 1012, 1013, 1014} {
		cs = append(cs, &Case{ID: fmt.Sprintf("7.7.%d", i+1), Desc: fmt.Sprintf("close with valid code %d: echoed", code), Run: func(p *Peer) {
			p.Send(closeFrame(code, ""))
			p.ExpectCloseEcho(int(code))
		}})
	}
	// 7.9: invalid codes fail the connection with 1002 (or drop TCP).
	// 7.9.1-7.9.9 are Autobahn's; 7.9.10 (1015, never sent on the wire) is
	// Tether's.
	for i, code := range []uint16{0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999, 1015} {
		cs = append(cs, &Case{ID: fmt.Sprintf("7.9.%d", i+1), Desc: fmt.Sprintf("close with invalid code %d: protocol error", code), Run: func(p *Peer) {
			p.Send(closeFrame(code, ""))
			p.ExpectFailOrDrop(1002)
		}})
	}
	// 7.13: codes out of range. Autobahn leaves the outcome open; Tether
	// fails the connection with 1002.
	for i, code := range []uint16{5000, 65535} {
		cs = append(cs, &Case{ID: fmt.Sprintf("7.13.%d", i+1), Desc: fmt.Sprintf("close with code %d, out of range: protocol error", code), Run: func(p *Peer) {
			p.Send(closeFrame(code, ""))
			p.ExpectFailOrDrop(1002)
		}})
	}
	return cs
}
