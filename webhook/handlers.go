package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/stateguard/stateguard/policies"
)

// Webhook paths, part of the product contract: the chart registers them.
const (
	MutateStatefulSetPath   = "/mutate-apps-v1-statefulset"
	ValidateStatefulSetPath = "/validate-apps-v1-statefulset"
	ValidateServicePath     = "/validate-v1-service"
)

var (
	statefulSetKind = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}
	serviceKind     = schema.GroupVersionKind{Version: "v1", Kind: "Service"}
)

// Handlers adapts the policy engine to admission requests. They stay thin:
// decode, ask the engine, map the result.
type Handlers struct {
	Engine *policies.Engine
	// Lookup returns the lookup for one request.
	Lookup   func(ctx context.Context) policies.Lookup
	Recorder Recorder
}

// ForPath returns the handler served at a webhook path.
func (h *Handlers) ForPath() map[string]admission.Handler {
	return map[string]admission.Handler{
		MutateStatefulSetPath:   h.guard(MutateStatefulSetPath, h.mutateStatefulSet),
		ValidateStatefulSetPath: h.guard(ValidateStatefulSetPath, h.validateStatefulSet),
		ValidateServicePath:     h.guard(ValidateServicePath, h.validateService),
	}
}

// maxReviewSize is the limit controller-runtime puts on a review's body
// (maxRequestSize in its admission/http.go).
const maxReviewSize = 7 * 1024 * 1024

// NewReviewServer returns an HTTP handler that serves hook as hook's own
// ServeHTTP does, but decodes reviews in a fraction of the time. Register it
// on the webhook server in place of hook (Register adds controller-runtime's
// request metrics to either). log becomes hook's logger; the zero Logger
// stands for controller-runtime's default.
func NewReviewServer(hook *admission.Webhook, log logr.Logger) http.Handler {
	if log.GetSink() == nil {
		log = logf.Log.WithName("admission") // the webhook's default
	}
	// Gives the webhook this logger (without a MetricsPath it neither fails
	// nor wraps the webhook).
	if _, err := admission.StandaloneWebhook(hook, admission.StandaloneOptions{Logger: log}); err != nil {
		panic(err)
	}
	return &reviewServer{hook: hook, log: log}
}

// reviewServer serves an admission.Webhook over HTTP as the webhook's
// ServeHTTP does (controller-runtime's admission/http.go), decoding the
// review with decodeReview. Every request that decodeReview does not decode
// goes, body and all, to the webhook's ServeHTTP, so that whatever that
// answers (to empty, oversized or unreadable bodies, wrong content types,
// undecodable reviews) it still answers: reviewServer only does faster what
// ServeHTTP would do with a valid review. The rest is the webhook's own:
// WithContextFunc, Handle (panic recovery, the UID echoed, the patch
// encoded), the response written in the review's apiVersion, the same log
// lines.
type reviewServer struct {
	hook *admission.Webhook
	// log is the webhook's logger (admission.Webhook keeps it unexported).
	log logr.Logger
}

func (s *reviewServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody || r.Header.Get("Content-Type") != "application/json" {
		s.hook.ServeHTTP(w, r)
		return
	}
	defer r.Body.Close()
	limited := &io.LimitedReader{R: r.Body, N: maxReviewSize}
	body, err := readAll(limited, r.ContentLength)
	if err != nil || limited.N <= 0 {
		// Let the webhook read the same bytes, then the same error or the
		// rest of the oversized body.
		var rest io.Reader = r.Body
		if err != nil {
			rest = errorReader{err}
		}
		r.Body = replayBody{io.MultiReader(bytes.NewReader(body), rest)}
		s.hook.ServeHTTP(w, r)
		return
	}
	req, gvk, cut, ok := decodeReview(body)
	if !ok {
		r.Body = replayBody{bytes.NewReader(body)}
		s.hook.ServeHTTP(w, r)
		return
	}
	ctx := r.Context()
	if s.hook.WithContextFunc != nil {
		ctx = s.hook.WithContextFunc(ctx, r)
	}
	ctx = context.WithValue(ctx, cutObjectsKey{}, cut)
	if s.log.V(5).Enabled() || s.hook.LogConstructor != nil {
		s.requestLogger(&req).V(5).Info("received request")
	}
	s.writeResponse(w, s.hook.Handle(ctx, req), gvk)
}

// requestLogger is the webhook's getLogger.
func (s *reviewServer) requestLogger(req *admission.Request) logr.Logger {
	if s.hook.LogConstructor != nil {
		return s.hook.LogConstructor(s.log, req)
	}
	return admission.DefaultLogConstructor(s.log, req)
}

// writeResponse writes the response as the webhook's writeResponseTyped
// and writeAdmissionResponse do.
func (s *reviewServer) writeResponse(w io.Writer, resp admission.Response, gvk *schema.GroupVersionKind) {
	ar := admissionv1.AdmissionReview{Response: &resp.AdmissionResponse}
	if gvk == nil || *gvk == (schema.GroupVersionKind{}) {
		ar.SetGroupVersionKind(admissionv1.SchemeGroupVersion.WithKind("AdmissionReview"))
	} else {
		ar.SetGroupVersionKind(*gvk)
	}
	if err := json.NewEncoder(w).Encode(ar); err != nil {
		s.log.Error(err, "unable to encode and write the response")
		serverError := admission.Errored(http.StatusInternalServerError, err)
		if err = json.NewEncoder(w).Encode(admissionv1.AdmissionReview{Response: &serverError.AdmissionResponse}); err != nil {
			s.log.Error(err, "still unable to encode and write the InternalServerError response")
		}
		return
	}
	if log := s.log; log.V(5).Enabled() {
		res := ar.Response
		if res.Result != nil {
			log = log.WithValues("code", res.Result.Code, "reason", res.Result.Reason, "message", res.Result.Message)
		}
		log.V(5).Info("wrote response", "requestID", res.UID, "allowed", res.Allowed)
	}
}

// readAll is io.ReadAll, reading into a buffer of the body's size when the
// request gives it (plus one byte, to read the end without growing it).
func readAll(r io.Reader, contentLength int64) ([]byte, error) {
	size := 512
	if contentLength > 0 && contentLength < maxReviewSize {
		size = int(contentLength) + 1
	}
	b := make([]byte, 0, size)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// replayBody is the body handed on to the webhook; the original is closed
// by ServeHTTP.
type replayBody struct{ io.Reader }

func (replayBody) Close() error { return nil }

type errorReader struct{ err error }

func (e errorReader) Read([]byte) (int, error) { return 0, e.err }

// guard times a handler and turns a panic into a denial: with failurePolicy
// Fail, a crashed process would refuse every write in the cluster, while one
// bad request denied with "internal error" harms nobody else.
func (h *Handlers) guard(path string, handle func(context.Context, admission.Request) admission.Response) admission.Handler {
	return admission.HandlerFunc(func(ctx context.Context, req admission.Request) (resp admission.Response) {
		start := time.Now()
		defer func() {
			if r := recover(); r != nil {
				h.Recorder.Panic(path)
				resp = admission.Errored(http.StatusInternalServerError, fmt.Errorf("stateguard internal error reviewing %s %s/%s: %v", req.Kind.Kind, req.Namespace, req.Name, r))
			}
			h.Recorder.Duration(path, time.Since(start))
		}()
		return handle(ctx, req)
	})
}

func (h *Handlers) mutateStatefulSet(ctx context.Context, req admission.Request) admission.Response {
	sreq, errResp := decodeStatefulSetRequest(ctx, req, decodeObject[appsv1.StatefulSet])
	if errResp != nil {
		return *errResp
	}
	lookup := h.Lookup(ctx)
	mutated, mutations, err := h.Engine.MutateStatefulSet(sreq, lookup)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	if len(mutations) == 0 {
		return admission.Allowed("")
	}
	if !claimTemplatesOnly(mutations) {
		// The patch will diff the whole objects (see patchResponse), so
		// they must be whole: decode them in full and mutate again.
		if sreq, errResp = decodeStatefulSetRequest(ctx, req, decodeWhole[appsv1.StatefulSet]); errResp != nil {
			return *errResp
		}
		if mutated, mutations, err = h.Engine.MutateStatefulSet(sreq, lookup); err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
		if len(mutations) == 0 {
			return admission.Allowed("")
		}
	}
	resp := patchResponse(req.Object.Raw, sreq.Object, mutated, mutations)
	if !resp.Allowed {
		return resp
	}
	for _, m := range mutations {
		h.Recorder.Mutation(m.Policy)
	}
	return resp
}

func (h *Handlers) validateStatefulSet(ctx context.Context, req admission.Request) admission.Response {
	sreq, errResp := decodeStatefulSetRequest(ctx, req, decodeObject[appsv1.StatefulSet])
	if errResp != nil {
		return *errResp
	}
	result, err := h.Engine.ValidateStatefulSet(sreq, h.Lookup(ctx))
	if err != nil {
		h.recordError(req)
		return admission.Errored(http.StatusInternalServerError, err)
	}
	h.record(req, result)
	return respond(req, result)
}

func (h *Handlers) validateService(ctx context.Context, req admission.Request) admission.Response {
	sreq := policies.ServiceRequest{Operation: policies.Operation(req.Operation), Namespace: req.Namespace}
	var errResp *admission.Response
	if sreq.Object, sreq.OldObject, errResp = decodeObjects(ctx, req, serviceKind, decodeObject[corev1.Service]); errResp != nil {
		return *errResp
	}
	result, err := h.Engine.ValidateService(sreq, h.Lookup(ctx))
	if err != nil {
		h.recordError(req)
		return admission.Errored(http.StatusInternalServerError, err)
	}
	h.record(req, result)
	return respond(req, result)
}

// decodeStatefulSetRequest decodes a StatefulSet review's objects with decode
// (decodeObject, or decodeWhole where every field matters).
func decodeStatefulSetRequest(ctx context.Context, req admission.Request, decode func(context.Context, []byte) (*appsv1.StatefulSet, error)) (policies.StatefulSetRequest, *admission.Response) {
	out := policies.StatefulSetRequest{Operation: policies.Operation(req.Operation), Namespace: req.Namespace}
	var errResp *admission.Response
	out.Object, out.OldObject, errResp = decodeObjects(ctx, req, statefulSetKind, decode)
	return out, errResp
}

// decodeObjects decodes a review's object and old object, for a webhook
// that serves kind; anything else is a bad request.
func decodeObjects[T any](ctx context.Context, req admission.Request, kind schema.GroupVersionKind, decode func(context.Context, []byte) (*T, error)) (object, old *T, errResp *admission.Response) {
	fail := func(err error) (*T, *T, *admission.Response) {
		resp := admission.Errored(http.StatusBadRequest, err)
		return nil, nil, &resp
	}
	if req.Kind.Group != kind.Group || req.Kind.Kind != kind.Kind {
		return fail(fmt.Errorf("this webhook serves %s %ss, not %s", kind.GroupVersion(), kind.Kind, req.Kind.Kind))
	}
	var err error
	if object, err = decode(ctx, req.Object.Raw); err != nil {
		return fail(fmt.Errorf("decoding object: %w", err))
	}
	if old, err = decode(ctx, req.OldObject.Raw); err != nil {
		return fail(fmt.Errorf("decoding oldObject: %w", err))
	}
	return object, old, nil
}

// record counts one decision per evaluated policy.
func (h *Handlers) record(req admission.Request, result policies.Result) {
	dryRun := req.DryRun != nil && *req.DryRun
	for id, mode := range result.Modes {
		decision := decisionAllow
		for _, f := range result.Findings {
			if f.Policy != id {
				continue
			}
			switch {
			case f.Mode == policies.Enforce:
				decision = decisionDeny
			case f.Mode == policies.Warn && decision != decisionDeny:
				decision = decisionWarn
			case f.Mode == policies.Audit && decision == decisionAllow:
				decision = decisionAudit
			}
		}
		h.Recorder.Decision(id, mode, decision, string(req.Operation), dryRun)
	}
}

// recordError counts a review that could not be decided, under the mode it
// would have been denied in (an error fails closed, like enforce).
func (h *Handlers) recordError(req admission.Request) {
	dryRun := req.DryRun != nil && *req.DryRun
	h.Recorder.Decision("", policies.Enforce, decisionError, string(req.Operation), dryRun)
}
