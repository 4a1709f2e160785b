package webhook

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stateguard/stateguard/policies"
)

// Recorder records admission outcomes. The handlers see only this interface,
// so tests can count decisions without a Prometheus registry.
type Recorder interface {
	// Decision counts one policy's verdict on one request.
	Decision(policy policies.PolicyID, mode policies.Mode, decision, operation string, dryRun bool)
	// Mutation counts one change a policy made.
	Mutation(policy policies.PolicyID)
	// Duration observes how long one review took, by webhook path.
	Duration(webhook string, d time.Duration)
	// Panic counts a recovered panic, by webhook path.
	Panic(webhook string)
}

// Decision values of stateguard_admission_decisions_total.
const (
	decisionAllow = "allow"
	decisionDeny  = "deny"
	decisionWarn  = "warn"
	decisionAudit = "audit"
	decisionError = "error"
)

// PrometheusRecorder is the Recorder behind /metrics.
type PrometheusRecorder struct {
	decisions *prometheus.CounterVec
	mutations *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	panics    *prometheus.CounterVec
}

var _ Recorder = (*PrometheusRecorder)(nil)

// NewPrometheusRecorder creates the metrics and registers them with reg.
func NewPrometheusRecorder(reg prometheus.Registerer) (*PrometheusRecorder, error) {
	r := &PrometheusRecorder{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stateguard_admission_decisions_total",
			Help: "Admission verdicts, one per policy per reviewed request.",
		}, []string{"policy", "mode", "decision", "operation", "dry_run"}),
		mutations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stateguard_mutations_total",
			Help: "Changes made by the mutating webhook, by policy.",
		}, []string{"policy"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "stateguard_admission_duration_seconds",
			Help: "Time to review one admission request, by webhook path.",
			// Reviews take tens of microseconds; the top buckets catch a
			// slow live read near the API server's timeout.
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"webhook"}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stateguard_admission_panics_total",
			Help: "Panics recovered while reviewing a request (each became a denial).",
		}, []string{"webhook"}),
	}
	for _, c := range []prometheus.Collector{r.decisions, r.mutations, r.duration, r.panics} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *PrometheusRecorder) Decision(policy policies.PolicyID, mode policies.Mode, decision, operation string, dryRun bool) {
	dry := "false"
	if dryRun {
		dry = "true"
	}
	r.decisions.WithLabelValues(string(policy), string(mode), decision, operation, dry).Inc()
}

func (r *PrometheusRecorder) Mutation(policy policies.PolicyID) {
	r.mutations.WithLabelValues(string(policy)).Inc()
}

func (r *PrometheusRecorder) Duration(webhook string, d time.Duration) {
	r.duration.WithLabelValues(webhook).Observe(d.Seconds())
}

func (r *PrometheusRecorder) Panic(webhook string) {
	r.panics.WithLabelValues(webhook).Inc()
}

// NopRecorder records nothing.
type NopRecorder struct{}

var _ Recorder = NopRecorder{}

func (NopRecorder) Decision(policies.PolicyID, policies.Mode, string, string, bool) {}
func (NopRecorder) Mutation(policies.PolicyID)                                      {}
func (NopRecorder) Duration(string, time.Duration)                                  {}
func (NopRecorder) Panic(string)                                                    {}
