package dashboard

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/tetherws/tether"
)

// scrape fetches /metrics and parses it with Prometheus's own text parser.
func (r *rig) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	code, b := r.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, b)
	}
	return fams
}

// value sums the samples of a family whose labels include want.
func value(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	sum := 0.0
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		ok := true
		for i := 0; i+1 < len(want); i += 2 {
			ok = ok && labels[want[i]] == want[i+1]
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

func TestMetricsMove(t *testing.T) {
	r := newRig(t, Options{}, 30*time.Millisecond)
	before := r.scrape(t)
	if v := value(before, "tether_open_connections"); v != -1 {
		t.Errorf("open connections before any: %v", v)
	}
	c := r.dial(t, -1)
	ctx := t.Context()
	for range 3 {
		if err := c.Write(ctx, tether.Binary, make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Read(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var fams map[string]*dto.MetricFamily
	waitFor(t, "two pongs in the metrics", func() bool {
		fams = r.scrape(t)
		return value(fams, "tether_pongs_received_total", "role", "server") >= 2
	})
	for name, want := range map[string]float64{
		"tether_received_messages_total": 3, "tether_sent_messages_total": 3,
		"tether_received_bytes_total": 300, "tether_sent_bytes_total": 300,
		"tether_keepalive_timeouts_total": 0,
	} {
		if got := value(fams, name, "role", "server"); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if v := value(fams, "tether_open_connections", "role", "server", "path", "/echo"); v != 1 {
		t.Errorf("open connections = %v, want 1", v)
	}
	if v := value(fams, "tether_keepalive_rtt_seconds", "role", "server"); v < 1 {
		t.Errorf("rtt histogram has %v samples", v)
	}
	pings := value(fams, "tether_pings_sent_total", "role", "server")
	if pings < 2 {
		t.Errorf("pings sent = %v", pings)
	}

	// Closing moves the connection's counts to the closed totals: nothing
	// goes back, and the close is counted by code.
	c.Close(tether.StatusNormal, "bye")
	waitFor(t, "the close in the metrics", func() bool {
		fams = r.scrape(t)
		return value(fams, "tether_connection_closes_total", "code", "1000") == 1
	})
	if v := value(fams, "tether_open_connections"); v != -1 {
		t.Errorf("open connections after close: %v", v)
	}
	if got := value(fams, "tether_received_bytes_total", "role", "server"); got != 300 {
		t.Errorf("received bytes after close = %v, want 300", got)
	}
	if got := value(fams, "tether_pings_sent_total", "role", "server"); got < pings {
		t.Errorf("pings sent went back from %v to %v", pings, got)
	}
}

func TestMetricsHooks(t *testing.T) {
	r := newRig(t, Options{}, 0)
	m := r.dash.Metrics()
	m.HandshakeFailed("origin")
	m.HandshakeFailed("origin")
	m.HubDropped("lobby", 5)
	m.HubDropped("lobby", 0)
	var nilMetrics *Metrics
	nilMetrics.HandshakeFailed("x") // no panic
	fams := r.scrape(t)
	if v := value(fams, "tether_handshake_failures_total", "reason", "origin"); v != 2 {
		t.Errorf("handshake failures = %v, want 2", v)
	}
	if v := value(fams, "tether_hub_dropped_messages_total", "room", "lobby"); v != 5 {
		t.Errorf("hub drops = %v, want 5", v)
	}
	for name, f := range fams {
		if f.GetType() == dto.MetricType_COUNTER && strings.HasPrefix(name, "tether_") && !strings.HasSuffix(name, "_total") {
			t.Errorf("counter %s lacks _total", name)
		}
	}
}

func TestPathLabel(t *testing.T) {
	for in, want := range map[string]string{
		"/echo":                           "/echo",
		"/echo?user=42":                   "/echo",
		"ws://u:p@example.com/feed?x=1#y": "ws://example.com/feed",
	} {
		if got := pathLabel(in); got != want {
			t.Errorf("pathLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHandshakeReason(t *testing.T) {
	for err, want := range map[error]string{
		&tether.HandshakeError{StatusCode: 403}: "origin",
		&tether.HandshakeError{StatusCode: 400}: "bad_request",
		&tether.HandshakeError{StatusCode: 426}: "version",
		io.EOF:                                  "other",
	} {
		if got := HandshakeReason(err); got != want {
			t.Errorf("HandshakeReason(%v) = %q, want %q", err, got, want)
		}
	}
}

// TestMetricsPeerPingsAndFindings: the peers' pings are counted by role and
// stay counted after a close; the interval-mismatch finding is a gauge of
// 1, the findings that are not there are 0.
func TestMetricsPeerPingsAndFindings(t *testing.T) {
	r, fc := newPeerRig(t)
	_, clients := threeClients(t, r, fc)
	var fams map[string]*dto.MetricFamily
	waitFor(t, "the finding in the metrics", func() bool {
		fams = r.scrape(t)
		return value(fams, "tether_findings", "kind", tether.FindingIntervalMismatch, "severity", "warning") == 1
	})
	if v := value(fams, "tether_findings", "kind", tether.FindingDuplicate); v != 0 {
		t.Errorf("duplicate-connection findings = %v, want 0", v)
	}
	if v := value(fams, "tether_peer_pings_total", "role", "server"); v != 9 {
		t.Errorf("peer pings = %v, want 9", v)
	}
	for _, c := range clients {
		c.CloseNow()
	}
	waitFor(t, "the closes", func() bool {
		fams = r.scrape(t)
		return value(fams, "tether_open_connections") == -1
	})
	if v := value(fams, "tether_peer_pings_total", "role", "server"); v != 9 {
		t.Errorf("peer pings after close = %v, want 9", v)
	}
	// Findings may be a tick old.
	waitFor(t, "the finding to go", func() bool {
		return value(r.scrape(t), "tether_findings", "kind", tether.FindingIntervalMismatch) == 0
	})
}

// TestMetricsNotReading: a server application that stops reading while its
// client sends more than ReadAhead stalls the connection; keepalive's pong
// waits behind the data, so the stall is counted, the connection shows as
// not reading (gauge, finding, read_stalled_since, a stall event), until
// the application reads again (a resume event with the stall's length).
func TestMetricsNotReading(t *testing.T) {
	r := newRig(t, Options{}, 0)
	release := make(chan struct{})
	var read atomic.Int64
	r.mux.HandleFunc("/stall", func(w http.ResponseWriter, req *http.Request) {
		c, err := tether.Accept(w, req, &tether.AcceptOptions{ConnOptions: tether.ConnOptions{Registry: r.reg, Logger: quiet,
			PingInterval: 20 * time.Millisecond, PingTimeout: 50 * time.Millisecond, ReadAhead: 1024}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		select {
		case <-release:
		case <-c.Done():
			return
		}
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
			read.Add(1)
		}
	})
	c := r.dialPath(t, "/stall", tether.ConnOptions{Registry: tether.NoRegistry, PingInterval: -1})
	id := r.serverID(t, c)
	for range 8 {
		if err := c.Write(t.Context(), tether.Binary, make([]byte, 1024)); err != nil {
			t.Fatal(err)
		}
	}
	var fams map[string]*dto.MetricFamily
	waitFor(t, "the stall in the metrics", func() bool {
		fams = r.scrape(t)
		return value(fams, "tether_read_stalls_total", "role", "server") == 1
	})
	if v := value(fams, "tether_not_reading_connections", "role", "server"); v != 1 {
		t.Errorf("not reading = %v, want 1", v)
	}
	waitFor(t, "the not-reading finding", func() bool {
		return value(r.scrape(t), "tether_findings", "kind", tether.FindingNotReading) == 1
	})
	if d, _ := r.detail(t, id); d.ReadStalledSince == nil || d.kinds()["stall"] != 1 {
		t.Errorf("read_stalled_since %v, history %v", d.ReadStalledSince, d.kinds())
	}

	close(release)
	// Every message read: until then the connection may stop again on its
	// 1 KiB read-ahead, briefly, as the application catches up.
	waitFor(t, "the resume", func() bool {
		d, _ := r.detail(t, id)
		return read.Load() == 8 && d.kinds()["resume"] == 1 && d.ReadStalledSince == nil
	})
	d, _ := r.detail(t, id)
	for _, e := range d.History {
		if e.Kind == "resume" && (e.Interval == nil || *e.Interval <= 0) {
			t.Errorf("resume without the stall's length: %+v", e)
		}
	}
	fams = r.scrape(t)
	if v := value(fams, "tether_not_reading_connections", "role", "server"); v != 0 {
		t.Errorf("not reading after the resume = %v, want 0", v)
	}
	if v := value(fams, "tether_read_stalls_total", "role", "server"); v != 1 {
		t.Errorf("read stalls after the resume = %v, want 1", v)
	}
}

// TestMetricsDiscarded: messages a write-only connection drops are counted,
// and stay counted once it closes.
func TestMetricsDiscarded(t *testing.T) {
	r := newRig(t, Options{}, 0)
	r.mux.HandleFunc("/discard", func(w http.ResponseWriter, req *http.Request) {
		c, err := tether.Accept(w, req, &tether.AcceptOptions{ConnOptions: tether.ConnOptions{Registry: r.reg, Logger: quiet}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		if c.DiscardMessages() == nil {
			<-c.Done()
		}
	})
	c := r.dialPath(t, "/discard", tether.ConnOptions{Registry: tether.NoRegistry, PingInterval: -1})
	for range 3 {
		if err := c.Write(t.Context(), tether.Text, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "three discarded messages", func() bool {
		return value(r.scrape(t), "tether_discarded_messages_total", "role", "server") == 3
	})
	c.Close(tether.StatusNormal, "")
	waitFor(t, "the close", func() bool { return value(r.scrape(t), "tether_open_connections") == -1 })
	if v := value(r.scrape(t), "tether_discarded_messages_total", "role", "server"); v != 3 {
		t.Errorf("discarded after close = %v, want 3", v)
	}
}
