package webhook

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/stateguard/stateguard/policies"
	"github.com/stateguard/stateguard/test/load/reviews"
)

// The in-process benchmarks post the AdmissionReviews of test/load/reviews
// (the bytes hack/loadgen sends over HTTPS) to the handlers wrapped the way
// Run registers them, with a map-backed lookup in place of the informers.

const (
	benchNamespace = "shop"
	benchName      = "db"
)

// benchMapLookup is a policies.Lookup over maps, standing in for the informer
// caches.
type benchMapLookup struct {
	services     map[string]*corev1.Service // namespace/name
	classes      map[string]*storagev1.StorageClass
	namespaces   map[string]*corev1.Namespace
	statefulSets map[string][]*appsv1.StatefulSet // by namespace
}

var _ policies.Lookup = (*benchMapLookup)(nil)

func (l *benchMapLookup) Service(namespace, name string) (*corev1.Service, error) {
	return l.services[namespace+"/"+name], nil
}

func (l *benchMapLookup) StorageClass(name string) (*storagev1.StorageClass, error) {
	return l.classes[name], nil
}

func (l *benchMapLookup) Namespace(name string) (*corev1.Namespace, error) {
	return l.namespaces[name], nil
}

func (l *benchMapLookup) StatefulSets(namespace string) ([]*appsv1.StatefulSet, error) {
	return l.statefulSets[namespace], nil
}

// benchLookup holds what the reviews expect (see reviews.Cluster), the
// profile's StorageClasses, and some unrelated StatefulSets beside them, as a
// namespace of a real cluster would.
func benchLookup(engine *policies.Engine) *benchMapLookup {
	l := &benchMapLookup{
		services:     map[string]*corev1.Service{},
		classes:      map[string]*storagev1.StorageClass{},
		namespaces:   map[string]*corev1.Namespace{},
		statefulSets: map[string][]*appsv1.StatefulSet{},
	}
	services, statefulSets := reviews.Cluster(benchNamespace, benchName)
	for _, s := range services {
		l.services[s.Namespace+"/"+s.Name] = s
	}
	for i := 0; i < 20; i++ {
		other := statefulSets[0].DeepCopy()
		other.Name = benchName + "-other-" + string(rune('a'+i))
		other.Spec.ServiceName = other.Name
		statefulSets = append(statefulSets, other)
	}
	for _, s := range statefulSets {
		l.statefulSets[s.Namespace] = append(l.statefulSets[s.Namespace], s)
	}
	for _, sc := range engine.Config().CatalogStorageClasses() {
		l.classes[sc.Name] = sc
	}
	l.namespaces[benchNamespace] = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: benchNamespace, Labels: map[string]string{"kubernetes.io/metadata.name": benchNamespace},
	}}
	return l
}

// benchHandlers returns the HTTP handler of each webhook path as Run serves
// it: the default engine, the Prometheus recorder, the admission webhook with
// panic recovery, decoded by NewReviewServer under the exchange deadline
// (mount), registered on controller-runtime's webhook server (which adds its
// request metrics), and a JSON logger at the default level, as `stateguard
// serve` sets up (V(5) request logs off, so requestLogger adds no fields
// per request).
func benchHandlers(tb testing.TB) map[string]http.Handler {
	tb.Helper()
	server := webhook.NewServer(webhook.Options{})
	return benchWebhooks(tb, func(path string, hook *admission.Webhook, logger logr.Logger) http.Handler {
		server.Register(path, withDeadline(NewReviewServer(hook, logger), reviewTimeout))
		return server.WebhookMux()
	})
}

// benchWebhooks builds the engine, recorder, lookup and logger the
// benchmarks share, and serves each path's handler through serve.
func benchWebhooks(tb testing.TB, serve func(path string, hook *admission.Webhook, logger logr.Logger) http.Handler) map[string]http.Handler {
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
	out := map[string]http.Handler{}
	for path, handler := range h.ForPath() {
		out[path] = serve(path, newHook(handler, true, nil), logger)
	}
	return out
}

// runAdmissionBenchmark posts every benchmark review through its path's
// handler, reporting cpu-ns/op (the process's CPU time per review, GC
// included), which a busy machine disturbs much less than wall time.
func runAdmissionBenchmark(b *testing.B, handlers map[string]http.Handler) {
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

// post sends one review through an HTTP handler and returns the recorder.
func benchPost(h http.Handler, r reviews.Review) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, r.Path, bytes.NewReader(r.Body))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}
