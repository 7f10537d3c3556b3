package conformance

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// utf8Group is one group of family 6.5 to 6.23: sequences that are sent as
// a single text message, valid ones to be echoed, invalid ones to fail the
// connection with 1007.
type utf8Group struct {
	title string
	seqs  []utf8Seq
}

type utf8Seq struct {
	valid bool
	b     string
}

func valid(bs ...string) []utf8Seq   { return seqs(true, bs) }
func invalid(bs ...string) []utf8Seq { return seqs(false, bs) }

func seqs(v bool, bs []string) []utf8Seq {
	out := make([]utf8Seq, len(bs))
	for i, b := range bs {
		out[i] = utf8Seq{v, b}
	}
	return out
}

// kosme is the Greek word κόσμε, the first line of Markus Kuhn's UTF-8
// decoder capability and stress test.
const kosme = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"

// utf8Groups follows the sections of Markus Kuhn's UTF-8 stress test in the
// order Autobahn numbers them, from 6.5 on.
func utf8Groups() []utf8Group {
	var prefixes []utf8Seq
	for i := 1; i <= len(kosme); i++ {
		prefixes = append(prefixes, utf8Seq{utf8.ValidString(kosme[:i]), kosme[:i]})
	}
	// 3.1: continuation bytes with no lead; the last one is 0x80..0xbe.
	var conts []byte
	for c := 0x80; c < 0xbf; c++ {
		conts = append(conts, byte(c))
	}
	// 3.2: each lead byte of a range alone, followed by a space.
	var lonely []utf8Seq
	for _, r := range [][2]int{{0xc0, 0xdf}, {0xe0, 0xef}, {0xf0, 0xf7}, {0xf8, 0xfb}, {0xfc, 0xfd}} {
		var s []byte
		for c := r[0]; c < r[1]; c++ {
			s = append(s, byte(c), 0x20)
		}
		lonely = append(lonely, utf8Seq{false, string(s)})
	}
	missing := []string{"\xc0", "\xe0\x80", "\xf0\x80\x80", "\xf8\x80\x80\x80", "\xfc\x80\x80\x80\x80",
		"\xdf", "\xef\xbf", "\xf7\xbf\xbf", "\xfb\xbf\xbf\xbf", "\xfd\xbf\xbf\xbf\xbf"}
	var concat string
	for _, m := range missing {
		concat += m
	}
	// 5.3: non-characters, which are valid UTF-8: U+FFFE, U+FFFF and the
	// last two code points of every supplementary plane.
	nonchars := []string{"\xef\xbf\xbe", "\xef\xbf\xbf"}
	for _, z1 := range []byte{0xf0, 0xf1, 0xf2, 0xf3, 0xf4} {
		for _, z2 := range []byte{0x8f, 0x9f, 0xaf, 0xbf} {
			if z1 == 0xf4 && z2 != 0x8f {
				continue // above U+10FFFF
			}
			if z1 == 0xf0 && z2 == 0x8f {
				continue // overlong
			}
			for _, z3 := range []byte{0xbe, 0xbf} {
				nonchars = append(nonchars, string([]byte{z1, z2, 0xbf, z3}))
			}
		}
	}
	return []utf8Group{
		{"some valid UTF-8 sequences", valid("hello\x24world", "hello\xc2\xa2world", "hello\xe2\x82\xacworld",
			"hello\xf0\xa4\xad\xa2world", kosme)},
		{"all prefixes of a valid UTF-8 string with multi-byte code points", prefixes},
		{"first possible sequence of a certain length", valid("\x00", "\xc2\x80", "\xe0\xa0\x80", "\xf0\x90\x80\x80")},
		{"first possible sequence of length 5/6 (invalid code points)", invalid("\xf8\x88\x80\x80\x80", "\xfc\x84\x80\x80\x80\x80")},
		{"last possible sequence of a certain length", valid("\x7f", "\xdf\xbf", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf")},
		{"last possible sequence of length 4/5/6 (invalid code points)", invalid("\xf7\xbf\xbf\xbf", "\xfb\xbf\xbf\xbf\xbf", "\xfd\xbf\xbf\xbf\xbf\xbf")},
		{"other boundary conditions", append(valid("\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbd", "\xf4\x8f\xbf\xbf"), invalid("\xf4\x90\x80\x80")...)},
		{"unexpected continuation bytes", invalid("\x80", "\xbf", "\x80\xbf", "\x80\xbf\x80", "\x80\xbf\x80\xbf",
			"\x80\xbf\x80\xbf\x80", "\x80\xbf\x80\xbf\x80\xbf", string(conts))},
		{"lonely start characters", lonely},
		{"sequences with the last continuation byte missing", invalid(missing...)},
		{"concatenation of incomplete sequences", invalid(concat)},
		{"impossible bytes", invalid("\xfe", "\xff", "\xfe\xfe\xff\xff")},
		{"overlong ASCII character", invalid("\xc0\xaf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\xf8\x80\x80\x80\xaf", "\xfc\x80\x80\x80\x80\xaf")},
		{"maximum overlong sequences", invalid("\xc1\xbf", "\xe0\x9f\xbf", "\xf0\x8f\xbf\xbf", "\xf8\x87\xbf\xbf\xbf", "\xfc\x83\xbf\xbf\xbf\xbf")},
		{"overlong NUL", invalid("\xc0\x80", "\xe0\x80\x80", "\xf0\x80\x80\x80", "\xf8\x80\x80\x80\x80", "\xfc\x80\x80\x80\x80\x80")},
		{"single UTF-16 surrogates", invalid("\xed\xa0\x80", "\xed\xad\xbf", "\xed\xae\x80", "\xed\xaf\xbf", "\xed\xb0\x80", "\xed\xbe\x80", "\xed\xbf\xbf")},
		{"paired UTF-16 surrogates", invalid("\xed\xa0\x80\xed\xb0\x80", "\xed\xa0\x80\xed\xbf\xbf", "\xed\xad\xbf\xed\xb0\x80",
			"\xed\xad\xbf\xed\xbf\xbf", "\xed\xae\x80\xed\xb0\x80", "\xed\xae\x80\xed\xbf\xbf", "\xed\xaf\xbf\xed\xb0\x80", "\xed\xaf\xbf\xed\xbf\xbf")},
		{"non-character code points (valid UTF-8)", valid(nonchars...)},
		{"Unicode specials (valid UTF-8)", valid("\xef\xbf\xb9", "\xef\xbf\xba", "\xef\xbf\xbb", "\xef\xbf\xbc", "\xef\xbf\xbd", "\xef\xbf\xbe", "\xef\xbf\xbf")},
	}
}

// bytewise returns a text message cut into fragments of one byte each.
func bytewise(s string) []Frame {
	var fs []Frame
	for i := 0; i < len(s); i++ {
		op := opCont
		if i == 0 {
			op = opText
		}
		fs = append(fs, frag(op, i == len(s)-1, s[i:i+1]))
	}
	return fs
}

// Family 6: UTF-8 handling.
func family6() []*Case {
	const hello = "Hello-µ@ßöäüàá-UTF-8!!"
	// The invalid message of 6.3 and 6.4: κόσμε, then a sequence that is
	// invalid at its second byte, then "edited".
	const bad63 = kosme + "\xed\xa0\x80" + "edited"
	echo := func(id, desc string, frames func() []Frame, want string) *Case {
		return &Case{ID: id, Desc: desc, Run: func(p *Peer) {
			p.Send(frames()...)
			p.ExpectText(want)
			p.CloseNormal()
		}}
	}
	cs := []*Case{
		echo("6.1.1", "text message of length 0", func() []Frame { return []Frame{textFrame("")} }, ""),
		echo("6.1.2", "text message in 3 fragments, each of length 0", func() []Frame {
			return []Frame{frag(opText, false, ""), frag(opCont, false, ""), frag(opCont, true, "")}
		}, ""),
		echo("6.1.3", "text message in 3 fragments, the first and last of length 0", func() []Frame {
			return []Frame{frag(opText, false, ""), frag(opCont, false, "middle frame payload"), frag(opCont, true, "")}
		}, "middle frame payload"),
		echo("6.2.1", "valid UTF-8 text message in one fragment", func() []Frame { return []Frame{textFrame(hello)} }, hello),
		echo("6.2.2", "valid UTF-8 text message in 2 fragments split on a code point boundary", func() []Frame {
			return []Frame{frag(opText, false, "Hello-µ@ßöäüàá-"), frag(opCont, true, "UTF-8!!")}
		}, hello),
		echo("6.2.3", "valid UTF-8 text message in fragments of 1 byte", func() []Frame { return bytewise(hello) }, hello),
		echo("6.2.4", "valid UTF-8 text message (κόσμε) in fragments of 1 byte", func() []Frame { return bytewise(kosme) }, kosme),
		{ID: "6.3.1", Desc: "invalid UTF-8 text message in one fragment: 1007", Run: func(p *Peer) {
			p.Send(textFrame(bad63))
			p.ExpectFail(1007)
		}},
		{ID: "6.3.2", Desc: "invalid UTF-8 text message in fragments of 1 byte: 1007", Run: func(p *Peer) {
			p.Send(bytewise(bad63)...)
			p.ExpectFail(1007)
		}},
	}
	// 6.4: fail fast. The message is valid up to a byte in its middle; Tether
	// must fail the connection as soon as it has that byte, before the rest
	// of the message is sent.
	const part1, part2, part3 = kosme, "\xf4\x90\x80\x80", "\x65\x64\x69\x74\x65\x64"
	const whole = part1 + part2 + part3 // invalid at byte 12 (0x90)
	inFrames := func(id, desc string, a, b, c string) *Case {
		return &Case{ID: id, Desc: desc, Run: func(p *Peer) {
			// A ping after the first fragment proves it was accepted.
			p.Send(frag(opText, false, a), pingFrame("first fragment accepted"))
			p.ExpectPong([]byte("first fragment accepted"))
			p.Send(frag(opCont, false, b))
			if p.TryExpectFail(1007, failBudget) {
				return
			}
			p.Send(frag(opCont, true, c))
			p.ExpectFail(1007)
			p.Fatalf("not fail-fast: the connection failed only after the last fragment; the invalid byte came %v earlier", failBudget)
		}}
	}
	inChops := func(id, desc string, cut1, cut2 int) *Case {
		return &Case{ID: id, Desc: desc, Run: func(p *Peer) {
			b := p.Encode(textFrame(whole))
			hdr := len(b) - len(whole)
			p.SendBytes("frame header and first chop", b[:hdr+cut1])
			// The prefix is valid: Tether must wait, not fail.
			if ev, quiet := p.quiet(300 * time.Millisecond); !quiet {
				p.Fatalf("got %v after a valid prefix of the message", ev)
			}
			p.SendBytes("second chop, with the invalid byte", b[hdr+cut1:hdr+cut2])
			if p.TryExpectFail(1007, failBudget) {
				return
			}
			p.SendBytes("third chop", b[hdr+cut2:])
			p.ExpectFail(1007)
			p.Fatalf("not fail-fast: the connection failed only after the whole frame arrived; the invalid byte came %v earlier", failBudget)
		}}
	}
	cs = append(cs,
		inFrames("6.4.1", "invalid text in 3 fragments; the 2nd holds the invalid sequence: fail fast with 1007", part1, part2, part3),
		inFrames("6.4.2", "invalid text in 3 fragments; the 2nd is just the invalid byte: fail fast with 1007", whole[:12], whole[12:13], whole[13:]),
		inChops("6.4.3", "invalid text in one frame sent in 3 chops; the 2nd holds the invalid sequence: fail fast with 1007", 11, 15),
		inChops("6.4.4", "invalid text in one frame sent in 3 chops; the 2nd is just the invalid byte: fail fast with 1007", 12, 13),
	)
	for i, g := range utf8Groups() {
		for j, s := range g.seqs {
			id := fmt.Sprintf("6.%d.%d", i+5, j+1)
			if s.valid {
				cs = append(cs, &Case{ID: id, Desc: fmt.Sprintf("valid UTF-8, %s: % x", g.title, s.b), Run: func(p *Peer) {
					p.Send(textFrame(s.b))
					p.ExpectText(s.b)
					p.CloseNormal()
				}})
			} else {
				cs = append(cs, &Case{ID: id, Desc: fmt.Sprintf("invalid UTF-8, %s: % x", g.title, s.b), Run: func(p *Peer) {
					p.Send(textFrame(s.b))
					p.ExpectFail(1007)
				}})
			}
		}
	}
	return cs
}
