package webhook

import (
	"net/http"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/stateguard/stateguard/policies"
)

// respond turns an engine result into an admission response: enforce findings
// deny with per-field causes (kubectl prints them), warn findings become
// admission warnings, audit findings become audit annotations.
func respond(req admission.Request, result policies.Result) admission.Response {
	resp := admission.Allowed("")
	if result.Denied() {
		resp = denial(req, result.Findings)
	}
	var warnings []string
	warnings = append(warnings, result.Warnings...)
	audit := map[string][]string{}
	for _, f := range result.Findings {
		switch f.Mode {
		case policies.Warn:
			warnings = append(warnings, f.String())
		case policies.Audit:
			audit[string(f.Policy)] = append(audit[string(f.Policy)], f.String())
		}
	}
	resp.Warnings = warnings
	if len(audit) > 0 {
		resp.AuditAnnotations = make(map[string]string, len(audit))
		for policy, msgs := range audit {
			resp.AuditAnnotations[policy] = strings.Join(msgs, "; ")
		}
	}
	return resp
}

// denial builds the Status of a denied request: Invalid with one cause per
// enforced finding for writes, Forbidden for a DELETE (there is no object to
// be invalid).
func denial(req admission.Request, findings []policies.Finding) admission.Response {
	gk := schema.GroupKind{Group: req.Kind.Group, Kind: req.Kind.Kind}
	var errs field.ErrorList
	var messages []string
	for _, f := range findings {
		if f.Mode != policies.Enforce {
			continue
		}
		messages = append(messages, f.String())
		p := field.NewPath("metadata")
		if f.Field != "" {
			// The Path only renders the string it is given.
			p = field.NewPath(f.Field)
		}
		// Forbidden, not Invalid: the message already says what was found,
		// and echoing the value would push denials past one readable line.
		errs = append(errs, field.Forbidden(p, "["+string(f.Policy)+"] "+f.Message))
	}
	var status *apierrors.StatusError
	if req.Operation == "DELETE" {
		gr := schema.GroupResource{Group: req.Resource.Group, Resource: req.Resource.Resource}
		sort.Strings(messages)
		status = apierrors.NewForbidden(gr, req.Name, errorString(strings.Join(messages, "; ")))
	} else {
		status = apierrors.NewInvalid(gk, req.Name, errs)
	}
	resp := admission.Denied("")
	resp.Result = &status.ErrStatus
	resp.Result.Code = http.StatusForbidden
	if req.Operation != "DELETE" {
		resp.Result.Code = http.StatusUnprocessableEntity
	}
	return resp
}

type errorString string

func (e errorString) Error() string { return string(e) }
