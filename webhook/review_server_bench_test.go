package webhook

import (
	"net/http"
	"testing"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// BenchmarkAdmissionReviewServer is BenchmarkAdmission with the webhooks
// served by NewReviewServer instead of admission.Webhook.ServeHTTP, the
// rest alike: the same reviews, engine, recorder and logger, and
// controller-runtime's request metrics (added by the webhook server's
// Register, as in Run).
//
//	go test -run='^$' -bench=BenchmarkAdmissionReviewServer -benchmem -count=6 ./webhook/
func BenchmarkAdmissionReviewServer(b *testing.B) {
	runAdmissionBenchmark(b, benchReviewServers(b))
}

// benchReviewServers is benchHandlers with NewReviewServer, registered on a
// webhook server as Run registers the webhooks.
func benchReviewServers(tb testing.TB) map[string]http.Handler {
	tb.Helper()
	server := webhook.NewServer(webhook.Options{})
	return benchWebhooks(tb, func(path string, hook *admission.Webhook, logger logr.Logger) http.Handler {
		server.Register(path, NewReviewServer(hook, logger))
		return server.WebhookMux()
	})
}
