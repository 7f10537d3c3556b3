package diagnose

import (
	"testing"
	"time"
)

func TestParseLine(t *testing.T) {
	const id = "7bea25df-5f4e-4c56-8a8e-1d2b3c4d5e6f"
	ts := func(s string) int64 {
		v, err := time.Parse("2006-01-02 15:04:05.000", s)
		if err != nil {
			t.Fatal(err)
		}
		return v.UnixNano()
	}
	tests := []struct {
		name, line string
		want       record // payload: any non-zero value means "has one"
	}{
		// python-websockets, legacy and < 15, %(asctime)s %(message)s
		{"asctime ping", "2025-06-07 05:31:37,123 % sending keepalive ping",
			record{kind: kindPing, src: srcPython, t: ts("2025-06-07 05:31:37.123"), hasTime: true}},
		{"asctime labeled", "2025-06-07 05:31:37,123 " + id + " % received keepalive pong",
			record{kind: kindPong, src: srcPython, t: ts("2025-06-07 05:31:37.123"), hasTime: true, conn: id}},
		{"guide prefix with address", "2025-06-07 05:31:37,123 " + id + " 10.0.0.5 > PING 29 0b 1d 85 [binary, 4 bytes]",
			record{kind: kindPingOut, src: srcPython, t: ts("2025-06-07 05:31:37.123"), hasTime: true, conn: id, payload: 1}},
		{"text payload", "2025-06-07 05:31:37,123 < PONG 'fzWr' [text, 4 bytes]",
			record{kind: kindPongIn, src: srcPython, t: ts("2025-06-07 05:31:37.123"), hasTime: true, payload: 1}},
		{"legacy timeout", "2025-06-07 05:31:37,123 ! timed out waiting for keepalive pong",
			record{kind: kindTimeout, src: srcPython, t: ts("2025-06-07 05:31:37.123"), hasTime: true}},
		// 15 and later
		{"v15 sent", "2025-06-07 05:31:37,123 % sent keepalive ping",
			record{kind: kindPingAfter, src: srcPython, t: ts("2025-06-07 05:31:37.123"), hasTime: true}},
		{"v15 timeout", "2025-06-07 05:31:37,123 - timed out waiting for keepalive pong",
			record{kind: kindTimeout, src: srcPython, t: ts("2025-06-07 05:31:37.123"), hasTime: true}},
		// logging's default format: no timestamps
		{"levelname", "DEBUG:websockets.client:% sending keepalive ping",
			record{kind: kindPing, src: srcPython, logger: "websockets.client"}},
		{"levelname labeled", "DEBUG:websockets.client:" + id + " < PING 01 02 03 04 [binary, 4 bytes]",
			record{kind: kindPeerPing, src: srcPython, logger: "websockets.client", conn: id, payload: 1}},
		// Home Assistant
		{"home assistant", "2025-06-07 05:31:37.123 DEBUG (MainThread) [websockets.client] = connection is OPEN",
			record{kind: kindOpen, src: srcPython, t: ts("2025-06-07 05:31:37.123"), hasTime: true, logger: "websockets.client", thread: "MainThread"}},
		{"home assistant nested thread", "2025-06-07 05:31:37.123 DEBUG (Thread-3 (keepalive)) [websockets.sync.client] % sent keepalive ping",
			record{kind: kindPingAfter, src: srcPython, t: ts("2025-06-07 05:31:37.123"), hasTime: true, logger: "websockets.sync.client", thread: "Thread-3 (keepalive)"}},
		{"bare logger name", "2025-06-07 05:31:37,123 websockets.client > GET /feed HTTP/1.1",
			record{kind: kindRequest, src: srcPython, t: ts("2025-06-07 05:31:37.123"), hasTime: true, logger: "websockets.client", role: "client", url: "/feed"}},
		{"host header", "> Host: example.com:8765",
			record{kind: kindHost, src: srcPython, role: "client", url: "example.com:8765"}},
		{"closed", "2025-06-07 05:31:37,123 = connection is CLOSED",
			record{kind: kindClosed, src: srcPython, t: ts("2025-06-07 05:31:37.123"), hasTime: true}},
		{"other frame", "2025-06-07 05:31:37,123 < TEXT 'hello' [text, 5 bytes]", record{kind: kindOther}},
		// Tether, slog text and JSON
		{"tether text", `time=2025-06-07T05:31:37.123Z level=DEBUG msg="sent keepalive ping" conn=` + id + ` role=client remote=10.0.0.5:8123 interval=20s`,
			record{kind: kindPing, src: srcTether, t: ts("2025-06-07 05:31:37.123"), hasTime: true, conn: id, role: "client", remote: "10.0.0.5:8123", dur: int64(20 * time.Second)}},
		{"tether text rtt", `time=2025-06-07T07:31:37.123+02:00 level=DEBUG msg="received keepalive pong" conn=` + id + ` role=client remote=10.0.0.5:8123 rtt=1.2ms`,
			record{kind: kindPong, src: srcTether, t: ts("2025-06-07 05:31:37.123"), hasTime: true, conn: id, role: "client", remote: "10.0.0.5:8123", dur: int64(1200 * time.Microsecond)}},
		{"tether json", `{"time":"2025-06-07T05:31:37.123456789Z","level":"DEBUG","msg":"sent keepalive ping","conn":"` + id + `","role":"client","remote":"10.0.0.5:8123","interval":20000000000}`,
			record{kind: kindPing, src: srcTether, t: ts("2025-06-07 05:31:37.123") + 456789, hasTime: true, conn: id, role: "client", remote: "10.0.0.5:8123", dur: int64(20 * time.Second)}},
		{"tether json frame", `{"time":"2025-06-07T05:31:37.123Z","level":"DEBUG","msg":"< PONG 29 0b 1d 85 [binary, 4 bytes]","conn":"` + id + `","role":"server","remote":"r"}`,
			record{kind: kindPongIn, src: srcTether, t: ts("2025-06-07 05:31:37.123"), hasTime: true, conn: id, role: "server", remote: "r", payload: 1, dur: -1}},
		{"tether json timeout", `{"time":"2025-06-07T05:31:37.123Z","level":"WARN","msg":"timed out waiting for keepalive pong","conn":"c1","role":"client","remote":"r","timeout":20000000000,"grp":{"a":"}"}}`,
			record{kind: kindTimeout, src: srcTether, t: ts("2025-06-07 05:31:37.123"), hasTime: true, conn: "c1", role: "client", remote: "r", dur: int64(20 * time.Second)}},
		{"tether open", `time=2025-06-07T05:31:37.123Z level=INFO msg="connection open" conn=c2 role=client remote=r url=ws://h:1/echo subprotocol="" ping_interval=5s ping_timeout=20s`,
			record{kind: kindOpen, src: srcTether, t: ts("2025-06-07 05:31:37.123"), hasTime: true, conn: "c2", role: "client", remote: "r", url: "ws://h:1/echo", dur: int64(5 * time.Second)}},
		{"tether open keepalive off, with local", `{"time":"2025-06-07T05:31:37.123Z","msg":"connection open","conn":"c2","role":"client","remote":"10.0.0.5:443","local":"10.0.0.9:50412","url":"wss://h/echo","ping_interval":0}`,
			record{kind: kindOpen, src: srcTether, t: ts("2025-06-07 05:31:37.123"), hasTime: true, conn: "c2", role: "client", remote: "10.0.0.5:443", local: "10.0.0.9:50412", url: "wss://h/echo", dur: 0}},
		{"tether received ping", `time=2025-06-07T05:31:37.123Z level=DEBUG msg="received ping" conn=c3 role=server remote=127.0.0.1:53412 payload=c6a835bd since=500.2ms`,
			record{kind: kindPeerPing, src: srcTether, t: ts("2025-06-07 05:31:37.123"), hasTime: true, conn: "c3", role: "server", remote: "127.0.0.1:53412", payload: 1, dur: int64(500200 * time.Microsecond)}},
		{"tether received ping, spaced payload, first", `time=2025-06-07T05:31:37.123Z level=DEBUG msg="received ping" conn=c3 role=server remote=127.0.0.1:53412 payload="c6 a8 35 bd"`,
			record{kind: kindPeerPing, src: srcTether, t: ts("2025-06-07 05:31:37.123"), hasTime: true, conn: "c3", role: "server", remote: "127.0.0.1:53412", payload: 1, dur: -1}},
		{"tether json received ping", `{"time":"2025-06-07T05:31:37.123Z","level":"DEBUG","msg":"received ping","conn":"c3","role":"server","remote":"127.0.0.1:53412","payload":"c6a835bd","since":500200000}`,
			record{kind: kindPeerPing, src: srcTether, t: ts("2025-06-07 05:31:37.123"), hasTime: true, conn: "c3", role: "server", remote: "127.0.0.1:53412", payload: 1, dur: int64(500200 * time.Microsecond)}},
		{"generic slog line", `time=2025-06-07T05:31:37.123Z level=INFO msg="shutting down"`, record{kind: kindOther}},
		// Not ours
		{"junk", "Traceback (most recent call last):", record{}},
		{"empty", "", record{}},
		{"arrow in prose", "2025-06-07 05:31:37,123 a -> b", record{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newParser().parse([]byte(tt.line))
			if (got.payload != 0) != (tt.want.payload != 0) {
				t.Errorf("payload %x, want one: %v", got.payload, tt.want.payload != 0)
			}
			got.payload, tt.want.payload = 0, 0
			if tt.want.kind != kindNone && tt.want.kind != kindOther && tt.want.src == srcPython {
				tt.want.dur = -1
			}
			if got.kind == kindOther {
				got = record{kind: kindOther} // only the kind matters
			}
			if got != tt.want {
				t.Errorf("parse(%q)\n got %+v\nwant %+v", tt.line, got, tt.want)
			}
		})
	}
}

func TestPingAndPongPayloadsMatch(t *testing.T) {
	p := newParser()
	ping := p.parse([]byte("2025-06-07 05:31:37,123 > PING 29 0b 1d 85 [binary, 4 bytes]"))
	pong := p.parse([]byte(`{"msg":"< PONG 29 0b 1d 85 [binary, 4 bytes]","conn":"x"}`))
	other := p.parse([]byte("< PONG 29 0b 1d 86 [binary, 4 bytes]"))
	if ping.payload != pong.payload || ping.payload == other.payload {
		t.Fatalf("payload hashes %x %x %x", ping.payload, pong.payload, other.payload)
	}
	// The other end's record of the same ping: Tether's received ping, in
	// its unspaced and its earlier spaced form.
	for _, line := range []string{
		`time=2025-06-07T05:31:37.123Z level=DEBUG msg="received ping" conn=c role=server remote=r payload=290b1d85 since=1s`,
		`time=2025-06-07T05:31:37.123Z level=DEBUG msg="received ping" conn=c role=server remote=r payload="29 0b 1d 85"`,
	} {
		if got := p.parse([]byte(line)); got.payload != ping.payload {
			t.Errorf("%s: payload hash %x, the ping frame's %x", line, got.payload, ping.payload)
		}
	}
}

// TestTextPayloadsHashAsHex: python-websockets prints a payload that is
// valid UTF-8 as a str repr; Tether prints the same bytes as hex.
func TestTextPayloadsHashAsHex(t *testing.T) {
	tests := []struct{ frame, hex string }{
		{`'+PbX' [text, 4 bytes]`, "2b506258"},
		{`'ͣ\x1ca' [text, 4 bytes]`, "cda31c61"},
		{`"it's" [text, 4 bytes]`, "69742773"},
		{`'\'\\\n\u0363' [text, 5 bytes]`, "275c0acda3"},
		{`'a\x' [text, 3 bytes]`, "615c78"}, // not an escape: kept as printed
	}
	p := newParser()
	for _, tt := range tests {
		frame := p.parse([]byte("2025-06-07 05:31:37,123 > PING " + tt.frame))
		recv := p.parse([]byte(`time=2025-06-07T05:31:37.123Z level=DEBUG msg="received ping" conn=c role=server remote=r payload=` + tt.hex))
		if frame.kind != kindPingOut || frame.payload != recv.payload {
			t.Errorf("%s: kind %d, hash %x; %s hashes %x", tt.frame, frame.kind, frame.payload, tt.hex, recv.payload)
		}
	}
}

func TestParseTime(t *testing.T) {
	for _, s := range []string{"2025-06-07 05:31:37,123", "2025-06-07 05:31:37.123", "2025-06-07T05:31:37.123Z",
		"2025-06-07T07:31:37.123+02:00", "2025-06-07T05:31:37.123000000Z"} {
		got, _, ok := parseTime([]byte(s))
		if want := time.Date(2025, 6, 7, 5, 31, 37, 123e6, time.UTC).UnixNano(); !ok || got != want {
			t.Errorf("parseTime(%q) = %d %v, want %d", s, got, ok, want)
		}
	}
	for _, s := range []string{"2025-06-07", "2025-13-07 05:31:37", "DEBUG:websockets", "2025-06-07 05:31:37,"} {
		if _, _, ok := parseTime([]byte(s)); ok {
			t.Errorf("parseTime(%q) ok", s)
		}
	}
}
