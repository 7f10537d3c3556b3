package conformance

import (
	"fmt"
	"runtime"
	"strings"
	"time"
)

// sizeName prints 65536 as "64 KiB", 4194304 as "4 MiB".
func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// fragments cuts payload into a message of fragments of size bytes.
func fragments(op byte, payload []byte, size int) []Frame {
	var fs []Frame
	for off := 0; off < len(payload) || off == 0; off += size {
		end := min(off+size, len(payload))
		o := opCont
		if off == 0 {
			o = op
		}
		fs = append(fs, Frame{Op: o, Fin: end == len(payload), Payload: payload[off:end]})
		if end == len(payload) {
			break
		}
	}
	return fs
}

// smallLimit is Tether's ReadLimit in the 9.9 cases.
const smallLimit = 64 << 10

// Family 9: limits and performance. Every case of 9.1-9.8 is Heavy: it runs
// alone, so that the timed failure cases do not share the CPU with it.
func family9() []*Case {
	var cs []*Case
	kinds := []struct {
		op      byte
		name    string
		pattern string
	}{{opText, "text", "*"}, {opBinary, "binary", "\xfe"}}
	// 9.1, 9.2: one message in one frame.
	for k, kind := range kinds {
		for i, n := range []int{64 << 10, 256 << 10, 1 << 20, 4 << 20, 8 << 20, 16 << 20} {
			cs = append(cs, &Case{ID: fmt.Sprintf("9.%d.%d", k+1, i+1), Heavy: true,
				Desc: fmt.Sprintf("%s message of %s", kind.name, sizeName(n)),
				Run: func(p *Peer) {
					payload := repeat(kind.pattern, n)
					p.Send(Frame{Op: kind.op, Fin: true, Payload: payload})
					p.ExpectMessage(kind.op, payload)
					p.CloseNormal()
				}})
		}
	}
	// 9.3, 9.4: a 4 MiB message in fragments of 64 bytes to 4 MiB.
	for k, kind := range kinds {
		for i, size := range []int{64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20} {
			cs = append(cs, &Case{ID: fmt.Sprintf("9.%d.%d", k+3, i+1), Heavy: true,
				Desc: fmt.Sprintf("fragmented %s message of 4 MiB in fragments of %s", kind.name, sizeName(size)),
				Run: func(p *Peer) {
					payload := repeat(kind.pattern, 4<<20)
					p.Send(fragments(kind.op, payload, size)...)
					p.ExpectMessage(kind.op, payload)
					p.CloseNormal()
				}})
		}
	}
	// 9.5, 9.6: a 1 MiB message in one frame, written in chops of 64 bytes
	// to 2 KiB.
	for k, kind := range kinds {
		pattern := "BAsd7&jh23"
		if kind.op == opBinary {
			pattern = "\xfe"
		}
		for i, chop := range []int{64, 128, 256, 512, 1024, 2048} {
			cs = append(cs, &Case{ID: fmt.Sprintf("9.%d.%d", k+5, i+1), Heavy: true,
				Desc: fmt.Sprintf("%s message of 1 MiB written in chops of %d bytes", kind.name, chop),
				Run: func(p *Peer) {
					payload := repeat(pattern, 1<<20)
					p.SendChops(chop, Frame{Op: kind.op, Fin: true, Payload: payload})
					p.ExpectMessage(kind.op, payload)
					p.CloseNormal()
				}})
		}
	}
	// 9.7, 9.8: 1000 round trips, each waiting for the echo.
	for k, kind := range kinds {
		for i, n := range []int{0, 16, 64, 256, 1024, 4096} {
			payload := repeat(kind.pattern, n)
			cs = append(cs, &Case{ID: fmt.Sprintf("9.%d.%d", k+7, i+1), Heavy: true,
				Desc: fmt.Sprintf("1000 %s messages of %d bytes, one round trip each", kind.name, n),
				Run: func(p *Peer) {
					for range 1000 {
						p.Send(Frame{Op: kind.op, Fin: true, Payload: payload})
						p.ExpectMessage(kind.op, payload)
					}
					p.CloseNormal()
				}})
		}
	}
	// 9.9 (Tether): ReadLimit. A message over the limit fails the connection
	// with 1009 as soon as a frame header announces it, before its payload
	// is read.
	half := repeat("*", smallLimit/2)
	cs = append(cs,
		&Case{ID: "9.9.1", Limit: smallLimit, Desc: "text frame announcing ReadLimit+1 bytes, payload never sent: 1009", Run: func(p *Peer) {
			p.SendBytes("text frame header announcing ReadLimit+1 bytes", p.EncodeHeader(Frame{Op: opText, Fin: true}, smallLimit+1))
			p.ExpectFail(1009)
		}},
		&Case{ID: "9.9.2", Limit: smallLimit, Desc: "binary frame announcing 2^62 bytes, payload never sent: 1009", Run: func(p *Peer) {
			p.SendBytes("binary frame header announcing 2^62 bytes", p.EncodeHeader(Frame{Op: opBinary, Fin: true}, 1<<62))
			p.ExpectFail(1009)
		}},
		&Case{ID: "9.9.3", Limit: smallLimit, Desc: "fragment of ReadLimit/2, then a continuation header announcing ReadLimit/2+1: 1009", Run: func(p *Peer) {
			p.Send(Frame{Op: opText, Payload: half})
			p.SendBytes("continuation header announcing ReadLimit/2+1 bytes", p.EncodeHeader(Frame{Op: opCont, Fin: true}, smallLimit/2+1))
			p.ExpectFail(1009)
		}},
		&Case{ID: "9.9.4", Limit: smallLimit, Desc: "message of exactly ReadLimit bytes in 2 fragments: echoed", Run: func(p *Peer) {
			p.Send(Frame{Op: opText, Payload: half}, Frame{Op: opCont, Fin: true, Payload: half})
			p.ExpectText(strings.Repeat("*", smallLimit))
			p.CloseNormal()
		}},
		&Case{ID: "9.9.6", Limit: 256 << 20, Desc: "frame header announcing 128 MiB (ReadLimit 256 MiB), payload not sent yet: no 128 MiB allocation up front", Run: func(p *Peer) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			p.SendBytes("binary frame header announcing 128 MiB", p.EncodeHeader(Frame{Op: opBinary, Fin: true}, 128<<20))
			if ev, quiet := p.quiet(200 * time.Millisecond); !quiet {
				p.Fatalf("got %v, want Tether to wait for the payload", ev)
			}
			runtime.ReadMemStats(&after)
			// Memory should follow the bytes that arrived, not the length a
			// header claims: a peer that sends 14 bytes per connection must
			// not make the server allocate up to ReadLimit per connection.
			grown := after.TotalAlloc - before.TotalAlloc
			p.Drop()
			if grown > 32<<20 {
				p.Fatalf("%d MiB allocated while a 14-byte frame header was all that arrived", grown>>20)
			}
		}},
		&Case{ID: "9.9.5", Limit: smallLimit, Desc: "binary message in 1 KiB fragments growing past ReadLimit: 1009", Run: func(p *Peer) {
			fs := fragments(opBinary, repeat("\xfe", smallLimit+1024), 1024)
			p.Send(fs...)
			p.ExpectFail(1009)
		}},
	)
	return cs
}
