package natsbroker

import "github.com/prometheus/client_golang/prometheus"

var (
	descConnected   = prometheus.NewDesc("tether_cluster_connected", "1 when this node reaches NATS, 0 while it delivers to its own connections only.", nil, nil)
	descDisconnects = prometheus.NewDesc("tether_cluster_disconnects_total", "Times this node lost NATS.", nil, nil)
	descPublished   = prometheus.NewDesc("tether_cluster_published_total", "Broadcasts published to the cluster.", nil, nil)
	descReceived    = prometheus.NewDesc("tether_cluster_received_total", "Broadcasts received from the cluster and delivered here.", nil, nil)
	descLocalOnly   = prometheus.NewDesc("tether_cluster_local_only_total", "Broadcasts delivered on this node only because NATS was unreachable.", nil, nil)
	descPubErrors   = prometheus.NewDesc("tether_cluster_publish_errors_total", "Failed publishes to NATS.", nil, nil)
	descNodes       = prometheus.NewDesc("tether_cluster_nodes", "Nodes announcing presence, this one included.", nil, nil)
)

// Collector returns the broker's Prometheus metrics (tether_cluster_*), to
// register beside the dashboard's.
func (b *Broker) Collector() prometheus.Collector { return collector{b} }

type collector struct{ b *Broker }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnected, descDisconnects, descPublished, descReceived, descLocalOnly, descPubErrors, descNodes} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.b.Stats()
	up := 0.0
	if s.Connected {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(descConnected, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(descDisconnects, prometheus.CounterValue, float64(s.Disconnects))
	ch <- prometheus.MustNewConstMetric(descPublished, prometheus.CounterValue, float64(s.Published))
	ch <- prometheus.MustNewConstMetric(descReceived, prometheus.CounterValue, float64(s.Received))
	ch <- prometheus.MustNewConstMetric(descLocalOnly, prometheus.CounterValue, float64(s.LocalOnly))
	ch <- prometheus.MustNewConstMetric(descPubErrors, prometheus.CounterValue, float64(s.PublishErrors))
	ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(s.Nodes))
}
