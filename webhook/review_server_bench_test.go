package webhook

import (
	"net/http"
	"testing"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// BenchmarkAdmissionServeHTTP is BenchmarkAdmission with the webhooks served
// by controller-runtime's own admission.Webhook.ServeHTTP (its decoding of
// the review) instead of NewReviewServer, the rest alike: what the one-pass
// decoder saves, for reference.
//
//	go test -run='^$' -bench=BenchmarkAdmissionServeHTTP -benchmem -count=6 ./webhook/
func BenchmarkAdmissionServeHTTP(b *testing.B) {
	runAdmissionBenchmark(b, benchServeHTTPHandlers(b))
}

// benchServeHTTPHandlers is benchHandlers with controller-runtime's
// ServeHTTP and its request metrics (StandaloneWebhook with a MetricsPath).
func benchServeHTTPHandlers(tb testing.TB) map[string]http.Handler {
	tb.Helper()
	return benchWebhooks(tb, func(path string, hook *admission.Webhook, logger logr.Logger) http.Handler {
		h, err := admission.StandaloneWebhook(hook, admission.StandaloneOptions{Logger: logger, MetricsPath: path})
		if err != nil {
			tb.Fatal(err)
		}
		return h
	})
}
