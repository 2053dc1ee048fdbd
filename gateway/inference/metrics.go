package inference

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the router's Prometheus series. Names follow the
// OpenTelemetry GenAI semantic conventions as the OpenTelemetry Prometheus
// exporter spells them (dots become underscores, seconds get a suffix):
//
//	gen_ai_client_token_usage                  histogram, {token}
//	gen_ai_client_operation_duration_seconds   histogram
//	gen_ai_server_time_to_first_token_seconds  histogram (streams)
//
// with labels gen_ai_operation_name, gen_ai_request_model (the alias the
// agent asked for), gen_ai_response_model (provider model),
// gen_ai_provider_name, gen_ai_token_type (input/output, token usage only),
// error_type (duration only, "" on success) and sandbox. Beside them,
// nemoclave_inference_* series count requests, refusals and fallbacks and
// time the gateway's own overhead.
//
// One Metrics is shared by every sandbox's router: registering twice on
// one registry fails.
type Metrics struct {
	tokens    *prometheus.HistogramVec
	duration  *prometheus.HistogramVec
	ttft      *prometheus.HistogramVec
	requests  *prometheus.CounterVec
	refused   *prometheus.CounterVec
	fallbacks *prometheus.CounterVec
	overhead  *prometheus.HistogramVec
}

// NewMetrics registers the series on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	genai := []string{"sandbox", "gen_ai_operation_name", "gen_ai_request_model", "gen_ai_response_model", "gen_ai_provider_name"}
	m := &Metrics{
		tokens: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gen_ai_client_token_usage",
			Help:    "Tokens used per model call (OpenTelemetry gen_ai.client.token.usage).",
			Buckets: []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304},
		}, append(genai, "gen_ai_token_type")),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gen_ai_client_operation_duration_seconds",
			Help:    "Duration of model calls as the agent saw them (OpenTelemetry gen_ai.client.operation.duration).",
			Buckets: []float64{0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92},
		}, append(genai, "error_type")),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gen_ai_server_time_to_first_token_seconds",
			Help:    "Time to the first streamed chunk (OpenTelemetry gen_ai.server.time_to_first_token).",
			Buckets: []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10},
		}, genai),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nemoclave_inference_requests_total",
			Help: "Requests served by the inference gateway, by endpoint and HTTP status.",
		}, []string{"sandbox", "endpoint", "code"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nemoclave_inference_refused_total",
			Help: "Requests refused by a budget or rate limit.",
		}, []string{"sandbox", "reason"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nemoclave_inference_fallbacks_total",
			Help: "Attempts that failed over to a retry or the next route.",
		}, []string{"sandbox", "from_provider", "error_type"}),
		overhead: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "nemoclave_inference_overhead_seconds",
			Help:    "Gateway time per request excluding time inside the provider call.",
			Buckets: []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05},
		}, []string{"sandbox", "endpoint"}),
	}
	for _, c := range []prometheus.Collector{m.tokens, m.duration, m.ttft, m.requests, m.refused, m.fallbacks, m.overhead} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register inference metrics (build one Metrics per registry and share it): %w", err)
		}
	}
	return m, nil
}

type callLabels struct {
	sandbox, operation, requestModel, responseModel, provider string
}

func (m *Metrics) observeCall(l callLabels, d time.Duration, errType string, in, out int64) {
	if m == nil {
		return
	}
	m.duration.WithLabelValues(l.sandbox, l.operation, l.requestModel, l.responseModel, l.provider, errType).Observe(d.Seconds())
	if errType == "" {
		m.tokens.WithLabelValues(l.sandbox, l.operation, l.requestModel, l.responseModel, l.provider, "input").Observe(float64(in))
		if l.operation == "chat" {
			m.tokens.WithLabelValues(l.sandbox, l.operation, l.requestModel, l.responseModel, l.provider, "output").Observe(float64(out))
		}
	}
}

func (m *Metrics) observeTTFT(l callLabels, d time.Duration) {
	if m != nil {
		m.ttft.WithLabelValues(l.sandbox, l.operation, l.requestModel, l.responseModel, l.provider).Observe(d.Seconds())
	}
}

func (m *Metrics) request(sandbox, endpoint string, code int) {
	if m != nil {
		m.requests.WithLabelValues(sandbox, endpoint, fmt.Sprint(code)).Inc()
	}
}

func (m *Metrics) refusal(sandbox, reason string) {
	if m != nil {
		m.refused.WithLabelValues(sandbox, reason).Inc()
	}
}

func (m *Metrics) fallback(sandbox, provider, errType string) {
	if m != nil {
		m.fallbacks.WithLabelValues(sandbox, provider, errType).Inc()
	}
}

func (m *Metrics) observeOverhead(sandbox, endpoint string, d time.Duration) {
	if m != nil {
		m.overhead.WithLabelValues(sandbox, endpoint).Observe(d.Seconds())
	}
}
