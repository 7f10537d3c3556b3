package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherws/tether"
	"go.uber.org/goleak"
)

// TestMain fails the run if a goroutine (the embedded NATS server's, the
// relays') outlives the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemoCluster builds tether, runs the demo on free ports, and checks
// that a message sent on n1 reaches n3, that stopping NATS leaves each node
// delivering locally (counted in tether_cluster_local_only_total), that a
// restart joins them again, and that Ctrl-C (ctx) stops every node.
func TestDemoCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tether and runs three nodes")
	}
	bin := filepath.Join(t.TempDir(), "tether")
	if out, err := exec.Command("go", "build", "-o", bin, "../../../cmd/tether").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	logs := &syncBuffer{}
	errc := make(chan error, 1)
	go func() {
		err := run(ctx, config{tether: bin, nodes: 3, basePort: 0, natsPort: -1, logLevel: "info"}, inR, outW, logs)
		outW.Close()
		errc <- err
	}()
	defer func() {
		cancel()
		inW.Close()
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
		t.Logf("logs:\n%s", logs.String())
	}()

	out := bufio.NewScanner(outR)
	next := func() string {
		t.Helper()
		if !out.Scan() {
			t.Fatal("output ended")
		}
		return out.Text()
	}
	nodeLine := regexp.MustCompile(`^(n\d)\s+http://(\S+)/ `)
	addrs := map[string]string{}
	for len(addrs) < 3 {
		if m := nodeLine.FindStringSubmatch(next()); m != nil {
			addrs[m[1]] = m[2]
		}
	}
	for !strings.HasPrefix(next(), "Enter stops NATS") {
	}
	lines := make(chan string, 16)
	go func() {
		for out.Scan() {
			lines <- out.Text()
		}
		close(lines)
	}()

	dial := func(node string) *tether.Conn {
		c, _, err := tether.Dial(ctx, "ws://"+addrs[node]+"/broadcast", &tether.DialOptions{FanOut: true,
			ConnOptions: tether.ConnOptions{Registry: tether.NoRegistry, Logger: slog.New(slog.DiscardHandler)}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		return c
	}
	a, c := dial("n1"), dial("n3")
	eventually(t, "n1 to list n3's connection", func() bool {
		return strings.Contains(get(addrs["n1"], "/api/connections?node=n3"), `"node":"n3"`)
	})
	write := func(c *tether.Conn, msg string) {
		t.Helper()
		if err := c.Write(ctx, tether.Text, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(c *tether.Conn, msg string) {
		t.Helper()
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		defer rcancel()
		if _, p, err := c.Read(rctx); err != nil || string(p) != msg {
			t.Fatalf("read %q: %q %v", msg, p, err)
		}
	}
	write(a, "one")
	expect(c, "one")
	expect(a, "one") // the sender's own copy

	// NATS down: n1 delivers to its own only, and counts it.
	inW.Write([]byte("\n"))
	waitLine(t, lines, "NATS stopped")
	eventually(t, "n1 to notice", func() bool {
		return strings.Contains(get(addrs["n1"], "/metrics"), "tether_cluster_connected 0\n")
	})
	write(a, "alone")
	expect(a, "alone")
	if m := get(addrs["n1"], "/metrics"); !strings.Contains(m, "tether_cluster_local_only_total 1\n") {
		t.Errorf("local-only broadcast not counted:\n%s", grep(m, "tether_cluster_"))
	}

	// NATS back: the cluster again.
	inW.Write([]byte("\n"))
	waitLine(t, lines, "NATS running again")
	eventually(t, "n1 and n3 to reconnect", func() bool {
		return strings.Contains(get(addrs["n1"], "/metrics"), "tether_cluster_connected 1\n") &&
			strings.Contains(get(addrs["n3"], "/metrics"), "tether_cluster_connected 1\n")
	})
	eventually(t, "a broadcast across again", func() bool {
		if err := a.Write(ctx, tether.Text, []byte("again")); err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		defer rcancel()
		for {
			_, p, err := c.Read(rctx)
			if err != nil {
				return false
			}
			if string(p) == "again" {
				return true
			}
		}
	})
}

func waitLine(t *testing.T, lines <-chan string, prefix string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("output ended before %q", prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return
			}
		case <-timeout:
			t.Fatalf("no line %q", prefix)
		}
	}
}

func get(addr, path string) string {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// grep returns the lines of s that contain sub.
func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
