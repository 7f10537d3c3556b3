package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/spf13/cobra"
	"github.com/tetherws/tether"
	"github.com/tetherws/tether/hub"
	"github.com/tetherws/tether/internal/natstest"
)

// natsServer starts an embedded NATS server with JetStream on a free
// loopback port and stops it when the test ends.
func natsServer(t *testing.T) *server.Server {
	t.Helper()
	return natstest.Start(t, natstest.Options{JetStream: true})
}

// startNode runs `tether serve --nats URL --node NAME [--jetstream]`
// in-process and returns its address and its log.
func startNode(t *testing.T, cl clusterFlags) (string, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	opts := tether.ConnOptions{Logger: slog.New(slog.NewTextHandler(logs, nil)), PingInterval: -1}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := runServeCluster(ctx, "127.0.0.1:0", "", opts, cl, pw)
		pw.Close()
		errc <- err
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("no first line: %v (%v)", err, <-errc)
	}
	go io.Copy(io.Discard, pr)
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("serve %s: %v", cl.node, err)
		}
	})
	return strings.TrimSpace(strings.TrimPrefix(line, "listening on http://")), logs
}

// connections fetches addr's /api/connections.
func connections(t *testing.T, addr, q string) []map[string]any {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/api/connections" + q)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	return list
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServeCluster: two `tether serve --nats` nodes. A message sent on n1's
// /broadcast reaches a client of n2 once, a subscriber of n2 in an envelope;
// each node's dashboard lists both nodes' connections with their node; the
// broker's metrics are on /metrics; the start is logged with node and URL.
func TestServeCluster(t *testing.T) {
	ns := natsServer(t)
	url := ns.ClientURL()
	a, logsA := startNode(t, clusterFlags{nats: url, node: "n1", jetstream: true, history: 100, historyAge: time.Hour})
	b, _ := startNode(t, clusterFlags{nats: url, node: "n2", jetstream: true, history: 100})
	if l := logsA.String(); !strings.Contains(l, "msg=\"cluster mode\" node=n1 nats="+url) {
		t.Errorf("no start line naming the node and URL in:\n%s", l)
	}
	sender := dialBroadcast(t, a, false)
	raw := dialBroadcast(t, b, false)
	sub, _, err := tether.Dial(t.Context(), "ws://"+b+"/broadcast", &tether.DialOptions{Subprotocols: []string{hub.Subprotocol},
		ConnOptions: tether.ConnOptions{Logger: slog.New(slog.DiscardHandler), Registry: tether.NoRegistry}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.CloseNow()

	// Both dashboards list the three connections, each with its node, once
	// the nodes have announced them.
	for _, addr := range []string{a, b} {
		eventually(t, "three connections on "+addr, func() bool {
			nodes := map[string]int{}
			for _, c := range connections(t, addr, "?path=/broadcast") {
				n, _ := c["node"].(string)
				nodes[n]++
			}
			return nodes["n1"] == 1 && nodes["n2"] == 2
		})
	}
	if n := len(connections(t, a, "?node=n2")); n != 2 {
		t.Errorf("n1 lists %d connections of n2, want 2", n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sender.Write(ctx, tether.Text, []byte("across")); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*tether.Conn{"sender": sender, "client on n2": raw} {
		if _, p, err := c.Read(ctx); err != nil || string(p) != "across" {
			t.Fatalf("%s: %q %v", name, p, err)
		}
	}
	_, p, err := sub.Read(ctx)
	if err == nil && strings.Contains(string(p), `"type":"subscribed"`) {
		_, p, err = sub.Read(ctx) // where the subscriber starts: the hub's concern
	}
	if err != nil {
		t.Fatal(err)
	}
	if e, err := hub.ParseEnvelope(p); err != nil || e.Node != "n1" || e.Seq == 0 || string(e.Data) != "across" {
		t.Fatalf("envelope %s: %+v %v", p, e, err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if _, p, err := raw.Read(short); err == nil {
		t.Fatalf("client on n2 got a second message %q", p)
	}

	resp, err := http.Get("http://" + a + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"tether_cluster_connected 1", "tether_cluster_published_total 1", "tether_cluster_nodes 2", "tether_cluster_local_only_total 0"} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestServeClusterFlags: cluster flags that would be ignored are refused.
func TestServeClusterFlags(t *testing.T) {
	for args, want := range map[string]string{
		"--node n1":                                     "--node needs --nats",
		"--jetstream":                                   "--jetstream needs --nats",
		"--nats nats://x --history 5":                   "--history needs --jetstream",
		"--nats nats://x --history-age 1h":              "--history-age needs --jetstream",
		"--nats nats://x --jetstream --history 0":       "--history must be positive",
		"--nats nats://x --jetstream --history-age -1s": "--history-age must not be negative",
	} {
		var cl clusterFlags
		cmd := &cobra.Command{}
		cl.register(cmd)
		if err := cmd.ParseFlags(strings.Fields(args)); err != nil {
			t.Fatal(err)
		}
		if err := cl.check(cmd); err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", args, err, want)
		}
	}
	var cl clusterFlags
	cmd := &cobra.Command{}
	cl.register(cmd)
	cmd.ParseFlags([]string{"--nats", "nats://x", "--jetstream", "--history-age", "0"})
	if err := cl.check(cmd); err != nil {
		t.Fatal(err)
	}
	if o := cl.brokerOptions(nil); o.History != 1000 || o.HistoryAge >= 0 || !o.JetStream {
		t.Errorf("broker options %+v", o)
	}
	if got := redactURLs("nats://u:secret@h:4222, nats://h2:4222,nats://tok@h3"); strings.Contains(got, "secret") || strings.Contains(got, "tok@") {
		t.Errorf("redactURLs: %s", got)
	}
}
