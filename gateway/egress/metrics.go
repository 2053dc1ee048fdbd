package egress

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are registered on the registry the caller passes (never the
// global one), so several gateways can live in one process and tests do not
// collide.
type metrics struct {
	decisions *prometheus.CounterVec
	bytes     *prometheus.CounterVec
	setup     prometheus.Histogram
	duration  prometheus.Histogram
	dns       prometheus.Histogram
	pending   *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "nemoclave", Subsystem: "egress", Name: "decisions_total",
			Help: "Egress decisions by sandbox, kind (connect, http, inspected) and decision (allow, deny, closed).",
		}, []string{"sandbox", "kind", "decision"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "nemoclave", Subsystem: "egress", Name: "bytes_total",
			Help: "Bytes relayed by sandbox and direction (up = sandbox to internet).",
		}, []string{"sandbox", "direction"}),
		setup: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "nemoclave", Subsystem: "egress", Name: "connect_setup_seconds",
			Help:    "Time from the CONNECT request to the upstream connection being ready.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "nemoclave", Subsystem: "egress", Name: "tunnel_duration_seconds",
			Help:    "Lifetime of allowed tunnels and proxied requests.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 12),
		}),
		dns: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "nemoclave", Subsystem: "egress", Name: "dns_seconds",
			Help:    "Resolver latency for allowed names.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "nemoclave", Subsystem: "egress", Name: "approvals_pending",
			Help: "Requests held for an operator decision, by sandbox.",
		}, []string{"sandbox"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.decisions, m.bytes, m.setup, m.duration, m.dns, m.pending} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) decision(sandbox, kind, decision string) {
	m.decisions.WithLabelValues(sandbox, kind, decision).Inc()
}

func (m *metrics) relayed(sandbox string, up, down int64) {
	if up > 0 {
		m.bytes.WithLabelValues(sandbox, "up").Add(float64(up))
	}
	if down > 0 {
		m.bytes.WithLabelValues(sandbox, "down").Add(float64(down))
	}
}

func (m *metrics) observeDNS(d time.Duration) { m.dns.Observe(d.Seconds()) }
