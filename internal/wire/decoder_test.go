package wire

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"
)

type decoderCase struct {
	name string
	cfg  DecoderConfig
	in   []byte
	want []event
}

// decoderCases are the conformance-style cases: bit-level fixtures first
// (RFC 6455 section 5.7's examples), then streams built with frame.
func decoderCases() []decoderCase {
	const pe, bad, big = CloseProtocolError, CloseInvalidPayload, CloseTooBig
	client := DecoderConfig{Role: Client}
	server := DecoderConfig{Role: Server}
	deflate := DecoderConfig{Role: Server, AllowRsv1: true}
	limit := func(n int64) DecoderConfig { return DecoderConfig{Role: Server, ReadLimit: n} }
	long := strings.Repeat("x", 70000)
	return []decoderCase{
		{"RFC unmasked Hello", client, cat(bits("1000 0001  0 0000101"), []byte("Hello")),
			[]event{evF(OpText, OpText, true, 5), evP("Hello")}},
		{"RFC masked Hello", server,
			cat(bits("1000 0001  1 0000101  00110111 11111010 00100001 00111101"), []byte("\x7f\x9f\x4d\x51\x58")),
			[]event{evF(OpText, OpText, true, 5), evP("Hello")}},
		{"RFC fragmented Hel lo", client,
			cat(bits("0000 0001  0 0000011"), []byte("Hel"), bits("1000 0000  0 0000010"), []byte("lo")),
			[]event{evF(OpText, OpText, false, 3), evP("Hel"), evF(OpContinuation, OpText, true, 2), evP("lo")}},
		{"RFC unmasked ping", client, cat(bits("1000 1001  0 0000101"), []byte("Hello")),
			[]event{evC(OpPing, "Hello")}},
		{"RFC masked pong", server,
			cat(bits("1000 1010  1 0000101  00110111 11111010 00100001 00111101"), []byte("\x7f\x9f\x4d\x51\x58")),
			[]event{evC(OpPong, "Hello")}},
		{"RFC 256 bytes, 16-bit length", client,
			cat(bits("1000 0010  0 1111110  00000001 00000000"), make([]byte, 256)),
			[]event{evF(OpBinary, OpBinary, true, 256), evP(string(make([]byte, 256)))}},
		{"RFC 64 KiB, 64-bit length", client,
			cat(bits("1000 0010  0 1111111  00000000 00000000 00000000 00000000 00000000 00000001 00000000 00000000"), make([]byte, 65536)),
			[]event{evF(OpBinary, OpBinary, true, 65536), evP(string(make([]byte, 65536)))}},
		{"64-bit length with MSB set", client,
			bits("1000 0010  0 1111111  10000000 00000000 00000000 00000000 00000000 00000000 00000000 00000001"),
			[]event{evE(pe)}},
		{"empty text, empty close", server, cat(frame(0x81, true, ""), frame(0x88, true, "")),
			[]event{evF(OpText, OpText, true, 0), evP(""), evC(OpClose, "")}},
		{"unmasked frame to a server", server, frame(0x81, false, "hi"), []event{evE(pe)}},
		{"masked frame to a client", client, frame(0x81, true, "hi"), []event{evE(pe)}},
		{"RSV1 without extension", server, frame(0xC1, true, "hi"), []event{evE(pe)}},
		{"RSV2", server, frame(0xA2, true, "hi"), []event{evE(pe)}},
		{"RSV3 with deflate", deflate, frame(0x92, true, "hi"), []event{evE(pe)}},
		{"RSV1 with deflate, text not checked", deflate, frame(0xC1, true, "\xff\xfe"),
			[]event{evFr(OpText, Rsv1, true, 2), evP("\xff\xfe")}},
		{"RSV1 on continuation", deflate, cat(frame(0x41, true, "a"), frame(0xC0, true, "b")),
			[]event{evFr(OpText, Rsv1, false, 1), evP("a"), evE(pe)}},
		{"RSV1 on ping", deflate, frame(0xC9, true, ""), []event{evE(pe)}},
		{"reserved opcode 3", server, frame(0x83, true, ""), []event{evE(pe)}},
		{"reserved opcode B after a message", server, cat(frame(0x82, true, "ok"), frame(0x8B, true, "")),
			[]event{evF(OpBinary, OpBinary, true, 2), evP("ok"), evE(pe)}},
		{"fragmented text with interleaved pings", server,
			cat(frame(0x01, true, "fra"), frame(0x89, true, "p1"), frame(0x00, true, "gme"),
				frame(0x8A, true, ""), frame(0x89, true, "p2"), frame(0x80, true, "nts")),
			[]event{evF(OpText, OpText, false, 3), evP("fra"), evC(OpPing, "p1"),
				evF(OpContinuation, OpText, false, 3), evP("gme"), evC(OpPong, ""), evC(OpPing, "p2"),
				evF(OpContinuation, OpText, true, 3), evP("nts")}},
		{"continuation without start", server, frame(0x80, true, "x"), []event{evE(pe)}},
		{"new message inside a fragmented one", server, cat(frame(0x02, true, "a"), frame(0x82, true, "b")),
			[]event{evF(OpBinary, OpBinary, false, 1), evP("a"), evE(pe)}},
		{"ping of 126 bytes", server, frame(0x89, true, strings.Repeat("p", 126)), []event{evE(pe)}},
		{"close of 125 bytes", server, frame(0x88, true, "\x03\xe8"+strings.Repeat("r", 123)),
			[]event{evC(OpClose, "\x03\xe8"+strings.Repeat("r", 123))}},
		{"close of 1 byte is the root's business", server, frame(0x88, true, "\x03"), []event{evC(OpClose, "\x03")}},
		{"fragmented ping", server, frame(0x09, true, "x"), []event{evE(pe)}},
		{"fragmented close", client, frame(0x08, false, ""), []event{evE(pe)}},
		{"invalid UTF-8 fails before delivery", server, frame(0x81, true, "ok\xc0\xafok"),
			[]event{evF(OpText, OpText, true, 6), evE(bad)}},
		{"invalid UTF-8 in a continuation", server, cat(frame(0x01, true, "κό"), frame(0x80, true, "σ\xed\xa0\x80")),
			[]event{evF(OpText, OpText, false, 4), evP("κό"), evF(OpContinuation, OpText, true, 5), evE(bad)}},
		{"text ends inside a sequence", server, cat(frame(0x01, true, "a\xe2\x82"), frame(0x80, true, "")),
			[]event{evF(OpText, OpText, false, 3), evP("a\xe2\x82"), evF(OpContinuation, OpText, true, 0), evE(bad)}},
		{"sequence split across fragments", server, cat(frame(0x01, true, "\xe2"), frame(0x00, true, "\x82"), frame(0x80, true, "\xac")),
			[]event{evF(OpText, OpText, false, 1), evP("\xe2"), evF(OpContinuation, OpText, false, 1), evP("\x82"),
				evF(OpContinuation, OpText, true, 1), evP("\xac")}},
		{"binary is not checked", server, frame(0x82, true, "\xff"), []event{evF(OpBinary, OpBinary, true, 1), evP("\xff")}},
		{"frame over the read limit", limit(4), frame(0x82, true, "12345"), []event{evE(big)}},
		{"frame at the read limit", limit(5), frame(0x82, true, "12345"), []event{evF(OpBinary, OpBinary, true, 5), evP("12345")}},
		{"message over the read limit", limit(5), cat(frame(0x02, true, "123"), frame(0x89, true, "ping"), frame(0x80, true, "456")),
			[]event{evF(OpBinary, OpBinary, false, 3), evP("123"), evC(OpPing, "ping"), evE(big)}},
		{"limit counts each message anew", limit(3), cat(frame(0x82, true, "123"), frame(0x81, true, "456")),
			[]event{evF(OpBinary, OpBinary, true, 3), evP("123"), evF(OpText, OpText, true, 3), evP("456")}},
		{"huge announced length, limit", limit(1 << 20), bits("1000 0010  0 1111111  01000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000"),
			[]event{evE(pe)}},
		{"long frame", client, frame(0x82, false, long), []event{evF(OpBinary, OpBinary, true, 70000), evP(long)}},
		{"cut data frame", server, frame(0x82, true, "hello")[:8], []event{evF(OpBinary, OpBinary, true, 5)}},
		{"cut control frame", server, frame(0x89, true, "hello")[:8], nil},
		{"cut header", server, frame(0x82, true, "hello")[:5], nil},
	}
}

func TestDecoderFixtures(t *testing.T) {
	for _, tc := range decoderCases() {
		t.Run(tc.name, func(t *testing.T) {
			sameEvents(t, "whole", feedPieces(t, tc.cfg, [][]byte{tc.in}), tc.want)
		})
	}
}

// TestDecoderMatchesPull checks the push decoder against the pull path's
// functions on every case: the same events and the same close code.
func TestDecoderMatchesPull(t *testing.T) {
	for _, tc := range decoderCases() {
		t.Run(tc.name, func(t *testing.T) {
			sameEvents(t, "pull reference", pullEvents(tc.cfg, tc.in), tc.want)
		})
	}
}

// TestDecoderSplits feeds every case byte by byte, in two pieces at every
// position, and in random pieces: the events must not depend on the cuts.
func TestDecoderSplits(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range decoderCases() {
		t.Run(tc.name, func(t *testing.T) {
			whole := feedPieces(t, tc.cfg, [][]byte{tc.in})
			if len(tc.in) <= 2000 {
				var bytewise [][]byte
				for i := range tc.in {
					bytewise = append(bytewise, tc.in[i:i+1])
				}
				sameEvents(t, "byte by byte", feedPieces(t, tc.cfg, bytewise), whole)
				for i := 0; i <= len(tc.in); i++ {
					sameEvents(t, "two pieces", feedPieces(t, tc.cfg, splitAt(tc.in, i)), whole)
				}
			}
			for range 50 {
				sameEvents(t, "random pieces", feedPieces(t, tc.cfg, randomSplit(rng, tc.in)), whole)
			}
		})
	}
}

// randomSplit cuts data into pieces of random sizes, small ones favoured.
func randomSplit(rng *rand.Rand, data []byte) [][]byte {
	var out [][]byte
	for len(data) > 0 {
		n := 1 + rng.IntN(1+rng.IntN(min(len(data), 300)))
		if rng.IntN(8) == 0 {
			n = 1 + rng.IntN(len(data))
		}
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}

// TestDecoderMaskAcrossChunks cuts a masked payload at every position, so
// the masking key's position is carried at each of its four phases.
func TestDecoderMaskAcrossChunks(t *testing.T) {
	payload := "The quick brown fox jumps over the lazy dog, masked."
	in := frame(0x82, true, payload)
	for i := 6; i < len(in); i++ {
		for j := i; j < len(in); j++ {
			got := feedPieces(t, DecoderConfig{}, splitAt(in, i, j))
			sameEvents(t, "three pieces", got, []event{evF(OpBinary, OpBinary, true, int64(len(payload))), evP(payload)})
		}
	}
}

// TestDecoderHandlerStops shows how a driver ends decoding after a close
// frame: the handler's error stops Feed, and the frames behind it in the
// same bytes are never delivered.
func TestDecoderHandlerStops(t *testing.T) {
	in := cat(frame(0x81, true, "a"), frame(0x88, true, "\x03\xe8"), frame(0x81, true, "after"))
	r := &recorder{stopOn: OpClose}
	var d Decoder
	d.Init(DecoderConfig{}, r)
	if err := d.Feed(in); err != errStop {
		t.Fatalf("Feed = %v, want errStop", err)
	}
	if d.Err() != errStop || d.Feed(frame(0x81, true, "more")) != errStop {
		t.Fatal("the handler's error did not stick")
	}
	sameEvents(t, "events", r.events, []event{evF(OpText, OpText, true, 1), evP("a"), evC(OpClose, "\x03\xe8")})
}

// TestDecoderRelease gives back the buffer of a control frame cut short by
// a connection that ended, and Init makes the decoder usable again.
func TestDecoderRelease(t *testing.T) {
	var d Decoder
	r := &recorder{}
	d.Init(DecoderConfig{}, r)
	in := frame(0x89, true, "ping")
	if err := d.Feed(append([]byte(nil), in[:8]...)); err != nil {
		t.Fatal(err)
	}
	if d.ctl == nil || !d.InFrame() {
		t.Fatal("a cut control frame holds no buffer")
	}
	d.Release()
	if d.ctl != nil {
		t.Fatal("Release kept the buffer")
	}
	if err := d.Feed(in[8:]); err != ErrDecoderReleased {
		t.Fatalf("Feed after Release = %v", err)
	}
	d.Init(DecoderConfig{}, r)
	if err := d.Feed(append([]byte(nil), in...)); err != nil || d.InFrame() {
		t.Fatalf("Feed after Init = %v (in frame %t)", err, d.InFrame())
	}
	sameEvents(t, "events", r.events, []event{evC(OpPing, "ping")})
}

func TestDecoderInFrameAndMessage(t *testing.T) {
	var d Decoder
	d.Init(DecoderConfig{}, &recorder{})
	steps := []struct {
		in             []byte
		inFrame, inMsg bool
	}{
		{frame(0x01, true, "ab")[:1], true, false},
		{frame(0x01, true, "ab")[1:7], true, true},
		{frame(0x01, true, "ab")[7:], false, true},
		{frame(0x89, true, ""), false, true},
		{frame(0x80, true, "c"), false, false},
	}
	for i, s := range steps {
		if err := d.Feed(append([]byte(nil), s.in...)); err != nil {
			t.Fatal(err)
		}
		if d.InFrame() != s.inFrame || d.InMessage() != s.inMsg {
			t.Fatalf("step %d: InFrame %t InMessage %t, want %t %t", i, d.InFrame(), d.InMessage(), s.inFrame, s.inMsg)
		}
	}
}

// TestDecoderSize keeps the struct every connection embeds small.
func TestDecoderSize(t *testing.T) {
	size := unsafe.Sizeof(Decoder{})
	t.Logf("sizeof(Decoder) = %d bytes", size)
	if size > 112 && unsafe.Sizeof(uintptr(0)) == 8 {
		t.Fatalf("sizeof(Decoder) = %d, want at most 112", size)
	}
}

// nopHandler counts what it is given and keeps nothing.
type nopHandler struct{ frames, controls, bytes int }

func (h *nopHandler) OnFrame(Header, Opcode) error        { h.frames++; return nil }
func (h *nopHandler) OnPayload(p []byte, last bool) error { h.bytes += len(p); return nil }
func (h *nopHandler) OnControl(Header, []byte) error      { h.controls++; return nil }

// TestDecoderAllocs: no allocation per Feed nor per frame, even with
// headers and control payloads cut between Feeds.
func TestDecoderAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	in := cat(frame(0x01, true, "Hello, "), frame(0x89, true, "a ping payload"), frame(0x80, true, "world"),
		frame(0x82, true, strings.Repeat("b", 300)), frame(0x8A, true, "pong"), frame(0x88, true, "\x03\xe8bye"))
	h := &nopHandler{}
	var d Decoder
	for _, piece := range []int{1, 3, 7, 64, len(in)} {
		allocs := testing.AllocsPerRun(100, func() {
			d.Init(DecoderConfig{}, h)
			for p := in; len(p) > 0; {
				n := min(piece, len(p))
				if err := d.Feed(p[:n]); err != nil {
					t.Fatal(err)
				}
				p = p[n:]
			}
		})
		if allocs != 0 {
			t.Errorf("pieces of %d bytes: %v allocations per stream of %d frames", piece, allocs, 6)
		}
	}
}
