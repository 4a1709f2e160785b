package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
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
	sreq, errResp := decodeStatefulSetRequest(req)
	if errResp != nil {
		return *errResp
	}
	mutated, mutations, err := h.Engine.MutateStatefulSet(sreq, h.Lookup(ctx))
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	if len(mutations) == 0 {
		return admission.Allowed("")
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
	sreq, errResp := decodeStatefulSetRequest(req)
	if errResp != nil {
		return *errResp
	}
	result, err := h.Engine.ValidateStatefulSet(sreq, h.Lookup(ctx))
	if err != nil {
		h.recordError(req, policies.Enforce)
		return admission.Errored(http.StatusInternalServerError, err)
	}
	h.record(req, result)
	return respond(req, result)
}

func (h *Handlers) validateService(ctx context.Context, req admission.Request) admission.Response {
	if req.Kind.Group != serviceKind.Group || req.Kind.Kind != serviceKind.Kind {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("%s serves Services, not %s", ValidateServicePath, req.Kind.Kind))
	}
	sreq := policies.ServiceRequest{Operation: policies.Operation(req.Operation), Namespace: req.Namespace}
	var err error
	if sreq.Object, err = decodeOptional[corev1.Service](req.Object.Raw); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding object: %w", err))
	}
	if sreq.OldObject, err = decodeOptional[corev1.Service](req.OldObject.Raw); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding oldObject: %w", err))
	}
	result, err := h.Engine.ValidateService(sreq, h.Lookup(ctx))
	if err != nil {
		h.recordError(req, policies.Enforce)
		return admission.Errored(http.StatusInternalServerError, err)
	}
	h.record(req, result)
	return respond(req, result)
}

func decodeStatefulSetRequest(req admission.Request) (policies.StatefulSetRequest, *admission.Response) {
	out := policies.StatefulSetRequest{Operation: policies.Operation(req.Operation), Namespace: req.Namespace}
	fail := func(code int32, err error) (policies.StatefulSetRequest, *admission.Response) {
		resp := admission.Errored(code, err)
		return out, &resp
	}
	if req.Kind.Group != statefulSetKind.Group || req.Kind.Kind != statefulSetKind.Kind {
		return fail(http.StatusBadRequest, fmt.Errorf("this webhook serves apps StatefulSets, not %s", req.Kind.Kind))
	}
	var err error
	if out.Object, err = decodeOptional[appsv1.StatefulSet](req.Object.Raw); err != nil {
		return fail(http.StatusBadRequest, fmt.Errorf("decoding object: %w", err))
	}
	if out.OldObject, err = decodeOptional[appsv1.StatefulSet](req.OldObject.Raw); err != nil {
		return fail(http.StatusBadRequest, fmt.Errorf("decoding oldObject: %w", err))
	}
	return out, nil
}

// decodeOptional decodes raw JSON, or returns nil for an absent object.
func decodeOptional[T any](raw []byte) (*T, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	obj := new(T)
	if err := json.Unmarshal(raw, obj); err != nil {
		return nil, err
	}
	return obj, nil
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

func (h *Handlers) recordError(req admission.Request, mode policies.Mode) {
	dryRun := req.DryRun != nil && *req.DryRun
	h.Recorder.Decision("", mode, decisionError, string(req.Operation), dryRun)
}
