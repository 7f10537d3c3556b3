package interop

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tetherws/tether"
	"github.com/tetherws/tether/tethertest"
)

// nodePeer is Node's ws, the peer with a stream adapter of its own
// (createWebSocketStream) to hold NetConn against.
func nodePeer(t *testing.T) *peer {
	t.Helper()
	for _, p := range peers {
		if p.name == "node" {
			requirePeer(t, p) // fails, not skips, when CI is set
			return p
		}
	}
	t.Fatal("no node peer")
	return nil
}

type jsonValue struct {
	N    int      `json:"n"`
	S    string   `json:"s"`
	List []string `json:"list"`
}

type jsonReply struct {
	Echo jsonValue `json:"echo"`
	From string    `json:"from"`
}

// TestNodeJSON: WriteJSON's message is JSON to Node's JSON.parse, and
// ReadJSON decodes what JSON.stringify answers, non-ASCII text included.
func TestNodeJSON(t *testing.T) {
	p := nodePeer(t)
	srv := startPeerServer(t, p)
	logs := &syncBuffer{}
	dumpLogsOnFailure(t, "tether client", logs)
	c := dial(t, srv.url("/json"), dialOptions(logs))
	ctx := testContext(t)
	sent := jsonValue{N: 42, S: "héllo wörld \u2603", List: []string{"a", "\"quoted\""}}
	for i := range 3 {
		sent.N = 42 + i
		if err := tether.WriteJSON(ctx, c, sent); err != nil {
			t.Fatal(err)
		}
		var got jsonReply
		if err := tether.ReadJSON(ctx, c, &got); err != nil {
			t.Fatal(err)
		}
		if got.From != "node" || got.Echo.N != sent.N || got.Echo.S != sent.S || strings.Join(got.Echo.List, ",") != strings.Join(sent.List, ",") {
			t.Fatalf("node answered %+v to %+v", got, sent)
		}
	}
	if err := c.Close(tether.StatusNormal, "bye"); err != nil {
		t.Fatal(err)
	}
	srv.expect(t, "closed 1000 bye")
}

// TestNodeNetConn: NetConn's byte stream and ws's createWebSocketStream
// agree: lines written in pieces that cut them anywhere come back whole,
// upper-cased, and Close ends both ends cleanly.
func TestNodeNetConn(t *testing.T) {
	p := nodePeer(t)
	srv := startPeerServer(t, p)
	logs := &syncBuffer{}
	dumpLogsOnFailure(t, "tether client", logs)
	c := dial(t, srv.url("/stream"), dialOptions(logs))
	nc := tether.NetConn(testContext(t), c, tether.Binary)
	for _, piece := range []string{"hel", "lo\nwor", "ld\n", "tunnelled ", "through ws\n"} {
		if _, err := nc.Write([]byte(piece)); err != nil {
			t.Fatal(err)
		}
	}
	br := bufio.NewReader(nc)
	for _, want := range []string{"HELLO\n", "WORLD\n", "TUNNELLED THROUGH WS\n"} {
		line, err := br.ReadString('\n')
		if err != nil || line != want {
			t.Fatalf("read %q %v, want %q", line, err, want)
		}
	}
	if err := nc.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	srv.expect(t, "closed 1000 ")
}

// TestNodeClientJSONAndNetConn: the other direction, a Tether server and a
// Node client: ReadJSON decodes what the client sends, WriteJSON's answer
// reaches it byte for byte, and a NetConn echo returns its binary messages.
func TestNodeClientJSONAndNetConn(t *testing.T) {
	p := nodePeer(t)
	ts := tethertest.NewServer(t, &tether.AcceptOptions{ConnOptions: tether.ConnOptions{PingInterval: -1}},
		func(c *tether.Conn, r *http.Request) {
			defer c.CloseNow()
			if r.URL.Path == "/stream" {
				nc := tether.NetConn(r.Context(), c, tether.Binary)
				io.Copy(nc, nc)
				return
			}
			for {
				var v jsonValue
				if err := tether.ReadJSON(r.Context(), c, &v); err != nil {
					return
				}
				if err := tether.WriteJSON(r.Context(), c, jsonReply{Echo: v, From: "tether"}); err != nil {
					return
				}
			}
		})
	sent := jsonValue{N: 7, S: "snow \u2603", List: []string{"x"}}
	in, _ := json.Marshal(map[string]string{"type": "text", "data": mustJSON(t, sent)})
	cl := startPeerClient(t, p, string(in)+"\n", ts.URL+"/json", "echo")
	cl.expect(t, recvLine(tether.Text, []byte(mustJSON(t, jsonReply{Echo: sent, From: "tether"}))))
	cl.expect(t, "closed 1000 bye")
	cl.expectExit(t)

	data := []byte{0, 1, 2, 0xff, 'x'}
	cl = startPeerClient(t, p, `{"type":"binary","data":"AAEC/3g="}`+"\n", ts.URL+"/stream", "echo")
	cl.expect(t, recvLine(tether.Binary, data))
	cl.expect(t, "closed 1000 bye")
	cl.expectExit(t)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	p, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(p)
}
