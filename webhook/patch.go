package webhook

import (
	"encoding/json"
	"net/http"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/stateguard/stateguard/policies"
)

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
		return []jsonpatch.JsonPatchOperation{{Operation: "add", Path: policies.ClaimTemplatesPath, Value: after}}, true
	}
	ops := make([]jsonpatch.JsonPatchOperation, 0, len(mutations))
	for i := len(before); i < len(after); i++ {
		ops = append(ops, jsonpatch.JsonPatchOperation{Operation: "add", Path: policies.ClaimTemplatePointer(i, ""), Value: after[i]})
	}
	done := map[string]bool{}     // pointers already patched
	wholeLabels := map[int]bool{} // templates whose labels were added as a map
	for _, m := range mutations {
		c, ok := policies.ParseTemplateChange(m.Path)
		switch {
		case !ok || c.Template >= len(after):
			return nil, false
		case c.Template >= len(before) || done[m.Path]:
			continue // inside a template appended whole above, or patched already
		case c.Class:
			was, is := before[c.Template].Spec.StorageClassName, after[c.Template].Spec.StorageClassName
			if was != nil || is == nil {
				return nil, false // not a class filled in
			}
			ops = append(ops, jsonpatch.JsonPatchOperation{Operation: "add", Path: m.Path, Value: *is})
		case c.LabelKey != "":
			value, ok := after[c.Template].Labels[c.LabelKey]
			if !ok {
				return nil, false // not a label set
			}
			old := before[c.Template].Labels
			switch current, has := old[c.LabelKey]; {
			case len(old) == 0:
				// The map was empty, so absent from the JSON: add it whole, once.
				if !wholeLabels[c.Template] {
					wholeLabels[c.Template] = true
					labels := m.Path[:strings.LastIndex(m.Path, "/")] // the label's key cannot hold a "/": it is escaped
					ops = append(ops, jsonpatch.JsonPatchOperation{Operation: "add", Path: labels, Value: after[c.Template].Labels})
				}
			case !has:
				ops = append(ops, jsonpatch.JsonPatchOperation{Operation: "add", Path: m.Path, Value: value})
			case current != value:
				ops = append(ops, jsonpatch.JsonPatchOperation{Operation: "replace", Path: m.Path, Value: value})
			}
		default:
			return nil, false // a template that existed before, replaced whole
		}
		done[m.Path] = true
	}
	return ops, true
}

// claimTemplatesOnly reports whether every mutation lies under
// /spec/volumeClaimTemplates, so that patchResponse diffs only the claim
// templates.
func claimTemplatesOnly(mutations []policies.Mutation) bool {
	for _, m := range mutations {
		if m.Path != policies.ClaimTemplatesPath && !strings.HasPrefix(m.Path, policies.ClaimTemplatesPath+"/") {
			return false
		}
	}
	return true
}
