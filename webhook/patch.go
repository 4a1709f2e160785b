package webhook

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/stateguard/stateguard/policies"
)

// claimTemplatesPointer is the JSON pointer under which every mutation the
// policies make lies (storage classes, claim templates for dangling mounts,
// snapshot-schedule labels on the templates).
const claimTemplatesPointer = "/spec/volumeClaimTemplates"

// specClaimTemplates serializes claim templates exactly as StatefulSetSpec
// does (same key, same omitempty), so that diffing two of them yields the
// operations that diffing two whole StatefulSets yields under /spec.
type specClaimTemplates struct {
	VolumeClaimTemplates []corev1.PersistentVolumeClaim `json:"volumeClaimTemplates,omitempty"`
}

// patchResponse returns the JSON patch from the reviewed object (raw, decoded
// as original) to mutated: the operations that diffing the whole objects, as
// admission.PatchResponseFromRaw(raw, json.Marshal(mutated)) does, would give.
// That diff is most of a mutating review's cost, so it is taken only when it
// must be:
//
//   - The policies' usual mutations (a class filled in, the schedule label set,
//     templates appended for dangling mounts) are written straight from the
//     mutation list (claimTemplatePatch), comparing just the fields they touch.
//   - Any other mutation under /spec/volumeClaimTemplates diffs only the claim
//     templates, which gives the same operations: the diff recurses into
//     objects key by key, so the operations under /spec/volumeClaimTemplates
//     do not depend on the rest of the document.
//   - Anything else falls back to the whole diff.
//
// (The one difference from the whole diff: a field the webhook's API types do
// not know, sent by a newer API server, is kept instead of being patched away,
// because both sides went through the same types.) TestPatchMatchesWholeObjectDiff
// holds all three to the whole diff.
//
// Only the whole diff needs whole objects: decodeObject leaves out fields
// that lie elsewhere (metadata.managedFields, the last-applied-configuration
// annotation), so a caller that lets it decode the objects must decode them
// in full (decodeWhole) and mutate again when claimTemplatesOnly is false.
func patchResponse(raw []byte, original, mutated *appsv1.StatefulSet, mutations []policies.Mutation) admission.Response {
	if !claimTemplatesOnly(mutations) {
		full, err := json.Marshal(mutated)
		if err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
		return admission.PatchResponseFromRaw(raw, full)
	}
	if ops, ok := claimTemplatePatch(original.Spec.VolumeClaimTemplates, mutated.Spec.VolumeClaimTemplates, mutations); ok {
		return patched(ops)
	}
	before, err := json.Marshal(specClaimTemplates{original.Spec.VolumeClaimTemplates})
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	after, err := json.Marshal(specClaimTemplates{mutated.Spec.VolumeClaimTemplates})
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	resp := admission.PatchResponseFromRaw(before, after)
	for i := range resp.Patches {
		resp.Patches[i].Path = "/spec" + resp.Patches[i].Path
	}
	return resp
}

// patched is the response admission.PatchResponseFromRaw gives for ops.
func patched(ops []jsonpatch.JsonPatchOperation) admission.Response {
	resp := admission.Response{Patches: ops, AdmissionResponse: admissionv1.AdmissionResponse{Allowed: true}}
	if len(ops) > 0 {
		pt := admissionv1.PatchTypeJSONPatch
		resp.PatchType = &pt
	}
	return resp
}

// claimTemplatePatch writes the operations for the policies' usual mutations
// of the claim templates, as the diff of before and after would: appended
// templates added whole (the whole list when there was none: the field was
// absent), a class added where there was none, the schedule label added to
// the labels (the whole map when there were none) or replacing another value.
// It reports false, for the diff to answer, on a mutation of any other shape.
func claimTemplatePatch(before, after []corev1.PersistentVolumeClaim, mutations []policies.Mutation) ([]jsonpatch.JsonPatchOperation, bool) {
	if len(after) < len(before) {
		return nil, false
	}
	if len(before) == 0 {
		return []jsonpatch.JsonPatchOperation{{Operation: "add", Path: claimTemplatesPointer, Value: after}}, true
	}
	ops := make([]jsonpatch.JsonPatchOperation, 0, len(mutations))
	for i := len(before); i < len(after); i++ {
		ops = append(ops, jsonpatch.JsonPatchOperation{Operation: "add", Path: claimTemplatesPointer + "/" + strconv.Itoa(i), Value: after[i]})
	}
	type labelled struct {
		template int
		key      string
	}
	var classed []int
	var labels []labelled
	for _, m := range mutations {
		i, field, ok := templateField(m.Path)
		switch {
		case !ok:
			return nil, false
		case i >= len(before) && i < len(after):
			// Inside a template appended whole above.
		case i >= len(after):
			return nil, false
		case field == "/spec/storageClassName":
			if !slices.Contains(classed, i) {
				classed = append(classed, i)
			}
		case strings.HasPrefix(field, "/metadata/labels/"):
			key, ok := unescapePointer(strings.TrimPrefix(field, "/metadata/labels/"))
			if !ok {
				return nil, false
			}
			if l := (labelled{i, key}); !slices.Contains(labels, l) {
				labels = append(labels, l)
			}
		default:
			return nil, false
		}
	}
	for _, i := range classed {
		was, is := before[i].Spec.StorageClassName, after[i].Spec.StorageClassName
		if was != nil || is == nil {
			return nil, false // not a class filled in
		}
		ops = append(ops, jsonpatch.JsonPatchOperation{Operation: "add", Path: templatePath(i, "/spec/storageClassName"), Value: *is})
	}
	wholeMap := map[int]bool{}
	for _, l := range labels {
		value, ok := after[l.template].Labels[l.key]
		if !ok {
			return nil, false // not a label set
		}
		old := before[l.template].Labels
		switch current, has := old[l.key]; {
		case len(old) == 0:
			// The map was empty, so absent from the JSON: add it whole, once.
			if !wholeMap[l.template] {
				wholeMap[l.template] = true
				ops = append(ops, jsonpatch.JsonPatchOperation{Operation: "add", Path: templatePath(l.template, "/metadata/labels"), Value: after[l.template].Labels})
			}
		case !has:
			ops = append(ops, jsonpatch.JsonPatchOperation{Operation: "add", Path: templatePath(l.template, "/metadata/labels/"+escapePointer(l.key)), Value: value})
		case current != value:
			ops = append(ops, jsonpatch.JsonPatchOperation{Operation: "replace", Path: templatePath(l.template, "/metadata/labels/"+escapePointer(l.key)), Value: value})
		}
	}
	return ops, true
}

// templateField splits a pointer under /spec/volumeClaimTemplates into the
// template's index and the rest ("" for the template itself).
func templateField(path string) (int, string, bool) {
	rest, ok := strings.CutPrefix(path, claimTemplatesPointer+"/")
	if !ok {
		return 0, "", false
	}
	index, field, _ := strings.Cut(rest, "/")
	i, err := strconv.Atoi(index)
	if err != nil || i < 0 || strconv.Itoa(i) != index {
		return 0, "", false
	}
	if field != "" {
		field = "/" + field
	}
	return i, field, true
}

func templatePath(i int, field string) string {
	return claimTemplatesPointer + "/" + strconv.Itoa(i) + field
}

// escapePointer and unescapePointer encode a map key as one JSON pointer
// token (RFC 6901).
func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func unescapePointer(token string) (string, bool) {
	if strings.Contains(token, "/") {
		return "", false
	}
	s := strings.ReplaceAll(strings.ReplaceAll(token, "~1", "/"), "~0", "~")
	return s, escapePointer(s) == token
}

// claimTemplatesOnly reports whether every mutation lies under
// /spec/volumeClaimTemplates, so that patchResponse diffs only the claim
// templates.
func claimTemplatesOnly(mutations []policies.Mutation) bool {
	for _, m := range mutations {
		if m.Path != claimTemplatesPointer && !strings.HasPrefix(m.Path, claimTemplatesPointer+"/") {
			return false
		}
	}
	return true
}
