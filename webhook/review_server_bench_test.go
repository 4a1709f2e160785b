package webhook

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/stateguard/stateguard/policies"
)

// BenchmarkAdmissionReviewServer is BenchmarkAdmission with the webhooks
// served by NewReviewServer instead of admission.Webhook.ServeHTTP, the
// rest alike: the same reviews, engine, recorder and logger, and
// controller-runtime's request metrics (added by the webhook server's
// Register, as in Run).
//
//	go test -run='^$' -bench=BenchmarkAdmissionReviewServer -benchmem -count=6 ./webhook/
func BenchmarkAdmissionReviewServer(b *testing.B) {
	handlers := benchReviewServers(b)
	for _, r := range benchReviews() {
		h := handlers[r.Path]
		b.Run(r.Name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(r.Body)))
			cpu := benchProcessCPU()
			for b.Loop() {
				w := benchPost(h, r)
				if w.Code != http.StatusOK {
					b.Fatalf("HTTP %d: %s", w.Code, w.Body)
				}
			}
			b.ReportMetric(float64(benchProcessCPU()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// benchReviewServers is benchHandlers with NewReviewServer, registered on a
// webhook server as Run registers the webhooks.
func benchReviewServers(tb testing.TB) map[string]http.Handler {
	tb.Helper()
	engine, err := policies.NewEngine(policies.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	recorder, err := NewPrometheusRecorder(prometheus.NewRegistry())
	if err != nil {
		tb.Fatal(err)
	}
	lookup := benchLookup(engine)
	h := &Handlers{
		Engine:   engine,
		Recorder: recorder,
		Lookup:   func(context.Context) policies.Lookup { return lookup },
	}
	logger := logr.FromSlogHandler(slog.NewJSONHandler(io.Discard, nil))
	server := webhook.NewServer(webhook.Options{})
	out := map[string]http.Handler{}
	for path, handler := range h.ForPath() {
		server.Register(path, NewReviewServer(&admission.Webhook{Handler: handler, RecoverPanic: ptr(true)}, logger))
		out[path] = server.WebhookMux()
	}
	return out
}

// TestBenchmarkReviewServers is TestBenchmarkReviews for
// BenchmarkAdmissionReviewServer's servers: every review takes its intended
// path and gets the answer the controller-runtime-served webhook gives.
func TestBenchmarkReviewServers(t *testing.T) {
	fast := benchReviewServers(t)
	reference := benchHandlers(t)
	for _, r := range benchReviews() {
		t.Run(r.Name, func(t *testing.T) {
			got, want := benchPost(fast[r.Path], r), benchPost(reference[r.Path], r)
			if got.Code != http.StatusOK || got.Code != want.Code {
				t.Fatalf("HTTP %d, want %d: %s", got.Code, want.Code, got.Body)
			}
			if g, w := canonicalPatchOrder(t, got.Body.Bytes()), canonicalPatchOrder(t, want.Body.Bytes()); string(g) != string(w) {
				t.Fatalf("response differs\n got: %s\nwant: %s", g, w)
			}
		})
	}
}
