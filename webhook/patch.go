package webhook

import (
	"encoding/json"
	"net/http"
	"strings"

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
// as original) to mutated. Diffing the whole objects, as
// admission.PatchResponseFromRaw(raw, json.Marshal(mutated)) does, is most of
// a mutating review's cost. When every mutation lies under
// /spec/volumeClaimTemplates, nothing else differs, so it diffs only the
// claim templates, which gives the same operations: the diff recurses into
// objects key by key, so the operations under /spec/volumeClaimTemplates do
// not depend on the rest of the document. (The one difference: a field the
// webhook's API types do not know, sent by a newer API server, is kept
// instead of being patched away, because both sides of this diff went
// through the same types.) Any other mutation falls back to the whole diff.
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
