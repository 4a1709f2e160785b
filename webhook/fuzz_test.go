package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	kjson "sigs.k8s.io/json"

	"github.com/stateguard/stateguard/policies"
	"github.com/stateguard/stateguard/test/load/reviews"
)

var (
	fuzzOps   = []string{"CREATE", "UPDATE", "DELETE", "CONNECT", ""}
	fuzzKinds = []metav1.GroupVersionKind{
		{Group: "apps", Version: "v1", Kind: "StatefulSet"},
		{Version: "v1", Kind: "Service"},
		{Group: "apps", Version: "v1beta2", Kind: "StatefulSet"},
		{Group: "apps", Version: "v1", Kind: "Deployment"},
		{Version: "v1", Kind: "Pod"},
	}
	// fuzzNamespaceLabels are the mode labels the reviewed namespace carries.
	fuzzNamespaceLabels = []map[string]string{
		nil,
		{policies.ModeLabel: "warn"},
		{policies.ModeLabel: "audit"},
		{policies.ModeLabel: "disabled"},
		{policies.ModeLabel: "off"},
		{policies.ModeLabel + ".storage-class": "disabled", policies.ModeLabel + ".snapshot-schedule": "warn"},
	}
)

const fuzzUID = "fuzz-uid"

// fuzzReview writes an AdmissionReview around the fuzzed parts by hand, so
// that object bytes that are not JSON (or not an object) reach the server as
// they are, exactly as a hostile client could send them.
func fuzzReview(op string, kind metav1.GroupVersionKind, namespace string, object, oldObject []byte) []byte {
	var b bytes.Buffer
	str := func(s string) {
		q, _ := json.Marshal(s)
		b.Write(q)
	}
	b.WriteString(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":`)
	str(fuzzUID)
	b.WriteString(`,"kind":`)
	k, _ := json.Marshal(kind)
	b.Write(k)
	resource := `{"group":"apps","version":"v1","resource":"statefulsets"}`
	if kind.Kind == "Service" {
		resource = `{"version":"v1","resource":"services"}`
	}
	b.WriteString(`,"resource":` + resource + `,"operation":`)
	str(op)
	b.WriteString(`,"namespace":`)
	str(namespace)
	b.WriteString(`,"name":"db"`)
	if len(object) > 0 {
		b.WriteString(`,"object":`)
		b.Write(object)
	}
	if len(oldObject) > 0 {
		b.WriteString(`,"oldObject":`)
		b.Write(oldObject)
	}
	b.WriteString(`}}`)
	return b.Bytes()
}

// fuzzServe posts a review to one path's handler, wrapped as Run wraps it but
// with controller-runtime's panic recovery off: a panic that got past the
// handlers' own guard crashes the fuzzer instead of becoming a 500.
func fuzzServe(t *testing.T, h admission.Handler, path string, body []byte) *admissionv1.AdmissionReview {
	t.Helper()
	hook := mountAsRun(h, false)
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	hook.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("%s: HTTP %d: %s", path, w.Code, w.Body)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s: the answer is not an AdmissionReview: %v\n%s", path, err, w.Body)
	}
	if out.Response == nil {
		t.Fatalf("%s: no response: %s", path, w.Body)
	}
	return &out
}

func fuzzSeedObjects(f *testing.F) (objects [][]byte) {
	for _, r := range reviews.All(benchNamespace, benchName) {
		var review admissionv1.AdmissionReview
		if err := json.Unmarshal(r.Body, &review); err != nil {
			f.Fatal(err)
		}
		objects = append(objects, review.Request.Object.Raw, review.Request.OldObject.Raw)
	}
	sts := mustObject[appsv1.StatefulSet](f, statefulSetYAML)
	objects = append(objects, jsonOf(f, sts), jsonOf(f, mustObject[corev1.Service](f, serviceYAML)))
	return append(objects,
		[]byte(`{"metadata":{"labels":{"stateguard.dev/snapshot-schedule":"daily"}},"spec":{"serviceName":"db","volumeClaimTemplates":[{"spec":{"storageClassName":""}},{"metadata":{"name":"a"}}],"template":{"metadata":{"labels":{"app":"db"}},"spec":{"initContainers":[{"volumeMounts":[{"name":"a"},{"name":"b"},{"name":""}]}],"containers":[{"volumeMounts":[{"name":"b"},{"name":"c"}]}]}}}}`),
		[]byte(`{"metadata":{"labels":{"stateguard.dev/snapshot-schedule":"hourly"}},"spec":{"volumeClaimTemplates":[{"metadata":{"name":"x","labels":{"stateguard.dev/snapshot-schedule":"weekly"}},"spec":{"accessModes":["ReadWriteMany","ReadWriteOnce"]}}]}}`),
		[]byte(`{"spec":{"volumeClaimTemplates":[{"metadata":{"name":"data"},"spec":{"storageClassName":"managed-csi"}},{"metadata":{"name":"b"}}]}}`),
		[]byte(`{"spec":{"clusterIP":"None","selector":{"app":"other"}}}`),
		// Keys in other cases (encoding/json would take them for spec),
		// and null or absent parents of what the mutator fills in.
		[]byte(`{"metadata":{"labels":{"stateguard.dev/snapshot-schedule":"daily"}},"Spec":{"VolumeClaimTemplates":[{"metadata":{"name":"x"}}]}}`),
		[]byte(`{"metadata":{"labels":{"stateguard.dev/snapshot-schedule":"daily"}},"spec":{"volumeClaimTemplates":[{"metadata":null,"spec":null},{}]}}`),
		[]byte(`null`), []byte(`{}`), []byte(`[]`), []byte(`"x"`),
	)
}

// FuzzAdmissionHandlers sends AdmissionReviews built around valid StatefulSets
// and Services, with the operation, kind, namespace, the namespace's mode
// labels and the objects' JSON bytes fuzzed, through all three webhook paths
// as Run serves them (mountAsRun, controller-runtime's panic recovery off).
// Every answer must be an AdmissionReview with a response for the request's
// UID; nothing panics; a denial says why; only the mutating path patches.
// For the object as the API server would send it (its own encoding of what
// it decoded), the patch applies with the library the API server uses and
// is final: the mutator, given the patched object, patches nothing more.
// (The fuzzed bytes themselves are sent too, for the first properties only:
// a patch is computed against the API server's encoding, which always has,
// say, a claim template's "spec", and is applied to that; found by this
// target, testdata/fuzz/FuzzAdmissionHandlers/b929c40b0f8dbc27.)
func FuzzAdmissionHandlers(f *testing.F) {
	objects := fuzzSeedObjects(f)
	for i, obj := range objects {
		for op := range fuzzOps[:2] {
			old := objects[(i+1)%len(objects)]
			f.Add(uint8(op), uint8(i), "prod", uint8(i), obj, old)
			f.Add(uint8(op), uint8(i), "prod", uint8(0), obj, []byte(nil))
		}
	}
	f.Add(uint8(2), uint8(1), "prod", uint8(0), []byte(nil), jsonOf(f, mustObject[corev1.Service](f, serviceYAML)))
	f.Add(uint8(0), uint8(0), "kube-system", uint8(0), objects[0], []byte(nil))

	engine, err := policies.NewEngine(policies.Config{})
	if err != nil {
		f.Fatal(err)
	}
	lookups := make([]*mapLookup, len(fuzzNamespaceLabels))
	for i, labels := range fuzzNamespaceLabels {
		l := hostileCluster(f)
		l.namespaces["prod"].Labels = labels
		l.services[benchNamespace+"/"+benchName] = l.services["prod/db"]
		for _, sc := range engine.Config().CatalogStorageClasses() {
			l.classes[sc.Name] = sc
		}
		lookups[i] = l
	}

	f.Fuzz(func(t *testing.T, opByte, kindByte uint8, namespace string, nsLabels uint8, object, oldObject []byte) {
		op := fuzzOps[int(opByte)%len(fuzzOps)]
		kind := fuzzKinds[int(kindByte)%len(fuzzKinds)]
		lookup := lookups[int(nsLabels)%len(lookups)]
		rec := &countingRecorder{}
		h := &Handlers{Engine: engine, Recorder: rec, Lookup: func(context.Context) policies.Lookup { return lookup }}
		handlers := h.ForPath()

		// First the bytes as fuzzed, as a client that reaches the webhook
		// directly could send them: the answer must be well formed.
		fuzzCheck(t, handlers, rec, op, kind, namespace, object, oldObject, false)
		// Then the objects as the API server would send them: it decodes what
		// it is given into the API type (case-sensitively) and encodes that
		// for the webhook, and it applies the patch to that encoding. A patch
		// must apply to it and be final.
		canonical, ok := apiServerRendering(object)
		if !ok {
			return
		}
		if old, ok := apiServerRendering(oldObject); ok {
			oldObject = old
		}
		fuzzCheck(t, handlers, rec, op, kind, namespace, canonical, oldObject, true)
	})
}

// apiServerRendering is the JSON the API server sends a webhook for an
// object given as raw: raw decoded case-sensitively into a StatefulSet and
// encoded again. ok is false when raw is absent or does not decode (the API
// server would have refused the request before admission).
func apiServerRendering(raw []byte) ([]byte, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, false
	}
	var sts appsv1.StatefulSet
	if err := kjson.UnmarshalCaseSensitivePreserveInts(raw, &sts); err != nil {
		return nil, false
	}
	out, err := json.Marshal(&sts)
	return out, err == nil
}

// fuzzCheck sends one review through the three paths and checks the answers.
// patches says whether the mutator's patch must apply to object and be final
// (when object is what the API server would send).
func fuzzCheck(t *testing.T, handlers map[string]admission.Handler, rec *countingRecorder, op string, kind metav1.GroupVersionKind, namespace string, object, oldObject []byte, patches bool) {
	t.Helper()
	body := fuzzReview(op, kind, namespace, object, oldObject)
	decodable := json.Valid(body)
	for _, path := range []string{MutateStatefulSetPath, ValidateStatefulSetPath, ValidateServicePath} {
		review := fuzzServe(t, handlers[path], path, body)
		resp := review.Response
		if rec.panics > 0 {
			t.Fatalf("%s: a panic, answered with: %v", path, resp.Result)
		}
		if decodable {
			if resp.UID != fuzzUID {
				t.Fatalf("%s: response UID %q, want %q", path, resp.UID, fuzzUID)
			}
			if review.APIVersion != "admission.k8s.io/v1" || review.Kind != "AdmissionReview" {
				t.Fatalf("%s: answered as %s %s", path, review.APIVersion, review.Kind)
			}
		}
		if !resp.Allowed && (resp.Result == nil || resp.Result.Message == "") {
			t.Fatalf("%s: a denial without a message: %+v", path, resp)
		}
		if len(resp.Patch) == 0 {
			continue
		}
		if path != MutateStatefulSetPath {
			t.Fatalf("%s: a validating webhook patched: %s", path, resp.Patch)
		}
		if !resp.Allowed {
			t.Fatalf("%s: a denial with a patch", path)
		}
		if !patches {
			continue
		}
		patched := fuzzApply(t, object, resp)

		// Idempotence: the API server re-invokes the mutator (reinvocationPolicy
		// IfNeeded) on the object as patched; nothing more may change.
		again := fuzzServe(t, handlers[path], path, fuzzReview(op, kind, namespace, patched, oldObject)).Response
		if !again.Allowed || len(again.Patch) > 0 {
			t.Fatalf("not idempotent: on the patched object the mutator answers allowed=%v %v patch %s\nfirst patch: %s\npatched: %s",
				again.Allowed, again.Result, again.Patch, resp.Patch, patched)
		}
	}
}

// fuzzApply applies the response's JSON patch to the object as sent, with the
// library the API server applies webhook patches with, and checks that the
// result is still a StatefulSet.
func fuzzApply(t *testing.T, object []byte, resp *admissionv1.AdmissionResponse) []byte {
	t.Helper()
	if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("patch type %v", resp.PatchType)
	}
	p, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		t.Fatalf("the patch is not a JSON patch: %v\n%s", err, resp.Patch)
	}
	patched, err := p.Apply(object)
	if err != nil {
		t.Fatalf("the patch does not apply to the reviewed object: %v\npatch:  %s\nobject: %s", err, resp.Patch, object)
	}
	var sts appsv1.StatefulSet
	if err := json.Unmarshal(patched, &sts); err != nil {
		t.Fatalf("the patched object is no StatefulSet: %v\n%s", err, patched)
	}
	return patched
}
