package conformance

import (
	"strings"
	"time"
)

// Family X (Tether): what Autobahn's peer never does because it always masks
// correctly and frames minimally, checked in both roles.
func familyX() []*Case {
	wrong := func(f Frame) Frame { f.Mask = maskWrong; return f }
	return []*Case{
		// X.1: masking follows the direction (RFC 6455 section 5.1): a client
		// masks every frame, a server none. The wrong kind is a protocol error.
		{ID: "X.1.1", Desc: "text frame masked the wrong way for its direction: protocol error", Run: func(p *Peer) {
			p.Send(wrong(textFrame("Hello, world!")))
			p.ExpectFail(1002)
		}},
		{ID: "X.1.2", Desc: "ping masked the wrong way for its direction: protocol error, no pong", Run: func(p *Peer) {
			p.Send(wrong(pingFrame("ping payload")))
			p.ExpectFail(1002)
		}},
		{ID: "X.1.3", Desc: "close masked the wrong way for its direction: protocol error", Run: func(p *Peer) {
			p.Send(wrong(closeFrame(1000, "")))
			p.ExpectFail(1002)
		}},
		{ID: "X.1.4", Desc: "second fragment masked the wrong way: protocol error", Run: func(p *Peer) {
			p.Send(frag(opText, false, "fragment1"), wrong(frag(opCont, true, "fragment2")))
			p.ExpectFail(1002)
		}},
		// X.2: framing corner cases.
		{ID: "X.2.1", Desc: "64-bit payload length with the most significant bit set: protocol error", Run: func(p *Peer) {
			p.SendBytes("binary frame header with length 2^63", p.EncodeHeader(Frame{Op: opBinary, Fin: true}, 1<<63))
			p.ExpectFail(1002)
		}},
		{ID: "X.2.2", Desc: "text message in the same TCP write as the handshake: echoed", Early: []Frame{textFrame("early bird")}, Run: func(p *Peer) {
			p.ExpectText("early bird")
			p.CloseNormal()
		}},
		{ID: "X.2.3", Desc: "ping in the same TCP write as the handshake: pong", Early: []Frame{pingFrame("early ping")}, Run: func(p *Peer) {
			p.ExpectPong([]byte("early ping"))
			p.CloseNormal()
		}},
		{ID: "X.2.4", Desc: "close in the same TCP write as the handshake: clean close", Early: []Frame{closeFrame(1000, "early close")}, Run: func(p *Peer) {
			p.ExpectCloseEcho(1000)
		}},
		{ID: "X.2.5", Desc: "close frame in the middle of a fragmented message, then its last fragment: clean close, no message", Run: func(p *Peer) {
			p.Send(frag(opBinary, false, "fragment1"), closeFrame(1001, "going away"), frag(opCont, true, "fragment2"))
			p.ExpectCloseEcho(1001)
		}},
		{ID: "X.2.6", Desc: "text message ending inside a UTF-8 sequence (valid prefix): 1007", Run: func(p *Peer) {
			p.Send(textFrame("hello \xe2\x82"))
			p.ExpectFail(1007)
		}},
		{ID: "X.2.7", Desc: "fragmented text message ending inside a UTF-8 sequence: 1007", Run: func(p *Peer) {
			p.Send(frag(opText, false, "hello \xf0\x9f"), frag(opCont, true, "\x98"))
			p.ExpectFail(1007)
		}},
		{ID: "X.2.8", Desc: "code point split across 3 fragments with a ping between: echoed", Run: func(p *Peer) {
			p.Send(frag(opText, false, "smile \xf0\x9f"), pingFrame("between"), frag(opCont, false, "\x98"), frag(opCont, true, "\x80!"))
			p.ExpectPong([]byte("between"))
			p.ExpectText("smile \xf0\x9f\x98\x80!")
			p.CloseNormal()
		}},
		{ID: "X.2.9", Desc: "ping right after a 1 MiB message: pong (possibly between the echo's fragments) and echo", Run: func(p *Peer) {
			big := repeat("\xfe", 1<<20)
			p.Send(binaryFrame(big), pingFrame("during the echo"))
			p.ExpectAll(msgEvent(opBinary, big), pongEvent("during the echo"))
			p.CloseNormal()
		}},
		{ID: "X.2.10", Desc: "continuation frame with RSV1 set: protocol error", Run: func(p *Peer) {
			c := frag(opCont, true, "fragment2")
			c.Rsv = 4
			p.Send(frag(opText, false, "fragment1"), c)
			p.ExpectFail(1002)
		}},
		// X.3: ReadLimit -1 means no limit. A frame header announcing an
		// absurd length must not bring the process down: Tether may fail the
		// connection with 1009 or wait for the payload, but nothing else.
		// The cases run in a child process, since a crash would end the run.
		{ID: "X.3.1", Limit: -1, Isolated: true, Desc: "no ReadLimit: text frame announcing 2^62 bytes must not crash the process", Run: func(p *Peer) {
			p.SendBytes("text frame header announcing 2^62 bytes", p.EncodeHeader(Frame{Op: opText, Fin: true}, 1<<62))
			p.ExpectFailOrWait(1009)
		}},
		{ID: "X.3.2", Limit: -1, Isolated: true, Desc: "no ReadLimit: fragment, then continuation announcing 2^63-1 bytes must not crash the process", Run: func(p *Peer) {
			p.Send(Frame{Op: opBinary, Payload: []byte("fragment1")})
			p.SendBytes("continuation header announcing 2^63-1 bytes", p.EncodeHeader(Frame{Op: opCont, Fin: true}, 1<<63-1))
			p.ExpectFailOrWait(1009)
		}},
		// X.4: Tether starts the closing handshake (Conn.Close), on the
		// echo loop's "tether:close" command.
		{ID: "X.4.1", Desc: "Tether closes with 1000: close frame, then TCP close after the echo", Run: func(p *Peer) {
			p.Send(textFrame(closeCommand + "1000 bye"))
			p.ExpectTetherClose(1000, "bye")
		}},
		{ID: "X.4.2", Desc: "Tether closes with 4000; peer sends text and ping before its echo: neither answered", Run: func(p *Peer) {
			p.Send(textFrame(closeCommand + "4000 custom"))
			p.ExpectTetherClose(4000, "custom", textFrame("after close"), pingFrame("after close"))
		}},
		{ID: "X.4.3", Desc: "Tether closes with 1001 and a 123-byte reason", Run: func(p *Peer) {
			reason := strings.Repeat("r", 123)
			p.Send(textFrame(closeCommand + "1001 " + reason))
			p.ExpectTetherClose(1001, reason)
		}},
		{ID: "X.4.4", CloseTimeout: 300 * time.Millisecond, Desc: "Tether closes; the peer never answers: TCP closed after CloseTimeout, Close reports it", Run: func(p *Peer) {
			p.Send(textFrame(closeCommand + "1000 bye"))
			ev := p.Next(p.step(), "Tether's close frame")
			if ev.Kind != evClose || ev.Code != 1000 {
				p.Fatalf("got %v, want Tether's close frame 1000", ev)
			}
			// Silence: Tether must give up after its CloseTimeout (300 ms).
			ev = p.Next(300*time.Millisecond+closeBudget, "the TCP connection to close after CloseTimeout")
			if ev.Kind != evEOF {
				p.Fatalf("got %v, want the TCP connection closed after CloseTimeout", ev)
			}
			p.finished = true
			p.expectTetherEnd(1000, "local")
			if p.ep.closeErr == nil {
				p.Fatalf("Conn.Close returned nil, want an error: the peer never answered")
			}
		}},
	}
}
