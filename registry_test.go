package tether

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// registryServer starts an echo server whose connections register in reg.
func registryServer(t *testing.T, reg *Registry) string {
	t.Helper()
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1) // before the hijack, so srv.Close waits for this Add
		defer wg.Done()
		c, err := Accept(w, r, &AcceptOptions{ConnOptions: ConnOptions{Registry: reg, PingInterval: -1, Logger: discard}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, p, err := c.Read(context.Background())
			if err != nil {
				return
			}
			c.Write(context.Background(), typ, p)
		}
	}))
	t.Cleanup(func() {
		srv.Close()
		wg.Wait()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

var discard = slog.New(slog.DiscardHandler)

// TestRegistryChurn opens and closes many connections concurrently; the
// count returns to zero (goroutines are checked by TestMain).
func TestRegistryChurn(t *testing.T) {
	reg := NewRegistry()
	u := registryServer(t, reg)
	n, workers := 2000, 16
	if raceEnabled {
		n = 300
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	for range workers {
		wg.Go(func() {
			for range next {
				c, _, err := Dial(context.Background(), u, &DialOptions{FanOut: true,
					ConnOptions: ConnOptions{Registry: reg, PingInterval: -1, Logger: discard}})
				if err != nil {
					errs <- err
					continue
				}
				if err := c.Write(context.Background(), Text, []byte("hi")); err != nil {
					errs <- err
				}
				c.Read(context.Background())
				c.Close(StatusNormal, "")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	eventually(t, "registry empty", func() bool { return reg.Len() == 0 })
	count := 0
	reg.Range(func(ConnInfo) bool { count++; return true })
	if count != 0 {
		t.Fatalf("Range lists %d connections after churn", count)
	}
}

// TestRegistryDuplicateWarning is the report's situation: one process dials
// the same URL twice with 20 s and 5 s intervals. Exactly one warning names
// both IDs, both intervals and both call sites.
func TestRegistryDuplicateWarning(t *testing.T) {
	reg := NewRegistry()
	var logs bytes.Buffer
	var mu sync.Mutex
	reg.Logger = slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logs}, nil))
	u := registryServer(t, NewRegistry())
	ctx := context.Background()
	_, file, line, _ := runtime.Caller(0)
	a, _, err := Dial(ctx, u+"/feed", &DialOptions{ConnOptions: ConnOptions{Registry: reg, PingInterval: 20 * time.Second, Logger: discard}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.CloseNow()
	b, _, err := Dial(ctx, u+"/feed", &DialOptions{ConnOptions: ConnOptions{Registry: reg, PingInterval: 5 * time.Second, Logger: discard}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.CloseNow()

	mu.Lock()
	out := logs.String()
	mu.Unlock()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 {
		t.Fatalf("want exactly one warning, got %d:\n%s", len(lines), out)
	}
	var rec struct {
		Level     string   `json:"level"`
		Endpoint  string   `json:"endpoint"`
		Conns     []string `json:"conns"`
		Intervals []string `json:"ping_intervals"`
		Sites     []string `json:"call_sites"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	siteA := fmt.Sprintf("%s:%d", shortFile(file), line+1)
	siteB := fmt.Sprintf("%s:%d", shortFile(file), line+6)
	if rec.Level != "WARN" || !strings.HasSuffix(rec.Endpoint, "/feed") ||
		fmt.Sprint(rec.Conns) != fmt.Sprint([]string{a.ID(), b.ID()}) ||
		fmt.Sprint(rec.Intervals) != "[20s 5s]" ||
		fmt.Sprint(rec.Sites) != fmt.Sprint([]string{siteA, siteB}) {
		t.Fatalf("warning %+v\nwant conns [%s %s], intervals [20s 5s], sites [%s %s]", rec, a.ID(), b.ID(), siteA, siteB)
	}
	// Deliberate fan-out with one configuration is quiet.
	c, _, err := Dial(ctx, u+"/other", &DialOptions{FanOut: true, ConnOptions: ConnOptions{Registry: reg, Logger: discard}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	d, _, err := Dial(ctx, u+"/other", &DialOptions{FanOut: true, ConnOptions: ConnOptions{Registry: reg, Logger: discard}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.CloseNow()
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(strings.TrimSpace(logs.String()), "\n") + 1; n != 1 {
		t.Fatalf("fan-out warned: %s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestRegistrySnapshotAndEvents checks Get, the Contract 2 JSON and the
// open, ping, pong and close events.
func TestRegistrySnapshotAndEvents(t *testing.T) {
	reg := NewRegistry()
	sub := reg.Subscribe(64)
	defer sub.Close()
	u := registryServer(t, NewRegistry())
	c, _, err := Dial(context.Background(), u+"/x", &DialOptions{ConnOptions: ConnOptions{Registry: reg, PingInterval: -1, Logger: discard}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	info, ok := reg.Get(c.ID())
	if !ok || info.Role != "client" || info.State != "open" || info.RTTms == nil || info.PingsSent != 1 {
		t.Fatalf("Get = %+v, %v", info, ok)
	}
	b, _ := json.Marshal(info)
	var m map[string]any
	json.Unmarshal(b, &m)
	for _, k := range []string{"id", "role", "remote", "local", "path", "state", "opened_at", "ping_interval",
		"ping_timeout", "last_ping_at", "last_pong_at", "rtt_ms", "messages_in", "messages_out", "bytes_in", "bytes_out"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}
	if _, err := time.Parse(time.RFC3339, m["opened_at"].(string)); err != nil {
		t.Errorf("opened_at not RFC 3339: %v", m["opened_at"])
	}
	c.Close(StatusNormal, "")
	if reg.Len() != 0 {
		t.Fatalf("Len after close = %d", reg.Len())
	}
	if _, ok := reg.Get(c.ID()); ok {
		t.Fatal("closed connection still listed")
	}
	var kinds []string
	for len(sub.C) > 0 {
		e := <-sub.C
		if e.ConnID != c.ID() {
			t.Fatalf("event for another connection: %+v", e)
		}
		kinds = append(kinds, e.Kind.String())
	}
	if fmt.Sprint(kinds) != "[open close]" {
		t.Fatalf("events %v, want [open close] (user pings are not keepalive events)", kinds)
	}
}

// TestSubscriptionSlowLosesAndCounts: a subscriber that does not read loses
// events instead of blocking connections, and is told how many.
func TestSubscriptionSlowLosesAndCounts(t *testing.T) {
	reg := NewRegistry()
	sub := reg.Subscribe(1)
	defer sub.Close()
	for i := range 5 {
		reg.publish(Event{Kind: EventPing, ConnID: fmt.Sprint(i)})
	}
	if got := sub.Dropped(); got != 4 {
		t.Fatalf("Dropped = %d, want 4", got)
	}
	<-sub.C
	reg.publish(Event{Kind: EventPong, ConnID: "x"})
	if e := <-sub.C; e.Dropped != 4 || e.ConnID != "x" {
		t.Fatalf("next event %+v, want Dropped 4", e)
	}
}

// TestLeakDetected drops a Conn without Close: the registry-independent
// cleanup logs "connection leaked" with the dial line and frees the socket.
func TestLeakDetected(t *testing.T) {
	u := registryServer(t, NewRegistry())
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logs}, nil))
	reg := NewRegistry()
	line := leakOne(t, u, reg, logger)
	eventually(t, "leak record", func() bool {
		runtime.GC()
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(logs.String(), "connection leaked")
	})
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	_, file, _, _ := runtime.Caller(0)
	want := fmt.Sprintf("%s:%d", shortFile(file), line)
	if !strings.Contains(out, want) {
		t.Fatalf("leak record does not name %s:\n%s", want, out)
	}
	eventually(t, "leaked connection unregistered", func() bool { return reg.Len() == 0 })
}

// leakOne dials and forgets the connection; it returns the dial's line.
//
//go:noinline
func leakOne(t *testing.T, u string, reg *Registry, logger *slog.Logger) int {
	_, _, line, _ := runtime.Caller(0)
	c, _, err := Dial(context.Background(), u, &DialOptions{ConnOptions: ConnOptions{Registry: reg, PingInterval: -1, Logger: logger}})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.ID()
	return line + 1
}
