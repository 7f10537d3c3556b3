package interop

// Keepalive against real peers, in real time on loopback, with short
// settings: a ping every 300 ms, 300 ms to answer. A peer that stops reading
// (python: transport.pause_reading(), node: socket.pause(), or a raw TCP
// client that never reads) never answers, and the Tether side must fail the
// connection with 1011 "keepalive ping timeout" within PingInterval +
// PingTimeout + 100 ms of opening it; a peer that reads answers every ping.
//
// Library bugs found on the way (details in each test's comment):
//   - TestKeepaliveCloseFrameBeforeWake, TestKeepalivePingAfterTimeoutNotCounted:
//     regression tests; they failed on the tree as first tested and pass
//     since close.go and ping.go were changed.
//   - TestKeepaliveTimeoutDuringWrites (fails in about half the runs) and
//     TestKeepalivePingContextDoesNotPoisonWrites (fails every run) show
//     bugs still present; they fail until those are fixed.

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherws/tether"
)

const (
	kaInterval = 300 * time.Millisecond
	kaTimeout  = 300 * time.Millisecond
	// kaBound is the acceptance criterion of the keepalive issue: a peer
	// that stopped answering is given up within PingInterval + PingTimeout
	// + 100 ms of the connection opening. The first ping's jitter (it goes
	// out 80-100% of an interval after opening) only makes it earlier.
	kaBound = kaInterval + kaTimeout + 100*time.Millisecond
	// kaFirstPingMin is the earliest the first keepalive ping may go out.
	kaFirstPingMin = kaInterval * 8 / 10
	// clockSlop absorbs the difference between the wall-clock times in
	// Stats and the monotonic times the test measures.
	clockSlop = 10 * time.Millisecond
	// kaWatch is how long TestKeepaliveClientEcho watches a healthy
	// connection.
	kaWatch = 1500 * time.Millisecond
)

// keepaliveOptions are the connection options of every test here: short
// keepalive settings, a close handshake long enough to tell "dropped TCP at
// once" from "waited for the peer", logs at debug level into logs.
func keepaliveOptions(logs *syncBuffer) tether.ConnOptions {
	return tether.ConnOptions{
		PingInterval: kaInterval,
		PingTimeout:  kaTimeout,
		CloseTimeout: 5 * time.Second,
		Logger:       newLogger(logs),
	}
}

// recordsNamed returns the records of logs whose message is msg.
func recordsNamed(t *testing.T, logs *syncBuffer, msg string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, r := range logRecords(t, logs) {
		if r["msg"] == msg {
			recs = append(recs, r)
		}
	}
	return recs
}

// checkConnAttrs checks a record's level and the attributes every record of
// a connection carries: conn (the ID), role and remote.
func checkConnAttrs(t *testing.T, r map[string]any, level, id, role, remote string) {
	t.Helper()
	if r["level"] != level {
		t.Errorf("%q record: level %v, want %s: %v", r["msg"], r["level"], level, r)
	}
	if conn, _ := r["conn"].(string); conn == "" || conn != id {
		t.Errorf("%q record: conn %v, want the connection ID %q: %v", r["msg"], r["conn"], id, r)
	}
	if r["role"] != role || r["remote"] != remote {
		t.Errorf("%q record: role %v remote %v, want %s %s: %v", r["msg"], r["role"], r["remote"], role, remote, r)
	}
}

// durationAttr returns a duration attribute of a JSON record (slog writes
// durations as integer nanoseconds).
func durationAttr(t *testing.T, r map[string]any, key string) time.Duration {
	t.Helper()
	v, ok := r[key].(float64)
	if !ok {
		t.Fatalf("%q record: attribute %s = %v (%T), want a duration in nanoseconds: %v", r["msg"], key, r[key], r[key], r)
	}
	return time.Duration(v)
}

// checkKeepaliveClose fails the test unless err is the CloseError of a
// keepalive timeout: 1011 "keepalive ping timeout", initiated locally, with
// that close frame sent and none received (the peer is not waited for).
func checkKeepaliveClose(t *testing.T, what string, err error) {
	t.Helper()
	ce := checkCloseError(t, what, err, tether.StatusInternalError, "keepalive ping timeout", "local")
	if tether.KeepaliveTimeoutReason != "keepalive ping timeout" {
		t.Errorf("tether.KeepaliveTimeoutReason = %q, want %q", tether.KeepaliveTimeoutReason, "keepalive ping timeout")
	}
	checkFrame(t, what+": CloseError.Sent", ce.Sent, tether.StatusInternalError, "keepalive ping timeout")
	if ce.Rcvd != nil {
		t.Errorf("%s: CloseError.Rcvd = %+v, want nil: a silent peer sends no close frame", what, *ce.Rcvd)
	}
}

// checkTimeoutLogged checks that the connection logged exactly one
// "timed out waiting for keepalive pong" warning, with its conn, role and
// remote, and the timeout; and that its "connection closed" record says 1011.
func checkTimeoutLogged(t *testing.T, logs *syncBuffer, id, role, remote string) {
	t.Helper()
	recs := recordsNamed(t, logs, "timed out waiting for keepalive pong")
	if len(recs) != 1 {
		t.Fatalf("%d \"timed out waiting for keepalive pong\" records, want 1: %v", len(recs), recs)
	}
	r := recs[0]
	checkConnAttrs(t, r, "WARN", id, role, remote)
	if got := durationAttr(t, r, "timeout"); got != kaTimeout {
		t.Errorf("timeout record: timeout %v, want %v", got, kaTimeout)
	}
	// "connection closed" is written just after the connection is marked
	// done, so it may trail the Read that returned: give it a moment.
	var closed []map[string]any
	for deadline := time.Now().Add(lineTimeout); ; time.Sleep(5 * time.Millisecond) {
		closed = recordsNamed(t, logs, "connection closed")
		if len(closed) > 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(closed) != 1 {
		t.Fatalf("%d \"connection closed\" records, want 1: %v", len(closed), closed)
	}
	c := closed[0]
	checkConnAttrs(t, c, "INFO", id, role, remote)
	if c["code"] != float64(tether.StatusInternalError) || c["reason"] != "keepalive ping timeout" || c["initiator"] != "local" {
		t.Errorf("connection closed record: %v, want code 1011, reason \"keepalive ping timeout\", initiator local", c)
	}
}

// checkUseAfterTimeout checks that Write and Ping on a connection ended by a
// keepalive timeout fail with its 1011.
func checkUseAfterTimeout(t *testing.T, what string, writeErr, pingErr error) {
	t.Helper()
	if got := tether.CloseStatus(writeErr); got != tether.StatusInternalError {
		t.Errorf("%s: Write after the keepalive timeout: %v (CloseStatus %d), want CloseStatus 1011", what, writeErr, got)
	}
	if got := tether.CloseStatus(pingErr); got != tether.StatusInternalError {
		t.Errorf("%s: Ping after the keepalive timeout: %v (CloseStatus %d), want CloseStatus 1011", what, pingErr, got)
	}
}

// checkTimeoutStats checks the counters of a connection ended by a keepalive
// timeout, and that the timeout ran its full length after the last ping:
// end is when the blocked Read returned.
func checkTimeoutStats(t *testing.T, st tether.Stats, end time.Time) {
	t.Helper()
	if st.PingsSent < 1 || st.PongsReceived != 0 || st.PingTimeouts != 1 || st.State != "closed" {
		t.Errorf("Stats: PingsSent %d PongsReceived %d PingTimeouts %d State %q, want >= 1, 0, 1, closed",
			st.PingsSent, st.PongsReceived, st.PingTimeouts, st.State)
	}
	if st.LastPingAt.IsZero() {
		t.Fatal("Stats.LastPingAt is zero after a keepalive timeout")
	}
	if d := end.Sub(st.LastPingAt); d < kaTimeout-clockSlop {
		t.Errorf("the connection ended %v after the last keepalive ping, before PingTimeout (%v)", d, kaTimeout)
	}
	if st.PingsSent == 1 {
		if d := st.LastPingAt.Sub(st.OpenedAt); d < kaFirstPingMin-clockSlop {
			t.Errorf("the first keepalive ping went out %v after opening, want at least %v (80%% of PingInterval)", d, kaFirstPingMin)
		}
	}
}

// TestKeepaliveClientPausedServer: the peer server stops reading right after
// the handshake (/pause), so it never answers a ping. A goroutine blocked in
// the Tether client's Read gets 1011 "keepalive ping timeout" within
// PingInterval + PingTimeout + 100 ms of the dial; the client logged the
// timeout once, with its connection ID; later Writes and Pings fail with 1011.
func TestKeepaliveClientPausedServer(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p *peer) {
		srv := startPeerServer(t, p)
		logs := &syncBuffer{}
		dumpLogsOnFailure(t, "tether client", logs)
		c := dial(t, srv.url("/pause"), &tether.DialOptions{ConnOptions: keepaliveOptions(logs)})
		dialed := time.Now()
		type readResult struct {
			err error
			at  time.Time
		}
		ended := make(chan readResult, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), lineTimeout)
			defer cancel()
			_, _, err := c.Read(ctx)
			ended <- readResult{err, time.Now()}
		}()
		srv.expect(t, "paused")
		var res readResult
		select {
		case res = <-ended:
		case <-time.After(2 * lineTimeout): // Read's own context ends first
			t.Fatal("Read did not return")
		}
		elapsed := res.at.Sub(dialed)
		t.Logf("%s: Read returned %v after the dial (bound %v)", p.name, elapsed, kaBound)
		checkKeepaliveClose(t, "Read", res.err)
		if elapsed > kaBound {
			t.Errorf("Read returned the keepalive timeout %v after the dial, want at most PingInterval + PingTimeout + 100ms = %v",
				elapsed, kaBound)
		}
		checkTimeoutStats(t, c.Stats(), res.at)
		checkTimeoutLogged(t, logs, c.ID(), "client", c.RemoteAddr().String())
		ctx := testContext(t)
		werr := c.Write(ctx, tether.Text, []byte("late"))
		_, perr := c.Ping(ctx)
		checkUseAfterTimeout(t, "client", werr, perr)
	})
}

// TestKeepaliveClientBlockedCalls: against a peer server that stopped
// reading (/pause), a Write of a message bigger than every socket buffer on
// the way blocks for good, a Ping waits for a pong that never comes (or for
// the frame lock the stuck writer holds), and a Read waits for a message:
// the keepalive timeout ends all three with the 1011 CloseError.
//
// The bound here is kaBound + 100 ms, not kaBound: the stuck writer holds the
// frame lock, and the close frame is given up to 100 ms to get it before TCP
// is dropped. Depending on the version of abort (close.go), either the Write
// alone (finish first, then the close frame) or all three calls (close frame
// first, then finish) return that much later than the timeout; with the
// first ping at a full interval that is PingInterval + PingTimeout + 100 ms
// plus scheduling, a few ms past kaBound.
func TestKeepaliveClientBlockedCalls(t *testing.T) {
	const big = 64 * mib // more than tcp_wmem + tcp_rmem can hold
	msg := make([]byte, big)
	forEachPeer(t, func(t *testing.T, p *peer) {
		srv := startPeerServer(t, p)
		logs := &syncBuffer{}
		dumpLogsOnFailure(t, "tether client", logs)
		c := dial(t, srv.url("/pause"), &tether.DialOptions{ConnOptions: keepaliveOptions(logs)})
		dialed := time.Now()
		type callResult struct {
			op  string
			err error
			at  time.Time
		}
		results := make(chan callResult, 3)
		ctx, cancel := context.WithTimeout(context.Background(), lineTimeout)
		defer cancel()
		go func() {
			_, _, err := c.Read(ctx)
			results <- callResult{"Read", err, time.Now()}
		}()
		go func() {
			err := c.Write(ctx, tether.Binary, msg)
			results <- callResult{"Write", err, time.Now()}
		}()
		go func() {
			_, err := c.Ping(ctx)
			results <- callResult{"Ping", err, time.Now()}
		}()
		srv.expect(t, "paused")
		for range 3 {
			var r callResult
			select {
			case r = <-results:
			case <-time.After(2 * lineTimeout): // the calls' own context ends first
				t.Fatal("a blocked call did not return")
			}
			elapsed := r.at.Sub(dialed)
			t.Logf("%s: %s returned %v after the dial", p.name, r.op, elapsed)
			bound := kaBound + 100*time.Millisecond
			checkKeepaliveClose(t, r.op, r.err)
			if elapsed > bound {
				t.Errorf("blocked %s returned %v after the dial, want at most %v", r.op, elapsed, bound)
			}
		}
		checkTimeoutLogged(t, logs, c.ID(), "client", c.RemoteAddr().String())
		if st := c.Stats(); st.PingTimeouts != 1 || st.MessagesOut != 0 {
			t.Errorf("Stats: PingTimeouts %d MessagesOut %d, want 1 and 0 (the big message never went out whole)", st.PingTimeouts, st.MessagesOut)
		}
	})
}

// TestKeepaliveClientEcho: against a peer that reads (/echo), the Tether
// client pings every PingInterval for 1.5 s, every ping is answered, nothing
// times out. The debug records "sent keepalive ping" (interval) and
// "received keepalive pong" (rtt) carry conn, role and remote; Stats and
// Latency agree; the server saw the pings; the connection still works.
func TestKeepaliveClientEcho(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p *peer) {
		srv := startPeerServer(t, p)
		logs := &syncBuffer{}
		dumpLogsOnFailure(t, "tether client", logs)
		c := dial(t, srv.url("/echo"), &tether.DialOptions{ConnOptions: keepaliveOptions(logs)})
		id, remote := c.ID(), c.RemoteAddr().String()

		ctx, cancel := context.WithTimeout(context.Background(), kaWatch)
		_, _, err := c.Read(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Read while watching keepalive for %v: %v, want the context's deadline (no message, no close)", kaWatch, err)
		}
		if err := c.Err(); err != nil {
			t.Fatalf("connection ended while the peer was answering pings: %v", err)
		}
		st := c.Stats()
		latency := c.Latency()
		sent := recordsNamed(t, logs, "sent keepalive ping")
		pongs := recordsNamed(t, logs, "received keepalive pong")
		t.Logf("%s: over %v: %d pings sent, %d pongs, latency %v", p.name, kaWatch, len(sent), len(pongs), latency)

		// Pings go out 0.8-1 interval after opening, then every interval:
		// at least 4 fit in 1.5 s; ask for 3 to leave room for a loaded
		// machine's timer delays.
		if len(sent) < 3 || len(pongs) < 3 {
			t.Errorf("%d \"sent keepalive ping\" and %d \"received keepalive pong\" records in %v, want at least 3 of each",
				len(sent), len(pongs), kaWatch)
		}
		var prev time.Time
		for i, r := range sent {
			checkConnAttrs(t, r, "DEBUG", id, "client", remote)
			if got := durationAttr(t, r, "interval"); got != kaInterval {
				t.Errorf("sent keepalive ping record: interval %v, want %v", got, kaInterval)
			}
			at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(r["time"]))
			if err != nil {
				t.Fatalf("sent keepalive ping record: time %v: %v", r["time"], err)
			}
			if i > 0 && at.Sub(prev) < kaInterval/2 {
				t.Errorf("keepalive pings %d and %d only %v apart, want about %v", i, i+1, at.Sub(prev), kaInterval)
			}
			prev = at
		}
		for _, r := range pongs {
			checkConnAttrs(t, r, "DEBUG", id, "client", remote)
			if rtt := durationAttr(t, r, "rtt"); rtt <= 0 || rtt >= kaTimeout {
				t.Errorf("received keepalive pong record: rtt %v, want > 0 and < PingTimeout %v", rtt, kaTimeout)
			}
		}
		if recs := recordsNamed(t, logs, "timed out waiting for keepalive pong"); len(recs) != 0 {
			t.Errorf("keepalive timed out against a peer that answers: %v", recs)
		}
		if st.PongsReceived < 2 || st.PingTimeouts != 0 {
			t.Errorf("Stats: PingsSent %d PongsReceived %d PingTimeouts %d, want PongsReceived >= 2, no timeout",
				st.PingsSent, st.PongsReceived, st.PingTimeouts)
		}
		if latency <= 0 || latency >= kaTimeout || st.RTT <= 0 {
			t.Errorf("Latency() = %v, Stats.RTT = %v, want > 0 (and below PingTimeout %v)", latency, st.RTT, kaTimeout)
		}
		if st.PingInterval != kaInterval || st.PingTimeout != kaTimeout {
			t.Errorf("Stats: PingInterval %v PingTimeout %v, want %v %v", st.PingInterval, st.PingTimeout, kaInterval, kaTimeout)
		}

		writeRead(t, c, tether.Text, []byte("still alive"))
		closeCleanly(t, c, tether.StatusNormal, "")
		final := c.Stats()

		// The server printed one line per keepalive ping that reached it:
		// at least one per pong the client got, at most one per ping sent.
		var seen int64
		for {
			l := srv.line(t)
			if pingLineRE.MatchString(l) {
				seen++
				continue
			}
			if l != "closed 1000 " {
				t.Fatalf("server printed %q, want ping lines then \"closed 1000 \"", l)
			}
			break
		}
		if seen < final.PongsReceived || seen > final.PingsSent {
			t.Errorf("server saw %d pings; client sent %d and got %d pongs", seen, final.PingsSent, final.PongsReceived)
		}
	})
}

// kaServer is an httptest server whose handler accepts a Tether connection
// with short keepalive settings, blocks in Read until the connection ends,
// and reports how it went.
type kaServer struct {
	url     string // ws://127.0.0.1:PORT
	logs    *syncBuffer
	results chan *kaResult
	wg      sync.WaitGroup // handlers, which httptest stops tracking once they hijack
}

type kaResult struct {
	id       string
	remote   string
	readErr  error         // what the blocked Read returned
	elapsed  time.Duration // from Accept returning to Read returning
	ended    time.Time     // when Read returned
	statsEnd tether.Stats  // right after Read returned
	writeErr error         // a Write after Read returned
	pingErr  error         // a Ping after Read returned
	stats    tether.Stats  // after that Write and Ping
	release  chan struct{} // closing it lets the handler return (and CloseNow)
}

func startKeepaliveServer(t *testing.T) *kaServer {
	t.Helper()
	ks := &kaServer{logs: &syncBuffer{}, results: make(chan *kaResult, 4)}
	dumpLogsOnFailure(t, "tether server", ks.logs)
	ctx, cancel := context.WithCancel(context.Background())
	opts := &tether.AcceptOptions{ConnOptions: keepaliveOptions(ks.logs)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.wg.Add(1)
		defer ks.wg.Done()
		c, err := tether.Accept(w, r, opts)
		if err != nil {
			return
		}
		opened := time.Now()
		defer c.CloseNow()
		res := &kaResult{id: c.ID(), remote: c.RemoteAddr().String(), release: make(chan struct{})}
		_, _, res.readErr = c.Read(ctx)
		res.ended = time.Now()
		res.elapsed = res.ended.Sub(opened)
		res.statsEnd = c.Stats()
		res.writeErr = c.Write(ctx, tether.Text, []byte("late"))
		_, res.pingErr = c.Ping(ctx)
		res.stats = c.Stats()
		select {
		case ks.results <- res:
		case <-ctx.Done():
		}
		// Hold the connection until the test has looked at the wire, so
		// that what the client reads is what the keepalive timeout did on
		// its own, not the deferred CloseNow (see
		// TestKeepaliveCloseFrameBeforeWake for why that matters).
		select {
		case <-res.release:
		case <-ctx.Done():
		}
	}))
	ks.url = "ws" + strings.TrimPrefix(srv.URL, "http")
	t.Cleanup(func() {
		cancel()
		srv.Close()
		if !ks.handlersReturned(lineTimeout) {
			t.Errorf("tether server handlers still running %v after the test", lineTimeout)
		}
	})
	return ks
}

// handlersReturned waits up to d for every handler to return.
func (ks *kaServer) handlersReturned(d time.Duration) bool {
	done := make(chan struct{})
	go func() { ks.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

func (ks *kaServer) result(t *testing.T) *kaResult {
	t.Helper()
	select {
	case r := <-ks.results:
		return r
	case <-time.After(lineTimeout):
		t.Fatalf("tether server: no connection ended within %v", lineTimeout)
		return nil
	}
}

// release lets the handler of res return and checks that it does.
func (ks *kaServer) release(t *testing.T, res *kaResult) {
	t.Helper()
	close(res.release)
	if !ks.handlersReturned(5 * time.Second) {
		t.Errorf("server handler still running 5s after its connection timed out")
	}
}

// check runs the checks common to every silent client: the server's Read
// ended with the keepalive timeout within kaBound of Accept, the log and the
// counters say so, later Writes and Pings fail.
func (ks *kaServer) check(t *testing.T, name string) *kaResult {
	t.Helper()
	res := ks.result(t)
	t.Logf("%s: server Read returned %v after Accept (bound %v)", name, res.elapsed, kaBound)
	checkKeepaliveClose(t, "server Read", res.readErr)
	if res.elapsed > kaBound {
		t.Errorf("server Read returned the keepalive timeout %v after Accept, want at most PingInterval + PingTimeout + 100ms = %v",
			res.elapsed, kaBound)
	}
	checkTimeoutStats(t, res.statsEnd, res.ended)
	checkTimeoutLogged(t, ks.logs, res.id, "server", res.remote)
	checkUseAfterTimeout(t, "server", res.writeErr, res.pingErr)
	return res
}

// rawHandshake opens a WebSocket connection by hand: it sends the opening
// handshake to wsURL+path and reads the 101 response, and nothing more.
func rawHandshake(t *testing.T, wsURL, path string) (net.Conn, *bufio.Reader) {
	t.Helper()
	host := strings.TrimPrefix(wsURL, "ws://")
	nc, err := net.DialTimeout("tcp", host, lineTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	var k [16]byte
	rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	nc.SetDeadline(time.Now().Add(lineTimeout))
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatalf("raw client: write handshake: %v", err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		t.Fatalf("raw client: read handshake response: %v", err)
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Fatalf("raw client: handshake response %s %v", resp.Status, resp.Header)
	}
	nc.SetDeadline(time.Time{})
	return nc, br
}

// rawFrame is a frame as the raw client reads it.
type rawFrame struct {
	fin     bool
	op      byte
	payload []byte
}

// readFrame reads one unmasked frame (a server's); io.EOF means the
// connection ended cleanly between frames.
func readFrame(br *bufio.Reader) (rawFrame, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return rawFrame{}, err
	}
	f := rawFrame{fin: h[0]&0x80 != 0, op: h[0] & 0x0f}
	if h[0]&0x70 != 0 || h[1]&0x80 != 0 {
		return f, fmt.Errorf("bad frame header % x: RSV bits set or masked (a server's frames are not)", h)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > mib {
		return f, fmt.Errorf("frame of %d bytes", n)
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(br, f.payload); err != nil {
		return f, err
	}
	return f, nil
}

// TestKeepaliveServerSilentClient: a client that completes the handshake and
// then never reads again never answers the Tether server's pings. The
// server's Read returns 1011 "keepalive ping timeout" within PingInterval +
// PingTimeout + 100 ms of Accept, and its handler then returns (goleak in
// TestMain checks that nothing of the connection outlives it).
//
//   - raw: a TCP client written here. Once the server has given up, it reads
//     what was sent: the keepalive ping(s), then a close frame 1011
//     "keepalive ping timeout", then EOF at once (the server dropped TCP
//     without waiting for a close frame that was never going to come).
//   - python, node: the peer client in stall mode (it pauses reading its
//     socket right after the handshake).
func TestKeepaliveServerSilentClient(t *testing.T) {
	t.Run("raw", func(t *testing.T) {
		t.Parallel()
		ks := startKeepaliveServer(t)
		nc, br := rawHandshake(t, ks.url, "/raw")
		res := ks.check(t, "raw")
		if local := nc.LocalAddr().String(); res.remote != local {
			t.Errorf("server connection's RemoteAddr %s, want the raw client's address %s", res.remote, local)
		}

		// Only now does the client read.
		nc.SetReadDeadline(time.Now().Add(lineTimeout))
		var pings int64
		for {
			f, err := readFrame(br)
			if err != nil {
				t.Fatalf("raw client: after %d pings: %v, want a close frame", pings, err)
			}
			if f.op == 0x9 { // ping
				if !f.fin || len(f.payload) != 4 {
					t.Errorf("raw client: ping frame fin %t with %d bytes of payload, want a final frame with 4", f.fin, len(f.payload))
				}
				pings++
				continue
			}
			if f.op != 0x8 {
				t.Fatalf("raw client: frame with opcode %#x, want ping or close", f.op)
			}
			if !f.fin || len(f.payload) < 2 {
				t.Fatalf("raw client: close frame fin %t payload % x", f.fin, f.payload)
			}
			code, reason := binary.BigEndian.Uint16(f.payload), string(f.payload[2:])
			if code != 1011 || reason != "keepalive ping timeout" {
				t.Errorf("raw client: close frame %d %q, want 1011 \"keepalive ping timeout\"", code, reason)
			}
			break
		}
		if pings < 1 || pings != res.statsEnd.PingsSent {
			t.Errorf("raw client read %d ping frames before the close frame; the server sent %d, want the same and at least 1",
				pings, res.statsEnd.PingsSent)
		}
		// The server dropped TCP right after the close frame: EOF comes now,
		// not after CloseTimeout (5 s).
		nc.SetReadDeadline(time.Now().Add(time.Second))
		if f, err := readFrame(br); err != io.EOF {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("raw client: the server kept TCP open after its keepalive close frame, want it dropped at once")
			}
			t.Fatalf("raw client: after the close frame: frame %+v, error %v, want EOF", f, err)
		}
		ks.release(t, res)
	})
	for _, p := range peers {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			requirePeer(t, p)
			ks := startKeepaliveServer(t)
			cl := startPeerClient(t, p, "", ks.url+"/stall", "stall")
			cl.expect(t, "stalled")
			ks.release(t, ks.check(t, p.name))
		})
	}
}

// TestKeepalivePingAfterTimeoutNotCounted: a Ping on a connection the
// keepalive timeout has closed fails at once and puts nothing on the wire,
// so it must not count in Stats.PingsSent nor move Stats.LastPingAt.
//
// Regression test. It failed on every run against the tree as first tested
// (PingsSent 1 -> 2, LastPingAt moved by ~300 ms): Conn.Ping called newPing
// (ping.go), which incremented stats.pingsSent and stored stats.lastPingAt
// before writeControl found the connection closed, and forgetPing dropped
// the ping but not the counts; after a keepalive timeout PingsSent said 2
// while the raw client had read 1 ping frame. It passes since ping.go counts
// a ping only once written (pingWritten) and Ping returns c.err at once on a
// finished connection.
func TestKeepalivePingAfterTimeoutNotCounted(t *testing.T) {
	ks := startKeepaliveServer(t)
	rawHandshake(t, ks.url, "/raw")
	res := ks.result(t)
	defer ks.release(t, res)
	checkKeepaliveClose(t, "server Read", res.readErr)
	checkUseAfterTimeout(t, "server", res.writeErr, res.pingErr)
	before, after := res.statsEnd, res.stats
	if after.PingsSent != before.PingsSent || !after.LastPingAt.Equal(before.LastPingAt) {
		t.Errorf("a Ping that failed on the closed connection changed Stats: PingsSent %d -> %d, LastPingAt %v -> %v; want them unchanged",
			before.PingsSent, after.PingsSent, before.LastPingAt.Format(time.RFC3339Nano), after.LastPingAt.Format(time.RFC3339Nano))
	}
}

// TestKeepaliveCloseFrameBeforeWake: the usual handler, `defer c.CloseNow()`
// around a Read loop, returns as soon as Read reports the keepalive timeout.
// The peer must still get the 1011 "keepalive ping timeout" close frame the
// contract promises, before the TCP connection ends. Twenty silent raw clients
// at once; every one must read a close frame before EOF.
//
// Regression test. It failed on every run against the tree as first tested,
// 2 to 9 of the 20 clients losing the frame (and the raw subtest of
// TestKeepaliveServerSilentClient lost it about 1 run in 8 before its handler
// was made to hold the connection): abort (close.go, called by
// keepaliveExpired) called c.finish first, which closes c.done and so wakes
// Read, Write and Ping, and only then sent the close frame (sendClose). A
// handler returning on the Read error ran CloseNow, which closed the socket
// while abort was still on its way to writing the frame: the write failed
// with "use of closed network connection" and the peer saw a bare FIN
// instead of 1011. The trace of the server's socket, printed for every
// client that lost the frame, shows who closed it. It passes since abort
// sends the close frame before calling finish.
func TestKeepaliveCloseFrameBeforeWake(t *testing.T) {
	const conns = 20
	var wg sync.WaitGroup
	logs := &syncBuffer{}
	dumpLogsOnFailure(t, "tether server", logs)
	opts := &tether.AcceptOptions{ConnOptions: keepaliveOptions(logs)}
	tl := &traceListener{conns: map[string]*traceConn{}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		c, err := tether.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx, cancel := context.WithTimeout(context.Background(), lineTimeout)
		defer cancel()
		for {
			if _, _, err := c.Read(ctx); err != nil {
				return
			}
		}
	}))
	tl.Listener = srv.Listener
	srv.Listener = tl
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		wg.Wait()
	})
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	type outcome struct {
		pings int
		close *tether.CloseFrame
		err   error // what ended the read: io.EOF after a close frame is right
	}
	outcomes := make([]outcome, conns)
	clientAddrs := make([]string, conns)
	var cw sync.WaitGroup
	for i := range conns {
		nc, br := rawHandshake(t, url, "/")
		clientAddrs[i] = nc.LocalAddr().String()
		cw.Add(1)
		go func() {
			defer cw.Done()
			time.Sleep(kaBound + 200*time.Millisecond) // silent until the server gave up
			nc.SetReadDeadline(time.Now().Add(lineTimeout))
			o := &outcomes[i]
			for {
				f, err := readFrame(br)
				if err != nil {
					o.err = err
					return
				}
				switch {
				case f.op == 0x9:
					o.pings++
				case f.op == 0x8 && len(f.payload) >= 2 && o.close == nil:
					o.close = &tether.CloseFrame{Code: tether.StatusCode(binary.BigEndian.Uint16(f.payload)), Reason: string(f.payload[2:])}
				default:
					o.err = fmt.Errorf("unexpected frame %+v", f)
					return
				}
			}
		}()
	}
	cw.Wait()
	lost := 0
	for i, o := range outcomes {
		if o.close == nil {
			lost++
			t.Logf("conn %d: %d pings, then %v without a close frame; the server's socket saw:\n\t%s",
				i, o.pings, o.err, strings.Join(tl.events(clientAddrs[i]), "\n\t"))
			continue
		}
		if o.close.Code != tether.StatusInternalError || o.close.Reason != "keepalive ping timeout" || o.err != io.EOF {
			t.Errorf("conn %d: close frame %+v then %v, want 1011 \"keepalive ping timeout\" then EOF", i, *o.close, o.err)
		}
	}
	if n := len(recordsNamed(t, logs, "timed out waiting for keepalive pong")); n != conns {
		t.Errorf("%d keepalive timeouts logged, want %d", n, conns)
	}
	if lost > 0 {
		t.Errorf("%d of %d silent clients got no close frame: the handler's CloseNow, run as soon as Read returned the keepalive timeout, dropped TCP before the 1011 close frame went out", lost, conns)
	}
}

// traceListener records, for every accepted connection, the writes and the
// Close the server made on its socket, and who called Close.
type traceListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[string]*traceConn // by remote address
}

func (l *traceListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &traceConn{Conn: nc}
	l.mu.Lock()
	l.conns[nc.RemoteAddr().String()] = tc
	l.mu.Unlock()
	return tc, nil
}

func (l *traceListener) events(remote string) []string {
	l.mu.Lock()
	tc := l.conns[remote]
	l.mu.Unlock()
	if tc == nil {
		return nil
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return append([]string(nil), tc.log...)
}

type traceConn struct {
	net.Conn
	mu  sync.Mutex
	log []string
}

func (c *traceConn) add(format string, args ...any) {
	c.mu.Lock()
	c.log = append(c.log, fmt.Sprintf(format, args...))
	c.mu.Unlock()
}

func (c *traceConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	op := "?"
	if len(p) > 0 {
		op = fmt.Sprintf("opcode %#x", p[0]&0x0f)
	}
	c.add("write %d bytes (%s): n=%d err=%v", len(p), op, n, err)
	return n, err
}

func (c *traceConn) Close() error {
	caller := "?"
	if pc, _, _, ok := runtime.Caller(1); ok {
		caller = runtime.FuncForPC(pc).Name()
	}
	err := c.Conn.Close()
	c.add("Close by %s: %v", caller, err)
	return err
}

// TestKeepaliveTimeoutDuringWrites: raw clients read everything the server
// sends but never answer a ping. The server's handler writes small messages
// as fast as it can while its keepalive runs: the data flows, the pongs do
// not, so the connection must still time out (fixed mode pings whatever the
// traffic), and the Write that fails, and the Read after it, must report the
// 1011 "keepalive ping timeout" CloseError, like every other call. Three
// rounds of eight connections, to give the races below a chance.
//
// BUG (against the tree as of 21:15, where abort sends the close frame
// first and calls finish after; it failed in 7 of 20 runs): abort (close.go)
// now runs sendClose before finish, which opens two holes.
//  1. Between sendClose setting closeSent and finish closing done, a Write
//     that gets the frame lock sees closeSent but not done, and closedErr
//     (write.go) returns errCloseSent, "tether: close frame already sent", a
//     plain *errors.errorString: no CloseError, no 1011 (6 of the 7).
//  2. When the peer's receive buffer is full (the very case abort's short
//     deadline is for), the close frame write times out after 100 ms and
//     writeFrame calls writeFailed, whose finish(1006 "write failed") comes
//     before abort's finish(1011): the connection, and every call on it,
//     then reports 1006 "write failed: ... i/o timeout" instead of 1011 (1
//     of the 7, and 3 more times in other runs).
//
// Under heavy load (load average 9 on 2 cores) the keepalive timers here
// fired up to 1.5 s late, so this test logs but does not bound the time.
func TestKeepaliveTimeoutDuringWrites(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprint("round", round+1), keepaliveTimeoutDuringWrites)
	}
}

func keepaliveTimeoutDuringWrites(t *testing.T) {
	const conns = 8
	var wg sync.WaitGroup
	logs := &syncBuffer{}
	dumpLogsOnFailure(t, "tether server", logs)
	opts := &tether.AcceptOptions{ConnOptions: keepaliveOptions(logs)}
	type result struct {
		writes  int
		err     error // what ended the Write loop
		readErr error
		elapsed time.Duration
	}
	results := make(chan result, conns)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		c, err := tether.Accept(w, r, opts)
		if err != nil {
			return
		}
		opened := time.Now()
		defer c.CloseNow()
		ctx, cancel := context.WithTimeout(context.Background(), lineTimeout)
		defer cancel()
		var res result
		for {
			if res.err = c.Write(ctx, tether.Binary, []byte("tick")); res.err != nil {
				break
			}
			res.writes++
		}
		res.elapsed = time.Since(opened)
		_, _, res.readErr = c.Read(ctx)
		results <- res
	}))
	t.Cleanup(func() {
		srv.Close()
		wg.Wait()
	})
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	var cw sync.WaitGroup
	for range conns {
		nc, br := rawHandshake(t, url, "/")
		nc.SetReadDeadline(time.Now().Add(lineTimeout))
		cw.Add(1)
		go func() { // read and drop everything, answer nothing
			defer cw.Done()
			for {
				if _, err := readFrame(br); err != nil {
					return
				}
			}
		}()
	}
	for i := range conns {
		var res result
		select {
		case res = <-results:
		case <-time.After(lineTimeout):
			t.Fatalf("only %d of %d server connections ended within %v", i, conns, lineTimeout)
		}
		t.Logf("conn ended after %v and %d writes: %v", res.elapsed, res.writes, res.err)
		var ce *tether.CloseError
		if !errors.As(res.err, &ce) || ce.Code != tether.StatusInternalError || ce.Reason != "keepalive ping timeout" {
			t.Errorf("the Write that failed when the keepalive timed out returned %v (%T), want the *tether.CloseError 1011 \"keepalive ping timeout\"", res.err, res.err)
		}
		checkCloseError(t, "Read after the failed Write", res.readErr, tether.StatusInternalError, "keepalive ping timeout", "local")
	}
	if n := len(recordsNamed(t, logs, "timed out waiting for keepalive pong")); n != conns {
		t.Errorf("%d keepalive timeouts logged, want %d: the clients answered no ping", n, conns)
	}
	cw.Wait()
}

// TestKeepalivePingContextDoesNotPoisonWrites: a Ping whose context ends
// just after its frame went out must leave the connection healthy: the Ping
// returns the context's error, and the next Write, made with
// context.Background() (no deadline), goes through and is echoed. The test
// cancels the Ping's context from inside the socket's Write, right after the
// ping frame was written, which is the moment a short Ping timeout (as used
// to measure latency) or a cancel from another goroutine can hit by chance.
//
// BUG (fails every run against the tree as tested): writeFrame (write.go)
// registers context.AfterFunc(ctx, func() { c.nc.SetWriteDeadline(aLongTimeAgo) })
// and on return calls stop() and then SetWriteDeadline(time.Time{}). When
// ctx ends while the write is in progress, the AfterFunc has already been
// started in its own goroutine: stop() returns false without waiting for
// it, the reset runs first, and the AfterFunc then leaves a deadline in the
// past on the socket. The next frame written without a deadline of its own
// (a Write with context.Background(), a pong from flushPong, a keepalive
// ping) fails with "i/o timeout" and writeFailed ends the connection with
// 1006 "write failed". (Found because Pings with a 1 ms context killed
// healthy connections within tens of ms.) Fix: when stop() returns false,
// wait for the AfterFunc to have run (e.g. it closes a channel) before
// resetting the deadline.
func TestKeepalivePingContextDoesNotPoisonWrites(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p *peer) {
		srv := startPeerServer(t, p)
		logs := &syncBuffer{}
		dumpLogsOnFailure(t, "tether client", logs)
		var hc *hookConn
		opts := dialOptions(logs) // keepalive off: the only ping is the test's
		opts.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			nc, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			hc = &hookConn{Conn: nc}
			return hc, nil
		}
		c := dial(t, srv.url("/echo"), opts)
		writeRead(t, c, tether.Text, []byte("before"))

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		hc.setHook(func(p []byte) bool {
			if len(p) > 0 && p[0]&0x0f == 0x9 { // the ping frame is on its way
				cancel()
				return true
			}
			return false
		})
		if _, err := c.Ping(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Ping cancelled after its frame was written: %v, want context.Canceled", err)
		}
		srv.expectMatch(t, pingLineRE)    // the peer got the ping
		time.Sleep(20 * time.Millisecond) // whatever the context's AfterFunc does, it has done it
		if err := c.Err(); err != nil {
			t.Fatalf("the connection ended after a Ping was cancelled: %v", err)
		}
		if err := c.Write(context.Background(), tether.Text, []byte("after")); err != nil {
			t.Fatalf("Write with context.Background() after a cancelled Ping: %v, want nil", err)
		}
		checkEcho(t, c, tether.Text, []byte("after"))
		closeCleanly(t, c, tether.StatusNormal, "")
		srv.expect(t, "closed 1000 ")
	})
}

// hookConn is a net.Conn that runs a hook after each successful Write until
// the hook returns true.
type hookConn struct {
	net.Conn
	mu   sync.Mutex
	hook func(p []byte) bool
}

func (c *hookConn) setHook(f func(p []byte) bool) {
	c.mu.Lock()
	c.hook = f
	c.mu.Unlock()
}

func (c *hookConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err == nil {
		c.mu.Lock()
		if c.hook != nil && c.hook(p) {
			c.hook = nil
		}
		c.mu.Unlock()
	}
	return n, err
}
