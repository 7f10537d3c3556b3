package interop

// Tether client -> peer server.

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tetherws/tether"
)

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

// multibyteText returns exactly n bytes of valid UTF-8 made mostly of 2-, 3-
// and 4-byte runes, so that fixed-size fragments split runes.
func multibyteText(n int) []byte {
	const pattern = "héllo wörld ✓ 🙂 ─ ünïcödé 日本語 "
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(pattern)
	}
	s := b.String()
	cut := n
	for !utf8.RuneStart(s[cut]) {
		cut--
	}
	return []byte(s[:cut] + strings.Repeat("x", n-cut))
}

// writeRead sends one message on c and checks that the peer echoes it exactly.
func writeRead(t *testing.T, c *tether.Conn, typ tether.MessageType, p []byte) {
	t.Helper()
	ctx := testContext(t)
	if err := c.Write(ctx, typ, p); err != nil {
		t.Fatalf("write %v %d bytes: %v", typ, len(p), err)
	}
	checkEcho(t, c, typ, p)
}

// checkEcho reads one message and checks it is typ with exactly p.
func checkEcho(t *testing.T, c *tether.Conn, typ tether.MessageType, p []byte) {
	t.Helper()
	gotTyp, got, err := c.Read(testContext(t))
	if err != nil {
		t.Fatalf("read echo of %v %d bytes: %v", typ, len(p), err)
	}
	if gotTyp != typ || !bytes.Equal(got, p) {
		t.Fatalf("echo: got %v %d bytes (sha %s), want %v %d bytes (sha %s)",
			gotTyp, len(got), shaHex(got), typ, len(p), shaHex(p))
	}
}

// closeCleanly runs the closing handshake from the Tether side and checks what
// Read reports afterwards: the local close, answered by the peer's echo.
func closeCleanly(t *testing.T, c *tether.Conn, code tether.StatusCode, reason string) {
	t.Helper()
	if err := c.Close(code, reason); err != nil {
		t.Fatalf("Close(%d, %q) = %v, want nil", code, reason, err)
	}
	_, _, err := c.Read(testContext(t))
	ce := checkCloseError(t, "Read after Close", err, code, reason, "local")
	checkFrame(t, "CloseError.Sent", ce.Sent, code, reason)
	checkFrame(t, "CloseError.Rcvd", ce.Rcvd, code, reason) // both peers echo the close frame
}

// TestClientEcho: messages of every kind sent by a Tether client come back
// from the peer's /echo byte for byte, with their type; closing with 1000 "bye"
// is seen by the server.
func TestClientEcho(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p *peer) {
		srv := startPeerServer(t, p)
		logs := &syncBuffer{}
		dumpLogsOnFailure(t, "tether client", logs)
		c := dial(t, srv.url("/echo"), dialOptions(logs))
		for _, m := range []struct {
			name string
			typ  tether.MessageType
			p    []byte
		}{
			{"text", tether.Text, []byte("héllo wörld")},
			{"binary", tether.Binary, []byte{0x00, 0x01, 0x02, 0xff}},
			{"empty text", tether.Text, []byte{}},
			{"empty binary", tether.Binary, []byte{}},
			{"1MiB text", tether.Text, multibyteText(mib)},
			{"1MiB binary", tether.Binary, randomBytes(mib, 1)},
		} {
			writeRead(t, c, m.typ, m.p)
		}
		closeCleanly(t, c, tether.StatusNormal, "bye")
		srv.expect(t, "closed 1000 bye")
	})
}

// sentFrameRE matches the LogFrames record of a data frame the client sent.
var sentFrameRE = regexp.MustCompile(`^> (TEXT|BINARY|CONT) .*\[(?:text|binary), ([0-9]+) bytes(, continued)?\]$`)

type sentFrame struct {
	op   string
	size int
	fin  bool
}

// sentDataFrames returns the data frames recorded in a LogFrames log.
func sentDataFrames(t *testing.T, logs *syncBuffer) []sentFrame {
	t.Helper()
	var frames []sentFrame
	for _, r := range logRecords(t, logs) {
		msg, _ := r["msg"].(string)
		m := sentFrameRE.FindStringSubmatch(msg)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[2])
		frames = append(frames, sentFrame{op: m[1], size: n, fin: m[3] == ""})
	}
	return frames
}

// checkFrames checks that frames form one well-formed message of total bytes
// starting with op, and returns how many frames it took.
func checkFrames(t *testing.T, frames []sentFrame, op string, total, maxSize int) int {
	t.Helper()
	if len(frames) == 0 {
		t.Fatal("no data frame in the client's frame log")
	}
	sum := 0
	for i, f := range frames {
		wantOp := "CONT"
		if i == 0 {
			wantOp = op
		}
		last := i == len(frames)-1
		if f.op != wantOp || f.fin != last || f.size > maxSize {
			t.Fatalf("frame %d of %d: %+v, want op %s, fin %t, at most %d bytes (all: %+v)",
				i, len(frames), f, wantOp, last, maxSize, frames)
		}
		sum += f.size
	}
	if sum != total {
		t.Fatalf("frames carry %d bytes, want %d", sum, total)
	}
	return len(frames)
}

// TestClientFragmented: a 1 MiB message sent as one frame, as 64 KiB
// fragments (FragmentSize), and through Conn.Writer in uneven writes is
// reassembled by the peer and echoed exactly. The client's frame log proves
// how it went on the wire. Text fragments split multi-byte runes, so the
// peer must validate UTF-8 across fragment boundaries.
func TestClientFragmented(t *testing.T) {
	text := multibyteText(mib)
	split := false
	for k := 64 << 10; k < len(text); k += 64 << 10 {
		split = split || !utf8.RuneStart(text[k])
	}
	if !split {
		t.Fatal("test data: no 64 KiB boundary splits a rune")
	}
	payloads := []struct {
		typ tether.MessageType
		op  string
		p   []byte
	}{
		{tether.Binary, "BINARY", randomBytes(mib, 2)},
		{tether.Text, "TEXT", text},
	}
	chunks := []int{1000, 100_000, 300_000, 7, mib - 401_007}

	forEachPeer(t, func(t *testing.T, p *peer) {
		srv := startPeerServer(t, p)
		for _, pl := range payloads {
			t.Run(pl.typ.String()+"/one_frame", func(t *testing.T) {
				logs := &syncBuffer{}
				dumpLogsOnFailure(t, "tether client", logs)
				opts := dialOptions(logs)
				opts.FragmentSize = -1
				opts.LogFrames = true
				c := dial(t, srv.url("/echo"), opts)
				writeRead(t, c, pl.typ, pl.p)
				if n := checkFrames(t, sentDataFrames(t, logs), pl.op, mib, mib); n != 1 {
					t.Fatalf("sent %d frames, want 1", n)
				}
				closeCleanly(t, c, tether.StatusNormal, "")
				srv.expect(t, "closed 1000 ")
			})
			t.Run(pl.typ.String()+"/FragmentSize_64KiB", func(t *testing.T) {
				logs := &syncBuffer{}
				dumpLogsOnFailure(t, "tether client", logs)
				opts := dialOptions(logs)
				opts.FragmentSize = 64 << 10
				opts.LogFrames = true
				c := dial(t, srv.url("/echo"), opts)
				writeRead(t, c, pl.typ, pl.p)
				if n := checkFrames(t, sentDataFrames(t, logs), pl.op, mib, 64<<10); n != 16 {
					t.Fatalf("sent %d frames, want 16", n)
				}
				closeCleanly(t, c, tether.StatusNormal, "")
				srv.expect(t, "closed 1000 ")
			})
			t.Run(pl.typ.String()+"/Writer", func(t *testing.T) {
				logs := &syncBuffer{}
				dumpLogsOnFailure(t, "tether client", logs)
				opts := dialOptions(logs)
				opts.FragmentSize = 64 << 10
				opts.LogFrames = true
				c := dial(t, srv.url("/echo"), opts)
				ctx := testContext(t)
				w, err := c.Writer(ctx, pl.typ)
				if err != nil {
					t.Fatal(err)
				}
				rest := pl.p
				for _, n := range chunks {
					m, err := w.Write(rest[:n])
					if err != nil || m != n {
						t.Fatalf("MessageWriter.Write(%d bytes) = %d, %v", n, m, err)
					}
					rest = rest[n:]
				}
				if len(rest) != 0 {
					t.Fatalf("test data: %d bytes not written", len(rest))
				}
				if err := w.Close(); err != nil {
					t.Fatalf("MessageWriter.Close: %v", err)
				}
				checkEcho(t, c, pl.typ, pl.p)
				if n := checkFrames(t, sentDataFrames(t, logs), pl.op, mib, 64<<10); n < len(chunks) {
					t.Fatalf("sent %d frames, want at least %d", n, len(chunks))
				}
				closeCleanly(t, c, tether.StatusNormal, "")
				srv.expect(t, "closed 1000 ")
			})
		}
	})
}

// TestClientWriterHonoursFragmentSize: with a FragmentSize that is not a power
// of two, a message streamed through Conn.Writer in small writes reaches the
// peer intact and, like Conn.Write, in frames of at most FragmentSize bytes.
func TestClientWriterHonoursFragmentSize(t *testing.T) {
	const fragmentSize = 1000
	data := randomBytes(10_000, 3)
	forEachPeer(t, func(t *testing.T, p *peer) {
		srv := startPeerServer(t, p)
		for _, how := range []string{"Write", "Writer"} {
			t.Run(how, func(t *testing.T) {
				logs := &syncBuffer{}
				dumpLogsOnFailure(t, "tether client", logs)
				opts := dialOptions(logs)
				opts.FragmentSize = fragmentSize
				opts.LogFrames = true
				c := dial(t, srv.url("/echo"), opts)
				ctx := testContext(t)
				if how == "Write" {
					if err := c.Write(ctx, tether.Binary, data); err != nil {
						t.Fatal(err)
					}
				} else {
					w, err := c.Writer(ctx, tether.Binary)
					if err != nil {
						t.Fatal(err)
					}
					for i := 0; i < len(data); i += 100 {
						if _, err := w.Write(data[i : i+100]); err != nil {
							t.Fatal(err)
						}
					}
					if err := w.Close(); err != nil {
						t.Fatal(err)
					}
				}
				checkEcho(t, c, tether.Binary, data)
				checkFrames(t, sentDataFrames(t, logs), "BINARY", len(data), fragmentSize)
				closeCleanly(t, c, tether.StatusNormal, "")
				srv.expect(t, "closed 1000 ")
			})
		}
	})
}

// sentPingRE matches the LogFrames record of the ping the client sent.
var sentPingRE = regexp.MustCompile(`^> PING ((?:[0-9a-f]{2} ?)+) \[binary, 4 bytes\]$`)

// TestClientPing: Conn.Ping gets the peer's pong and reports rtt > 0; the
// server saw exactly the payload the client sent.
func TestClientPing(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p *peer) {
		srv := startPeerServer(t, p)
		logs := &syncBuffer{}
		dumpLogsOnFailure(t, "tether client", logs)
		opts := dialOptions(logs)
		opts.LogFrames = true
		c := dial(t, srv.url("/echo"), opts)
		rtt, err := c.Ping(testContext(t))
		if err != nil {
			t.Fatalf("Ping: %v", err)
		}
		if rtt <= 0 {
			t.Fatalf("Ping rtt = %v, want > 0", rtt)
		}
		if st := c.Stats(); st.PingsSent != 1 || st.PongsReceived != 1 || st.RTT != rtt {
			t.Errorf("Stats: PingsSent %d PongsReceived %d RTT %v, want 1 1 %v", st.PingsSent, st.PongsReceived, st.RTT, rtt)
		}
		var payload string
		for _, r := range logRecords(t, logs) {
			msg, _ := r["msg"].(string)
			if m := sentPingRE.FindStringSubmatch(msg); m != nil {
				payload = strings.ReplaceAll(m[1], " ", "")
			}
		}
		if payload == "" {
			t.Fatal("no sent ping in the client's frame log")
		}
		srv.expect(t, "ping "+payload)
		closeCleanly(t, c, tether.StatusNormal, "")
		srv.expect(t, "closed 1000 ")
	})
}

// TestClientAnswersServerPing: the server's ping "hello" on /ping is answered
// by the Tether client without any Read, the server prints the pong, the
// client logs "received ping", and the connection keeps working.
func TestClientAnswersServerPing(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p *peer) {
		srv := startPeerServer(t, p)
		logs := &syncBuffer{}
		dumpLogsOnFailure(t, "tether client", logs)
		c := dial(t, srv.url("/ping"), dialOptions(logs))
		srv.expect(t, "pong 68656c6c6f") // "hello"
		var found bool
		for _, r := range logRecords(t, logs) {
			if r["msg"] == "received ping" {
				found = true
				if r["payload"] != "68 65 6c 6c 6f" || r["conn"] != c.ID() || r["role"] != "client" {
					t.Errorf("received ping record: %v", r)
				}
			}
		}
		if !found {
			t.Error(`no "received ping" record in the client log`)
		}
		writeRead(t, c, tether.Text, []byte("hi"))
		closeCleanly(t, c, tether.StatusNormal, "bye")
		srv.expect(t, "closed 1000 bye")
	})
}

// TestClientClose: a Tether client closing with 1000 "" and 4000 "done"; the
// server sees the code and reason, Close returns nil once the peer answered.
func TestClientClose(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p *peer) {
		srv := startPeerServer(t, p)
		for _, tc := range []struct {
			code   tether.StatusCode
			reason string
		}{
			{tether.StatusNormal, ""},
			{4000, "done"},
		} {
			t.Run(strconv.Itoa(int(tc.code)), func(t *testing.T) {
				logs := &syncBuffer{}
				dumpLogsOnFailure(t, "tether client", logs)
				c := dial(t, srv.url("/echo"), dialOptions(logs))
				closeCleanly(t, c, tc.code, tc.reason)
				srv.expect(t, fmt.Sprintf("closed %d %s", tc.code, tc.reason))
				if st := c.Stats().State; st != "closed" {
					t.Errorf("Stats().State = %q, want closed", st)
				}
			})
		}
	})
}

// TestClientServerInitiatedClose: the peer closes with 4001 "go away" right
// after the handshake; Read returns a CloseError naming the peer as
// initiator, and the client echoed the close frame.
func TestClientServerInitiatedClose(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p *peer) {
		srv := startPeerServer(t, p)
		logs := &syncBuffer{}
		dumpLogsOnFailure(t, "tether client", logs)
		c := dial(t, srv.url("/close?code=4001&reason=go%20away"), dialOptions(logs))
		_, _, err := c.Read(testContext(t))
		ce := checkCloseError(t, "Read", err, 4001, "go away", "peer")
		checkFrame(t, "CloseError.Rcvd", ce.Rcvd, 4001, "go away")
		checkFrame(t, "CloseError.Sent", ce.Sent, 4001, "go away")
		srv.expect(t, "closed 4001 go away")
	})
}

// TestClientHandshakeRejected: a 404 from the peer is a *HandshakeError with
// the response.
func TestClientHandshakeRejected(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p *peer) {
		srv := startPeerServer(t, p)
		logs := &syncBuffer{}
		c, resp, err := tether.Dial(testContext(t), srv.url("/nope"), dialOptions(logs))
		if err == nil {
			c.CloseNow()
			t.Fatal("Dial /nope succeeded, want a 404")
		}
		var he *tether.HandshakeError
		if !errors.As(err, &he) || he.StatusCode != http.StatusNotFound {
			t.Fatalf("Dial /nope: %v (%T), want a *tether.HandshakeError with 404", err, err)
		}
		if resp == nil || resp.StatusCode != http.StatusNotFound {
			t.Fatalf("Dial /nope: response %v, want status 404", resp)
		}
	})
}

// TestClientUseAfterClose: however a connection with a peer ended — the peer
// closed, we closed, the peer process died, or CloseNow — Write and Ping
// afterwards return the *CloseError that ended it (Conn.Err), as the
// CloseError doc promises ("Every Read, Write and Ping on a closed
// connection returns one"), and errors.Is(err, net.ErrClosed) holds. A
// message started with Writer fails the same way at the latest on Close.
func TestClientUseAfterClose(t *testing.T) {
	scenarios := []struct {
		name  string
		path  string
		close func(t *testing.T, c *tether.Conn, srv *peerServer)
	}{
		{"peer_closed", "/close?code=4001&reason=go%20away", func(t *testing.T, c *tether.Conn, srv *peerServer) {
			_, _, err := c.Read(testContext(t))
			checkCloseError(t, "Read", err, 4001, "go away", "peer")
		}},
		{"local_Close", "/echo", func(t *testing.T, c *tether.Conn, srv *peerServer) {
			closeCleanly(t, c, tether.StatusNormal, "")
		}},
		{"peer_died", "/echo", func(t *testing.T, c *tether.Conn, srv *peerServer) {
			srv.cancel() // SIGKILL: the kernel closes the socket, no close frame
			_, _, err := c.Read(testContext(t))
			checkCloseError(t, "Read", err, tether.StatusAbnormal, "connection lost", "peer")
		}},
		{"CloseNow", "/echo", func(t *testing.T, c *tether.Conn, srv *peerServer) {
			c.CloseNow()
			_, _, err := c.Read(testContext(t))
			checkCloseError(t, "Read", err, tether.StatusAbnormal, "closed without handshake", "local")
		}},
	}
	forEachPeer(t, func(t *testing.T, p *peer) {
		for _, sc := range scenarios {
			t.Run(sc.name, func(t *testing.T) {
				srv := startPeerServer(t, p)
				logs := &syncBuffer{}
				dumpLogsOnFailure(t, "tether client", logs)
				c := dial(t, srv.url(sc.path), dialOptions(logs))
				sc.close(t, c, srv)
				ended := c.Err()
				if ended == nil {
					t.Fatal("Err() = nil after the connection ended")
				}
				want := tether.CloseStatus(ended)
				check := func(op string, err error) {
					t.Helper()
					var ce *tether.CloseError
					if !errors.As(err, &ce) || ce.Code != want {
						t.Errorf("%s after the connection ended (%v): got %v (%T), want the *tether.CloseError %v",
							op, ended, err, err, ended)
					}
					if !errors.Is(err, net.ErrClosed) {
						t.Errorf("%s after the connection ended: errors.Is(%v, net.ErrClosed) = false", op, err)
					}
				}
				ctx := testContext(t)
				check("Write", c.Write(ctx, tether.Text, []byte("late")))
				_, err := c.Ping(ctx)
				check("Ping", err)
				w, err := c.Writer(ctx, tether.Binary)
				if err == nil {
					_, werr := w.Write([]byte("late"))
					err = w.Close()
					if werr != nil {
						err = werr
					}
				}
				check("Writer+Write+Close", err)
			})
		}
	})
}
