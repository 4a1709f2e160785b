package webhook

import (
	"context"
	"crypto/tls"
	"fmt"
	"github.com/go-logr/logr"
	"net/http"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/stateguard/stateguard/policies"
)

// Options configures the webhook server.
type Options struct {
	Engine *policies.Engine
	// RestConfig reaches the API server (informers and live reads).
	RestConfig *rest.Config
	// CertDir holds tls.crt and tls.key; they are reloaded when they change.
	CertDir string
	Port    int
	// MetricsAddr and ProbeAddr are bind addresses; "0" disables one.
	MetricsAddr string
	ProbeAddr   string
	// ShutdownGrace bounds how long in-flight reviews may take to finish.
	ShutdownGrace time.Duration
	// ShutdownDelay is how long the server keeps serving, unready, after it
	// is told to stop: long enough for the Service's endpoints to drop the
	// pod, so the API server stops sending it reviews before it stops
	// accepting them.
	ShutdownDelay time.Duration
}

// Run serves the admission webhooks until ctx is cancelled, then shuts down
// gracefully: readiness turns false, the server keeps answering for
// ShutdownDelay, in-flight reviews finish (up to ShutdownGrace), and it returns.
func Run(ctx context.Context, opts Options) error {
	var stopping atomic.Bool
	mgrCtx, stopManager := context.WithCancel(context.WithoutCancel(ctx))
	defer stopManager()
	go func() {
		select {
		case <-ctx.Done():
		case <-mgrCtx.Done():
			return
		}
		stopping.Store(true)
		select {
		case <-time.After(opts.ShutdownDelay):
		case <-mgrCtx.Done():
		}
		stopManager()
	}()

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	server := webhook.NewServer(webhook.Options{
		Port:    opts.Port,
		CertDir: opts.CertDir,
		TLSOpts: []func(*tls.Config){hardenTLS},
	})
	cached := cachedObjects()
	mgr, err := ctrl.NewManager(opts.RestConfig, manager.Options{
		Scheme:                  scheme,
		WebhookServer:           server,
		Metrics:                 metricsserver.Options{BindAddress: opts.MetricsAddr},
		HealthProbeBindAddress:  opts.ProbeAddr,
		GracefulShutdownTimeout: &opts.ShutdownGrace,
		Cache:                   cache.Options{ByObject: cached},
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	recorder, err := NewPrometheusRecorder(metrics.Registry)
	if err != nil {
		return err
	}
	handlers := &Handlers{
		Engine:   opts.Engine,
		Recorder: recorder,
		Lookup: func(ctx context.Context) policies.Lookup {
			return &clusterLookup{ctx: ctx, cache: mgr.GetCache(), live: mgr.GetAPIReader()}
		},
	}
	// The manager runs its webhook server only once asked for it by
	// GetWebhookServer; registering on our own reference would never serve.
	for path, h := range handlers.ForPath() {
		mgr.GetWebhookServer().Register(path, mount(h, true, detachFromShutdown(mgrCtx), reviewTimeout))
	}

	// Informers are started up front, not on the first request, so that
	// readiness means the caches are synced.
	for obj := range cached {
		if _, err := mgr.GetCache().GetInformer(mgrCtx, obj); err != nil {
			return fmt.Errorf("starting the %T informer: %w", obj, err)
		}
	}
	go releaseAfterSync(mgrCtx, mgr.GetCache())
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("shutdown", func(*http.Request) error {
		if stopping.Load() {
			return fmt.Errorf("shutting down")
		}
		return nil
	}); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("webhook", server.StartedChecker()); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("caches", func(req *http.Request) error {
		syncCtx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		if !mgr.GetCache().WaitForCacheSync(syncCtx) {
			return fmt.Errorf("informer caches not synced")
		}
		return nil
	}); err != nil {
		return err
	}
	return mgr.Start(mgrCtx)
}

// reviewTimeout bounds one exchange on a webhook connection: the review's
// body must have arrived, and the answer been written, this long after its
// headers were read. controller-runtime's server bounds only the headers
// (32s), so without it a client sending a 7 MiB body a byte at a time would
// hold the connection and its buffer for as long as it liked. 30s is the
// longest timeoutSeconds the API server allows: past it, nobody is waiting
// for the answer. The API server itself sends a review in one piece and
// waits at most timeoutSeconds (chart default 5).
const reviewTimeout = 30 * time.Second

// mount is the HTTP handler Run serves one webhook path with (the server's
// Register only adds its request metrics around it): controller-runtime's
// admission.Webhook, with its own panic recovery as a last resort behind the
// handlers' guard, decoded by NewReviewServer, under the exchange deadline.
// Tests serve through it too, so what they prove holds for Run.
func mount(h admission.Handler, recoverPanic bool, withContext func(context.Context, *http.Request) context.Context, timeout time.Duration) http.Handler {
	return withDeadline(NewReviewServer(newHook(h, recoverPanic, withContext), logr.Logger{}), timeout)
}

// newHook is controller-runtime's admission webhook around h, as Run serves
// it (and the benchmarks measure it).
func newHook(h admission.Handler, recoverPanic bool, withContext func(context.Context, *http.Request) context.Context) *webhook.Admission {
	return &webhook.Admission{Handler: h, RecoverPanic: ptr(recoverPanic), WithContextFunc: withContext, LogConstructor: requestLogger}
}

// requestLogger gives a review's log lines the request's fields only when
// its V(5) lines are written. controller-runtime's default
// (admission.DefaultLogConstructor) adds them on every review, written or
// not, and that costs more than the policies do; the handlers log nothing
// per review at the default level.
func requestLogger(base logr.Logger, req *admission.Request) logr.Logger {
	if req == nil || !base.V(5).Enabled() {
		return base
	}
	return admission.DefaultLogConstructor(base, req)
}

// withDeadline gives one exchange its deadlines: the request must have been
// read within timeout, and the answer written within a few seconds more, so
// that a body cut off at the deadline still gets its 400. net/http resets
// both for the next request on the connection (IdleTimeout and
// ReadHeaderTimeout apply in between). A writer that cannot take deadlines
// (httptest.ResponseRecorder) is served without them.
func withDeadline(h http.Handler, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		deadline := time.Now().Add(timeout)
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(deadline)
		_ = rc.SetWriteDeadline(deadline.Add(answerMargin))
		h.ServeHTTP(w, r)
	})
}

// answerMargin is how long after the read deadline an answer may still be
// written.
const answerMargin = 5 * time.Second

// detachFromShutdown keeps a review's context alive through a graceful
// shutdown. controller-runtime derives each request's context from the
// webhook server's, which is cancelled the moment the server starts shutting
// down: a review in flight then, which the server waits for, would see its
// live reads fail with "context canceled" and deny the write. The returned
// context ends with the request's (the API server hung up, or the review is
// done), unless that is because stopping ended: then ShutdownGrace bounds it.
func detachFromShutdown(stopping context.Context) func(context.Context, *http.Request) context.Context {
	return func(ctx context.Context, _ *http.Request) context.Context {
		detached, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
		context.AfterFunc(ctx, func() {
			if stopping.Err() == nil {
				cancel(context.Cause(ctx))
			}
		})
		return detached
	}
}

// hardenTLS refuses TLS below 1.2 and HTTP/2: the API server speaks
// HTTP/1.1 to webhooks, and HTTP/2 rapid reset (CVE-2023-44487) is a cheap
// way to exhaust a server that everything in the cluster depends on.
func hardenTLS(c *tls.Config) {
	c.MinVersion = tls.VersionTLS12
	c.NextProtos = []string{"http/1.1"}
	c.CipherSuites = []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

func ptr[T any](v T) *T { return &v }
