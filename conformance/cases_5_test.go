package conformance

import "time"

// chopping is how the peer cuts its byte stream into TCP writes, as Autobahn
// varies it within family 5.
type chopping int

const (
	oneChop   chopping = iota // all frames in one write
	frameWise                 // one write per frame
	octetWise                 // one write per byte
)

func (c chopping) send(p *Peer, frames ...Frame) {
	switch c {
	case frameWise:
		p.SendSync(frames...)
	case octetWise:
		p.SendChops(1, frames...)
	default:
		p.Send(frames...)
	}
}

// Family 5: fragmentation.
func family5() []*Case {
	fragmented := func(id, desc string, ch chopping) *Case {
		return &Case{ID: id, Desc: desc, Run: func(p *Peer) {
			ch.send(p, frag(opText, false, "fragment1"), frag(opCont, true, "fragment2"))
			p.ExpectText("fragment1fragment2")
			p.CloseNormal()
		}}
	}
	withPing := func(id, desc string, ch chopping) *Case {
		return &Case{ID: id, Desc: desc, Run: func(p *Peer) {
			ch.send(p, frag(opText, false, "fragment1"), pingFrame("ping payload"), frag(opCont, true, "fragment2"))
			p.ExpectPong([]byte("ping payload"))
			p.ExpectText("fragment1fragment2")
			p.CloseNormal()
		}}
	}
	// A continuation frame with nothing to continue, then a text message.
	orphan := func(id, desc string, fin bool, ch chopping) *Case {
		return &Case{ID: id, Desc: desc, Run: func(p *Peer) {
			ch.send(p, frag(opCont, fin, "non-continuation payload"), textFrame("Hello, world!"))
			p.ExpectFail(1002)
		}}
	}
	// 5.19 and 5.20: a ping between fragments must be answered before the
	// message is complete.
	pingsBetween := func(id, desc string, ch chopping) *Case {
		return &Case{ID: id, Desc: desc, Run: func(p *Peer) {
			ch.send(p, frag(opText, false, "fragment1"), frag(opCont, false, "fragment2"), pingFrame("pongme 1!"))
			p.ExpectPong([]byte("pongme 1!"))
			time.Sleep(100 * time.Millisecond) // Autobahn waits 1 s here
			ch.send(p, frag(opCont, false, "fragment3"), frag(opCont, false, "fragment4"), pingFrame("pongme 2!"),
				frag(opCont, true, "fragment5"))
			p.ExpectPong([]byte("pongme 2!"))
			p.ExpectText("fragment1fragment2fragment3fragment4fragment5")
			p.CloseNormal()
		}}
	}
	return []*Case{
		{ID: "5.1", Desc: "ping fragmented into 2 fragments: protocol error", Run: func(p *Peer) {
			p.Send(frag(opPing, false, "fragment1"), frag(opCont, true, "fragment2"))
			p.ExpectFail(1002)
		}},
		{ID: "5.2", Desc: "pong fragmented into 2 fragments: protocol error", Run: func(p *Peer) {
			p.Send(frag(opPong, false, "fragment1"), frag(opCont, true, "fragment2"))
			p.ExpectFail(1002)
		}},
		fragmented("5.3", "text message in 2 fragments", oneChop),
		fragmented("5.4", "text message in 2 fragments, frame-wise chops", frameWise),
		fragmented("5.5", "text message in 2 fragments, octet-wise chops", octetWise),
		withPing("5.6", "text message in 2 fragments, ping in between: pong, then echo", oneChop),
		withPing("5.7", "text message in 2 fragments, ping in between, frame-wise chops", frameWise),
		withPing("5.8", "text message in 2 fragments, ping in between, octet-wise chops", octetWise),
		orphan("5.9", "continuation (FIN) with nothing to continue, then text: protocol error", true, oneChop),
		orphan("5.10", "continuation (FIN) with nothing to continue, then text, frame-wise chops: protocol error", true, frameWise),
		orphan("5.11", "continuation (FIN) with nothing to continue, then text, octet-wise chops: protocol error", true, octetWise),
		orphan("5.12", "continuation (no FIN) with nothing to continue, then text: protocol error", false, oneChop),
		orphan("5.13", "continuation (no FIN) with nothing to continue, then text, frame-wise chops: protocol error", false, frameWise),
		orphan("5.14", "continuation (no FIN) with nothing to continue, then text, octet-wise chops: protocol error", false, octetWise),
		{ID: "5.15", Desc: "text in 2 fragments, then continuation with nothing to continue, then text: protocol error", Run: func(p *Peer) {
			p.Send(frag(opText, false, "fragment1"), frag(opCont, true, "fragment2"),
				frag(opCont, false, "fragment3"), frag(opText, true, "fragment4"))
			p.ExpectInOrder(textEvent("fragment1fragment2"))
			p.ExpectFail(1002)
		}},
		{ID: "5.16", Desc: "2x: continuation (no FIN) with nothing to continue, then text in 2 fragments: protocol error", Run: func(p *Peer) {
			var fs []Frame
			for range 2 {
				fs = append(fs, frag(opCont, false, "fragment1"), frag(opText, false, "fragment2"), frag(opCont, true, "fragment3"))
			}
			p.Send(fs...)
			p.ExpectFail(1002)
		}},
		{ID: "5.17", Desc: "2x: continuation (FIN) with nothing to continue, then text in 2 fragments: protocol error", Run: func(p *Peer) {
			var fs []Frame
			for range 2 {
				fs = append(fs, frag(opCont, true, "fragment1"), frag(opText, false, "fragment2"), frag(opCont, true, "fragment3"))
			}
			p.Send(fs...)
			p.ExpectFail(1002)
		}},
		{ID: "5.18", Desc: "text in 2 fragments, both with the text opcode: protocol error", Run: func(p *Peer) {
			p.Send(frag(opText, false, "fragment1"), frag(opText, true, "fragment2"))
			p.ExpectFail(1002)
		}},
		pingsBetween("5.19", "text in 5 fragments, pings after the 2nd and 4th: pongs before the message completes", oneChop),
		pingsBetween("5.20", "as 5.19, frame-wise chops", frameWise),
	}
}
