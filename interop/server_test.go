package interop

// Peer client -> Tether server.

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/tetherws/tether"
)

// TestServerEcho: a peer client's text, binary, empty and 1 MiB messages
// reach the Tether server intact (the handler hashes what it read) and come
// back intact (the client hashes what it got); the client's 1000 "bye" ends
// the server's Read with a CloseError from the peer.
func TestServerEcho(t *testing.T) {
	input := strings.Join([]string{
		`{"type":"text","data":"héllo wörld"}`,
		`{"type":"binary","data":"AAEC/w=="}`,
		`{"type":"text","data":""}`,
		`{"type":"binary","data":""}`,
		`{"type":"text","size":1048576}`,
		`{"type":"binary","size":1048576}`,
	}, "\n") + "\n"
	x := bytes.Repeat([]byte("x"), mib)
	want := []string{
		recvLine(tether.Text, []byte("héllo wörld")),
		recvLine(tether.Binary, []byte{0x00, 0x01, 0x02, 0xff}),
		recvLine(tether.Text, nil),
		recvLine(tether.Binary, nil),
		recvLine(tether.Text, x),
		recvLine(tether.Binary, x),
	}
	forEachPeer(t, func(t *testing.T, p *peer) {
		ts := startTetherServer(t)
		cl := startPeerClient(t, p, input, ts.url+"/echo", "echo")
		for _, w := range want {
			cl.expect(t, w)
		}
		cl.expect(t, "closed 1000 bye")
		cl.expectExit(t)

		res := ts.result(t)
		if strings.Join(res.msgs, "\n") != strings.Join(want, "\n") {
			t.Errorf("server received:\n%s\nwant:\n%s", strings.Join(res.msgs, "\n"), strings.Join(want, "\n"))
		}
		if res.writeErr != nil {
			t.Errorf("server echo Write: %v", res.writeErr)
		}
		ce := checkCloseError(t, "server Read", res.readErr, 1000, "bye", "peer")
		checkFrame(t, "CloseError.Rcvd", ce.Rcvd, 1000, "bye")
		checkFrame(t, "CloseError.Sent", ce.Sent, 1000, "bye")
	})
}

// TestServerAnswersClientPing: the peer client's ping "abc" gets its pong
// from the Tether server, which logs "received ping" at debug level with the
// connection's conn, role and remote attributes.
func TestServerAnswersClientPing(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p *peer) {
		ts := startTetherServer(t)
		cl := startPeerClient(t, p, "", ts.url+"/echo", "ping")
		cl.expect(t, "pong 616263")
		cl.expect(t, "closed 1000 ")
		cl.expectExit(t)

		res := ts.result(t)
		checkCloseError(t, "server Read", res.readErr, 1000, "", "peer")
		var pings []map[string]any
		for _, r := range logRecords(t, ts.logs) {
			if r["msg"] == "received ping" {
				pings = append(pings, r)
			}
		}
		if len(pings) != 1 {
			t.Fatalf("%d \"received ping\" records, want 1: %v", len(pings), pings)
		}
		r := pings[0]
		if r["level"] != "DEBUG" || r["payload"] != "61 62 63" {
			t.Errorf("received ping record: %v, want level DEBUG and payload \"61 62 63\"", r)
		}
		if conn, _ := r["conn"].(string); conn == "" || conn != res.id {
			t.Errorf("received ping record: conn %q, want the connection ID %q", r["conn"], res.id)
		}
		if r["role"] != "server" || r["remote"] != res.remote {
			t.Errorf("received ping record: role %v remote %v, want server %s", r["role"], r["remote"], res.remote)
		}
	})
}

// TestServerPeerCloses: the peer client closes with 4000 "done"; the server's
// Read returns a CloseError with that code and reason, initiated by the peer.
func TestServerPeerCloses(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p *peer) {
		ts := startTetherServer(t)
		cl := startPeerClient(t, p, "", ts.url+"/echo", "close", "4000", "done")
		cl.expect(t, "closed 4000 done")
		cl.expectExit(t)

		res := ts.result(t)
		ce := checkCloseError(t, "server Read", res.readErr, 4000, "done", "peer")
		checkFrame(t, "CloseError.Rcvd", ce.Rcvd, 4000, "done")
		checkFrame(t, "CloseError.Sent", ce.Sent, 4000, "done")
	})
}

// TestServerCloses: the Tether server closes with 1001 "going away"; the peer
// client reports exactly that, and Close returns nil as the peer answered.
func TestServerCloses(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p *peer) {
		ts := startTetherServer(t)
		cl := startPeerClient(t, p, "", ts.url+"/close", "recv")
		cl.expect(t, "closed 1001 going away")
		cl.expectExit(t)

		res := ts.result(t)
		if res.closeErr != nil {
			t.Errorf("server Close(1001, \"going away\") = %v, want nil", res.closeErr)
		}
		ce := checkCloseError(t, "server Read after Close", res.readErr, 1001, "going away", "local")
		checkFrame(t, "CloseError.Rcvd", ce.Rcvd, 1001, "going away")
	})
}

var pingLineRE = regexp.MustCompile(`^ping [0-9a-f]{8}$`)

// TestServerPingsClient: Conn.Ping from the Tether server is answered by the
// peer client (which prints the 4-byte payload); rtt > 0; then a clean 1000.
func TestServerPingsClient(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p *peer) {
		ts := startTetherServer(t)
		cl := startPeerClient(t, p, "", ts.url+"/ping", "recv")
		cl.expectMatch(t, pingLineRE)
		cl.expect(t, "closed 1000 ")
		cl.expectExit(t)

		res := ts.result(t)
		if res.pingErr != nil || res.rtt <= 0 {
			t.Errorf("server Ping = %v, %v; want rtt > 0, nil", res.rtt, res.pingErr)
		}
		if res.closeErr != nil {
			t.Errorf("server Close(1000, \"\") = %v, want nil", res.closeErr)
		}
		checkCloseError(t, "server Read after Close", res.readErr, 1000, "", "local")
	})
}
