package dashboard

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tetherws/tether"
)

// initiatorUnknown labels a close whose event does not say which side
// closed first.
const initiatorUnknown = "unknown"

// Metrics are the dashboard's Prometheus metrics. Gauges and per-connection
// counters are read from the registry at scrape time; RTTs and close codes
// come from its events. Two metrics have no source in the library yet and
// count what servers report through HandshakeFailed and HubDropped.
type Metrics struct {
	reg               *prometheus.Registry
	rtt               *prometheus.HistogramVec
	closes            *prometheus.CounterVec
	handshakeFailures *prometheus.CounterVec
	hubDropped        *prometheus.CounterVec
	eventsLost        prometheus.Counter
}

func newMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		rtt: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tether_keepalive_rtt_seconds",
			Help:    "Round-trip time of answered keepalive pings.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"role"}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_connection_closes_total",
			Help: "Connections closed, by close code and by the side that closed first (local or peer).",
		}, []string{"code", "initiator"}),
		handshakeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_handshake_failures_total",
			Help: "Opening handshakes that failed, by reason, as reported by the server through Metrics.HandshakeFailed.",
		}, []string{"reason"}),
		hubDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_hub_dropped_messages_total",
			Help: "Messages a hub dropped because a connection's queue was full, by room, as reported through Metrics.HubDropped.",
		}, []string{"room"}),
		eventsLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tether_dashboard_events_lost_total",
			Help: "Registry events the dashboard lost because it fell behind; its keepalive history has gaps.",
		}),
	}
	m.reg.MustRegister(m.rtt, m.closes, m.handshakeFailures, m.hubDropped, m.eventsLost,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the Prometheus registry /metrics serves, so a server can
// add collectors of its own to the same endpoint.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// HandshakeFailed counts a failed opening handshake. Call it where
// tether.Accept returns an error; keep reason to a small fixed set
// ("origin", "version", "bad_request", "hijack") since each value is a time
// series. It is safe on a nil *Metrics.
func (m *Metrics) HandshakeFailed(reason string) {
	if m != nil {
		m.handshakeFailures.WithLabelValues(reason).Inc()
	}
}

// HubDropped counts n messages a hub dropped for room because a
// connection's send queue was full. It is safe on a nil *Metrics.
func (m *Metrics) HubDropped(room string, n int) {
	if m != nil && n > 0 {
		m.hubDropped.WithLabelValues(room).Add(float64(n))
	}
}

// HandshakeReason names a tether.Accept error for HandshakeFailed:
// "bad_request" (400: not a valid WebSocket request), "origin" (403: the
// origin check refused it), "version" (426: an unsupported protocol
// version), or "other" (hijacking or writing the response failed).
func HandshakeReason(err error) string {
	var he *tether.HandshakeError
	if errors.As(err, &he) {
		switch he.StatusCode {
		case http.StatusBadRequest:
			return "bad_request"
		case http.StatusForbidden:
			return "origin"
		case http.StatusUpgradeRequired:
			return "version"
		}
	}
	return "other"
}

func (m *Metrics) observeRTT(role string, rtt time.Duration) {
	m.rtt.WithLabelValues(roleLabel(role)).Observe(rtt.Seconds())
}

func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func roleLabel(role string) string {
	if role == "" {
		return "unknown"
	}
	return role
}

func codeLabel(c tether.StatusCode) string { return strconv.Itoa(int(c)) }

// pathLabel is a connection's path without its query, which would make a
// time series per request: the request path for a server, scheme, host and
// path for a client.
func pathLabel(p string) string {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if u, err := url.Parse(p); err == nil && u.Host != "" {
		u.User, u.RawQuery, u.Fragment = nil, "", ""
		return u.String()
	}
	return p
}

var (
	openDesc = prometheus.NewDesc("tether_open_connections",
		"Live connections in the registry, by role and path (URL for clients).", []string{"role", "path"}, nil)
	pingsDesc = prometheus.NewDesc("tether_pings_sent_total",
		"Pings sent, keepalive and Conn.Ping.", []string{"role"}, nil)
	pongsDesc = prometheus.NewDesc("tether_pongs_received_total",
		"Pongs received that answered a ping.", []string{"role"}, nil)
	timeoutsDesc = prometheus.NewDesc("tether_keepalive_timeouts_total",
		"Keepalive pings that got no pong within the ping timeout (each fails its connection with 1011).", []string{"role"}, nil)
	msgsInDesc = prometheus.NewDesc("tether_received_messages_total",
		"Data messages received.", []string{"role"}, nil)
	msgsOutDesc = prometheus.NewDesc("tether_sent_messages_total",
		"Data messages sent.", []string{"role"}, nil)
	bytesInDesc = prometheus.NewDesc("tether_received_bytes_total",
		"Payload bytes of data messages received.", []string{"role"}, nil)
	bytesOutDesc = prometheus.NewDesc("tether_sent_bytes_total",
		"Payload bytes of data messages sent.", []string{"role"}, nil)
	peerPingsDesc = prometheus.NewDesc("tether_peer_pings_total",
		"Pings received from the peers.", []string{"role"}, nil)
	readStallsDesc = prometheus.NewDesc("tether_read_stalls_total",
		"Times a connection stopped reading because the application did not take its messages, long enough to hold up a keepalive pong.", []string{"role"}, nil)
	discardedDesc = prometheus.NewDesc("tether_discarded_messages_total",
		"Data messages dropped unread by connections the application only writes to (Conn.DiscardMessages).", []string{"role"}, nil)
	notReadingDesc = prometheus.NewDesc("tether_not_reading_connections",
		"Live connections whose reading is stopped because the application does not take their messages.", []string{"role"}, nil)
	findingsDesc = prometheus.NewDesc("tether_findings",
		"What the registry sees across its connections (Registry.Findings), by kind and severity.", []string{"kind", "severity"}, nil)
)

// findingKinds are the findings /metrics always reports, as 0 when there
// are none, so that an alert on them has a series to watch.
var findingKinds = [][2]string{
	{tether.FindingIntervalMismatch, "warning"},
	{tether.FindingDuplicate, "info"},
	{tether.FindingNotReading, "warning"},
}

// connCollector reads the registry at scrape time. Counters add the last
// counts of closed connections to those of live ones, so they never go
// back when a connection closes.
type connCollector struct{ s *state }

func (connCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{openDesc, pingsDesc, pongsDesc, timeoutsDesc, msgsInDesc, msgsOutDesc, bytesInDesc, bytesOutDesc,
		peerPingsDesc, readStallsDesc, discardedDesc, notReadingDesc, findingsDesc} {
		ch <- d
	}
}

func (c connCollector) Collect(ch chan<- prometheus.Metric) {
	list, totals := c.s.totals()
	type key struct{ role, path string }
	open := map[key]int{}
	notReading := map[string]int{}
	for _, ci := range list {
		open[key{roleLabel(ci.Role), pathLabel(ci.Path)}]++
		if ci.ReadStalledSince != nil {
			notReading[roleLabel(ci.Role)]++
		}
	}
	for k, n := range open {
		ch <- prometheus.MustNewConstMetric(openDesc, prometheus.GaugeValue, float64(n), k.role, k.path)
	}
	for role, t := range totals {
		role = roleLabel(role)
		for _, v := range []struct {
			d *prometheus.Desc
			n int64
		}{
			{pingsDesc, t.pings}, {pongsDesc, t.pongs}, {timeoutsDesc, t.timeouts},
			{msgsInDesc, t.msgsIn}, {msgsOutDesc, t.msgsOut}, {bytesInDesc, t.bytesIn}, {bytesOutDesc, t.bytesOut},
			{peerPingsDesc, t.peerPings}, {readStallsDesc, t.readStalls}, {discardedDesc, t.discarded},
		} {
			ch <- prometheus.MustNewConstMetric(v.d, prometheus.CounterValue, float64(v.n), role)
		}
		ch <- prometheus.MustNewConstMetric(notReadingDesc, prometheus.GaugeValue, float64(notReading[role]), role)
	}
	collectFindings(ch, c.s.currentFindings())
}

// collectFindings counts the findings by kind and severity.
func collectFindings(ch chan<- prometheus.Metric, fs []tether.Finding) {
	n := map[[2]string]int{}
	for _, k := range findingKinds {
		n[k] = 0
	}
	for _, f := range fs {
		n[[2]string{f.Kind, f.Severity}]++
	}
	for k, v := range n {
		ch <- prometheus.MustNewConstMetric(findingsDesc, prometheus.GaugeValue, float64(v), k[0], k[1])
	}
}
