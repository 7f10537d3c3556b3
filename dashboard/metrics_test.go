package dashboard

import (
	"bytes"
	"io"
	"net/http"
	"strings"
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
