package tether

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/tetherws/tether/internal/wire"
)

// syncBuffer is a bytes.Buffer safe for the handler's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestLogRecordsLeadWithConnAttrs: a connection's records carry conn,
// role and remote first, after the message, the attributes of the
// application's logger before them, inside its group, and the source of
// the line that logged: as the logger made with With that connections
// once kept, though none is kept now (connLog).
func TestLogRecordsLeadWithConnAttrs(t *testing.T) {
	var buf syncBuffer
	base := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug, AddSource: true}))
	a, b := socketPair(t)
	opts := ConnOptions{PingInterval: -1, Registry: NoRegistry, Logger: base.With("app", "x")}
	sc := newConn(b, nil, wire.Server, opts.config(), "", "/p")
	opts.Logger = base.WithGroup("g")
	cc := newConn(a, nil, wire.Client, opts.config(), "", "ws://loopback/p")
	cc.CloseNow()
	sc.CloseNow()

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := map[string]*regexp.Regexp{
		"server": regexp.MustCompile(`^time=\S+ level=INFO source=\S+/conn\.go:\d+ msg="connection open" app=x conn=` +
			regexp.QuoteMeta(sc.ID()) + ` role=server remote=` + regexp.QuoteMeta(b.RemoteAddr().String()) + ` path=/p local=`),
		"client": regexp.MustCompile(`^time=\S+ level=INFO source=\S+/conn\.go:\d+ msg="connection open" g\.conn=` +
			regexp.QuoteMeta(cc.ID()) + ` g\.role=client g\.remote=` + regexp.QuoteMeta(a.RemoteAddr().String()) + ` g\.url=`),
	}
	for role, re := range want {
		found := false
		for _, l := range lines {
			found = found || re.MatchString(l)
		}
		if !found {
			t.Errorf("no %s open record like %s in:\n%s", role, re, buf.String())
		}
	}
	for _, l := range lines {
		if !strings.Contains(l, "conn=") || !strings.Contains(l, "role=") || !strings.Contains(l, "remote=") {
			t.Errorf("record without conn, role and remote: %s", l)
		}
		if strings.Contains(l, `msg="connection closed"`) && !strings.Contains(l, "/close.go:") {
			t.Errorf("close record not sourced at close.go: %s", l)
		}
	}
}

// TestLogRecordsJSON: in JSON the connection's attributes are plain
// strings, as before.
func TestLogRecordsJSON(t *testing.T) {
	var buf syncBuffer
	a, b := socketPair(t)
	opts := ConnOptions{PingInterval: -1, Registry: NoRegistry, Logger: slog.New(slog.NewJSONHandler(&buf, nil))}
	sc := newConn(b, nil, wire.Server, opts.config(), "", "/")
	sc.CloseNow()
	a.Close()
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["conn"] != sc.ID() || rec["role"] != "server" || rec["remote"] != b.RemoteAddr().String() {
			t.Errorf("record %s: want conn %s, role server, remote %s", l, sc.ID(), b.RemoteAddr())
		}
	}
}
