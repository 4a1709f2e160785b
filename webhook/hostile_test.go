package webhook

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"

	"github.com/stateguard/stateguard/policies"
)

// The tests in this file post hostile and malformed AdmissionReviews over
// real HTTPS to the handlers, mounted the way Run registers them (each in
// controller-runtime's admission webhook, panic recovery on; see mountAsRun),
// on a server with Run's TLS settings. Whatever arrives, the
// answer is an AdmissionReview (or an HTTP error) within a bounded time, the
// process does not crash, and the next ordinary request is still served.

// hostileDeadline bounds every single request. The slowest case here (5,000
// claim templates through the mutating webhook) takes well under a second;
// the bound leaves room for a loaded CI machine, and stays far below the
// API server's own 30s maximum for timeoutSeconds.
const hostileDeadline = 15 * time.Second

// testingT is what the helpers below need of a test: a *testing.T, or a
// goroutineT in the goroutines of the concurrent test.
type testingT interface {
	require.TestingT
	Helper()
}

// goroutineT collects the failures of one goroutine of a test, which may not
// call t.FailNow itself; FailNow ends the goroutine.
type goroutineT struct {
	mu   sync.Mutex
	errs []string
}

func (g *goroutineT) Errorf(format string, args ...any) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.errs = append(g.errs, fmt.Sprintf(format, args...))
}
func (g *goroutineT) FailNow() { runtime.Goexit() }
func (g *goroutineT) Helper()  {}

// report copies the collected failures to t.
func (g *goroutineT) report(t *testing.T, who string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, e := range g.errs {
		t.Errorf("%s: %s", who, e)
	}
}

// mountAsRun is the http.Handler that Run registers on the webhook server
// for one path's handler (mount, with the production deadline; the server's
// Register adds only its request metrics around it). The hostile, fuzz and
// TLS tests all serve through it.
func mountAsRun(h admission.Handler, recoverPanic bool) http.Handler {
	return mount(h, recoverPanic, nil, reviewTimeout)
}

// serveHandlers serves every webhook path as Run does, on an HTTPS server
// with Run's TLS settings, and returns the server.
func serveHandlers(t testing.TB, h *Handlers) *httptest.Server {
	t.Helper()
	return serveHandlersWithin(t, h, reviewTimeout)
}

// serveHandlersWithin is serveHandlers with another exchange deadline than
// Run's.
func serveHandlersWithin(t testing.TB, h *Handlers, timeout time.Duration) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	for path, handler := range h.ForPath() {
		mux.Handle(path, mount(handler, true, nil, timeout))
	}
	srv := httptest.NewUnstartedServer(mux)
	// What controller-runtime's webhook server starts from, then Run's options.
	srv.TLS = &tls.Config{NextProtos: []string{"h2"}}
	hardenTLS(srv.TLS)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// served is one HTTP exchange with a webhook path.
type served struct {
	status int
	body   []byte
	review admissionv1.AdmissionReview
	// apiVersion and kind of the AdmissionReview sent back ("" if none).
	apiVersion, kind string
}

// postTo sends body to path and reads the answer, failing unless it arrives
// within hostileDeadline. The deadline is a context on the request: a handler
// that hangs or spins makes this return an error, not the test hang.
func postTo(srv *httptest.Server, path, contentType string, body io.Reader) (*served, error) {
	ctx, cancel := context.WithTimeout(context.Background(), hostileDeadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+path, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	// An answer is an AdmissionReview with one response in it: kilobytes,
	// or a few MB for a patch of thousands of operations. Never more.
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, err
	}
	out := &served{status: resp.StatusCode, body: raw}
	if resp.StatusCode != http.StatusOK {
		return out, nil
	}
	if err := json.Unmarshal(raw, &out.review); err != nil {
		return out, fmt.Errorf("the answer is not an AdmissionReview: %w: %.300s", err, raw)
	}
	out.apiVersion, out.kind = out.review.APIVersion, out.review.Kind
	return out, nil
}

// wellFormed checks what every answer must be: HTTP 200 carrying an
// AdmissionReview with a response, and a denial that says why. (Errors
// before the review is decoded carry no apiVersion: there is no version to
// answer in, and the API server never sends such a request.)
func wellFormed(t testingT, s *served, uid string) *admissionv1.AdmissionResponse {
	t.Helper()
	require.Equal(t, http.StatusOK, s.status, "%.300s", s.body)
	resp := s.review.Response
	require.NotNil(t, resp, "no response in %.300s", s.body)
	assert.Equal(t, uid, string(resp.UID), "the response answers another request")
	if !resp.Allowed {
		require.NotNil(t, resp.Result, "a denial without a status")
		assert.NotEmpty(t, resp.Result.Message, "a denial without a message")
		assert.NotZero(t, resp.Result.Code)
	}
	if uid != "" {
		assert.Equal(t, "AdmissionReview", s.kind)
		assert.NotEmpty(t, s.apiVersion)
	}
	return resp
}

// reviewJSON is an AdmissionReview of the given version around req.
func reviewJSON(t testingT, apiVersion string, req admissionv1.AdmissionRequest) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"apiVersion": apiVersion, "kind": "AdmissionReview", "request": req})
	require.NoError(t, err)
	return b
}

// rawRequest is an AdmissionRequest for a StatefulSet or Service in prod whose
// object is given as JSON bytes, exactly as they go on the wire.
func rawRequest(uid string, op admissionv1.Operation, kind metav1.GroupVersionKind, object, oldObject []byte) admissionv1.AdmissionRequest {
	req := admissionv1.AdmissionRequest{UID: types.UID("uid-" + uid), Kind: kind, Operation: op, Namespace: "prod", Name: "db"}
	req.Resource = metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}
	if kind.Kind == "Service" {
		req.Resource = metav1.GroupVersionResource{Version: "v1", Resource: "services"}
	}
	req.RequestKind, req.RequestResource = &req.Kind, &req.Resource
	req.Object.Raw, req.OldObject.Raw = object, oldObject
	return req
}

// safeRecorder counts panics, and records nothing else; unlike
// countingRecorder it is safe for reviews served concurrently.
type safeRecorder struct {
	NopRecorder
	panics atomic.Int64
}

func (r *safeRecorder) Panic(string) { r.panics.Add(1) }

// hostileHandlers are the handlers with the default config over
// hostileCluster, recording panics.
func hostileHandlers(t testing.TB) (*Handlers, *safeRecorder) {
	engine, err := policies.NewEngine(policies.Config{})
	require.NoError(t, err)
	lookup := hostileCluster(t)
	rec := &safeRecorder{}
	return &Handlers{Engine: engine, Recorder: rec, Lookup: func(context.Context) policies.Lookup { return lookup }}, rec
}

// hostileCluster is goodCluster with the fixture StatefulSet in it, so that
// the Service guard has something to protect.
func hostileCluster(t testing.TB) *mapLookup {
	c := goodCluster(t)
	c.statefulSets = []*appsv1.StatefulSet{mustObject[appsv1.StatefulSet](t, statefulSetYAML)}
	return c
}

func jsonOf(t testingT, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// fixtureJSON decodes a YAML fixture into obj and returns its JSON.
func fixtureJSON(t testingT, y string, obj any) []byte {
	t.Helper()
	require.NoError(t, yaml.UnmarshalStrict([]byte(y), obj))
	return jsonOf(t, obj)
}

// applyPatchTo applies a response's JSON patch to the reviewed object with the
// library (and version) the API server uses for webhook patches.
func applyPatchTo(t testingT, object []byte, resp *admissionv1.AdmissionResponse) []byte {
	t.Helper()
	require.NotNil(t, resp.PatchType)
	require.Equal(t, admissionv1.PatchTypeJSONPatch, *resp.PatchType)
	p, err := jsonpatch.DecodePatch(resp.Patch)
	require.NoError(t, err, "%.300s", resp.Patch)
	out, err := p.Apply(object)
	require.NoError(t, err, "applying %.300s", resp.Patch)
	return out
}

// assertServesNormally sends the three ordinary requests the cluster sends
// all day and checks the verdicts: CREATE of a good StatefulSet is patched
// (class and schedule label on its claim template) and admitted, and deleting
// the headless Service it names is denied.
func assertServesNormally(t testingT, srv *httptest.Server, uid string) {
	t.Helper()
	sts := fixtureJSON(t, statefulSetYAML, &appsv1.StatefulSet{})
	svc := fixtureJSON(t, serviceYAML, &corev1.Service{})

	s, err := postTo(srv, MutateStatefulSetPath, "application/json", bytes.NewReader(reviewJSON(t, "admission.k8s.io/v1",
		rawRequest(uid+"-mutate", admissionv1.Create, stsKind, sts, nil))))
	require.NoError(t, err)
	resp := wellFormed(t, s, "uid-"+uid+"-mutate")
	require.True(t, resp.Allowed)
	var patched appsv1.StatefulSet
	require.NoError(t, json.Unmarshal(applyPatchTo(t, sts, resp), &patched))
	require.Len(t, patched.Spec.VolumeClaimTemplates, 1)
	require.NotNil(t, patched.Spec.VolumeClaimTemplates[0].Spec.StorageClassName)
	assert.Equal(t, "managed-csi", *patched.Spec.VolumeClaimTemplates[0].Spec.StorageClassName)
	assert.Equal(t, "daily", patched.Spec.VolumeClaimTemplates[0].Labels["stateguard.dev/snapshot-schedule"])

	s, err = postTo(srv, ValidateStatefulSetPath, "application/json", bytes.NewReader(reviewJSON(t, "admission.k8s.io/v1",
		rawRequest(uid+"-validate", admissionv1.Create, stsKind, jsonOf(t, &patched), nil))))
	require.NoError(t, err)
	resp = wellFormed(t, s, "uid-"+uid+"-validate")
	require.True(t, resp.Allowed, "%v", resp.Result)

	s, err = postTo(srv, ValidateServicePath, "application/json", bytes.NewReader(reviewJSON(t, "admission.k8s.io/v1",
		rawRequest(uid+"-guard", admissionv1.Delete, svcKind, nil, svc))))
	require.NoError(t, err)
	resp = wellFormed(t, s, "uid-"+uid+"-guard")
	require.False(t, resp.Allowed)
	assert.Equal(t, int32(http.StatusForbidden), resp.Result.Code)
}

// hostileCase is one malformed or hostile request and what its answer must be
// beyond being well formed.
type hostileCase struct {
	name        string
	path        string
	contentType string
	body        func(t testingT) []byte
	// uid is the UID the answer must carry: "" when the request never
	// decodes (or has none).
	uid string
	// check, if set, looks at the response further.
	check func(t testingT, resp *admissionv1.AdmissionResponse, s *served)
}

// badRequest checks an HTTP-level error (body, content type, decoding): a
// denial with code 400.
func badRequest(contains string) func(testingT, *admissionv1.AdmissionResponse, *served) {
	return func(t testingT, resp *admissionv1.AdmissionResponse, _ *served) {
		assert.False(t, resp.Allowed)
		assert.Equal(t, int32(http.StatusBadRequest), resp.Result.Code)
		assert.Contains(t, resp.Result.Message, contains)
	}
}

func allowed(t testingT, resp *admissionv1.AdmissionResponse, _ *served) {
	assert.True(t, resp.Allowed, "%v", resp.Result)
}

// deepNesting is n opening brackets and as many closing ones.
func deepNesting(n int) []byte {
	return append(bytes.Repeat([]byte("["), n), bytes.Repeat([]byte("]"), n)...)
}

func hostileCases(t testing.TB) []hostileCase {
	sts := mustObject[appsv1.StatefulSet](t, statefulSetYAML)
	stsJSON := jsonOf(t, sts)
	svcObj := mustObject[corev1.Service](t, serviceYAML)
	svcJSON := jsonOf(t, svcObj)
	v1 := "admission.k8s.io/v1"
	paths := []string{MutateStatefulSetPath, ValidateStatefulSetPath, ValidateServicePath}
	kindFor := map[string]metav1.GroupVersionKind{MutateStatefulSetPath: stsKind, ValidateStatefulSetPath: stsKind, ValidateServicePath: svcKind}
	objectFor := map[string][]byte{MutateStatefulSetPath: stsJSON, ValidateStatefulSetPath: stsJSON, ValidateServicePath: svcJSON}
	opFor := map[string]admissionv1.Operation{MutateStatefulSetPath: admissionv1.Create, ValidateStatefulSetPath: admissionv1.Create, ValidateServicePath: admissionv1.Update}

	var cases []hostileCase
	for _, path := range paths {
		good := func(t testingT) []byte {
			return reviewJSON(t, v1, rawRequest("good", opFor[path], kindFor[path], objectFor[path], objectFor[path]))
		}
		short := strings.TrimPrefix(path, "/")
		cases = append(cases,
			hostileCase{name: short + " empty body", path: path, contentType: "application/json",
				body: func(t testingT) []byte { return nil }, check: badRequest("request body is empty")},
			hostileCase{name: short + " wrong content type", path: path, contentType: "text/plain", body: good, check: badRequest("expected application/json")},
			hostileCase{name: short + " no content type", path: path, body: good, check: badRequest("expected application/json")},
			hostileCase{name: short + " not JSON", path: path, contentType: "application/json",
				body: func(t testingT) []byte { return []byte("<AdmissionReview/>") }, check: badRequest("")},
			hostileCase{name: short + " truncated JSON", path: path, contentType: "application/json",
				body: func(t testingT) []byte { b := good(t); return b[:len(b)/2] }, check: badRequest("")},
			hostileCase{name: short + " JSON null", path: path, contentType: "application/json",
				body: func(t testingT) []byte { return []byte("null") }, check: badRequest("")},
			hostileCase{name: short + " not an AdmissionReview", path: path, contentType: "application/json",
				body: func(t testingT) []byte { return stsJSON }, check: badRequest("")},
			hostileCase{name: short + " review without a request", path: path, contentType: "application/json",
				body:  func(testingT) []byte { return []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`) },
				check: badRequest("")},
			hostileCase{name: short + " request without a kind", path: path, contentType: "application/json", uid: "uid-nokind",
				body: func(t testingT) []byte {
					return []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"uid-nokind","operation":"CREATE"}}`)
				},
				check: badRequest("")},
			hostileCase{name: short + " 100k nested brackets as the body", path: path, contentType: "application/json",
				body: func(t testingT) []byte { return deepNesting(100_000) }, check: badRequest("")},
			hostileCase{name: short + " 100k nested brackets as the object", path: path, contentType: "application/json",
				body: func(t testingT) []byte {
					return []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"deep","object":` + string(deepNesting(100_000)) + `}}`)
				}, check: badRequest("")},
			hostileCase{name: short + " 100k nested objects in an unknown field", path: path, contentType: "application/json",
				body: func(t testingT) []byte {
					// Built by hand: encoding/json refuses to write it.
					deep := strings.Repeat(`{"a":`, 100_000) + "1" + strings.Repeat("}", 100_000)
					return []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"deep","kind":{"group":"apps","version":"v1","kind":"StatefulSet"},"operation":"CREATE","object":{"metadata":{"name":"db"},"x":` + deep + `}}}`)
				}, check: badRequest("")},
			hostileCase{name: short + " 9,000 nested arrays in an unknown field", path: path, contentType: "application/json", uid: "uid-deep-ok",
				// Under the decoders' limit: decoded, and skipped as unknown.
				body: func(t testingT) []byte {
					obj := strings.Replace(string(objectFor[path]), `{`, `{"x":`+string(deepNesting(9000))+`,`, 1)
					return reviewJSON(t, v1, rawRequest("deep-ok", opFor[path], kindFor[path], []byte(obj), objectFor[path]))
				}},
			hostileCase{name: short + " wrong field types", path: path, contentType: "application/json", uid: "uid-types",
				body: func(t testingT) []byte {
					return reviewJSON(t, v1, rawRequest("types", opFor[path], kindFor[path], []byte(`{"metadata":{"labels":["a"]},"spec":{"replicas":"three","selector":7}}`), nil))
				}, check: badRequest("decoding object")},
			hostileCase{name: short + " number out of range", path: path, contentType: "application/json", uid: "uid-range",
				body: func(t testingT) []byte {
					return reviewJSON(t, v1, rawRequest("range", opFor[path], kindFor[path], []byte(`{"spec":{"replicas":1e400,"ports":[{"port":1e400}]}}`), nil))
				}, check: badRequest("decoding object")},
			hostileCase{name: short + " UID of 1 MiB", path: path, contentType: "application/json", uid: "uid-" + strings.Repeat("u", 1<<20),
				body: func(t testingT) []byte {
					return reviewJSON(t, v1, rawRequest(strings.Repeat("u", 1<<20), opFor[path], kindFor[path], objectFor[path], objectFor[path]))
				}},
		)
	}

	// Wrong kind or resource for the path.
	cases = append(cases,
		hostileCase{name: "a Service to the StatefulSet mutator", path: MutateStatefulSetPath, contentType: "application/json", uid: "uid-svc-to-mutate",
			body: func(t testingT) []byte {
				return reviewJSON(t, v1, rawRequest("svc-to-mutate", admissionv1.Create, svcKind, svcJSON, nil))
			}, check: badRequest("not Service")},
		hostileCase{name: "a Service to the StatefulSet validator", path: ValidateStatefulSetPath, contentType: "application/json", uid: "uid-svc-to-validate",
			body: func(t testingT) []byte {
				return reviewJSON(t, v1, rawRequest("svc-to-validate", admissionv1.Create, svcKind, svcJSON, nil))
			}, check: badRequest("not Service")},
		hostileCase{name: "a StatefulSet to the Service guard", path: ValidateServicePath, contentType: "application/json", uid: "uid-sts-to-svc",
			body: func(t testingT) []byte {
				return reviewJSON(t, v1, rawRequest("sts-to-svc", admissionv1.Delete, stsKind, nil, stsJSON))
			}, check: badRequest("not StatefulSet")},
		hostileCase{name: "a Pod to the StatefulSet validator", path: ValidateStatefulSetPath, contentType: "application/json", uid: "uid-pod",
			body: func(t testingT) []byte {
				req := rawRequest("pod", admissionv1.Create, metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, []byte(`{"spec":{"containers":[]}}`), nil)
				req.Resource = metav1.GroupVersionResource{Version: "v1", Resource: "pods"}
				return reviewJSON(t, v1, req)
			}, check: badRequest("not Pod")},
		hostileCase{name: "a StatefulSet kind in another group", path: MutateStatefulSetPath, contentType: "application/json", uid: "uid-group",
			body: func(t testingT) []byte {
				return reviewJSON(t, v1, rawRequest("group", admissionv1.Create, metav1.GroupVersionKind{Group: "evil.example.com", Version: "v1", Kind: "StatefulSet"}, stsJSON, nil))
			}, check: badRequest("")},
		hostileCase{name: "a StatefulSet kind with the resource of a Pod", path: MutateStatefulSetPath, contentType: "application/json", uid: "uid-resource",
			// The kind decides what the object is decoded as; the API server
			// always sends the two in agreement.
			body: func(t testingT) []byte {
				req := rawRequest("resource", admissionv1.Create, stsKind, stsJSON, nil)
				req.Resource = metav1.GroupVersionResource{Version: "v1", Resource: "pods"}
				return reviewJSON(t, v1, req)
			}, check: allowed},
		hostileCase{name: "a StatefulSet as the scale subresource", path: ValidateStatefulSetPath, contentType: "application/json", uid: "uid-scale",
			// Not registered, but if it came, it is judged by its kind.
			body: func(t testingT) []byte {
				req := rawRequest("scale", admissionv1.Update, metav1.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"}, []byte(`{"spec":{"replicas":3}}`), nil)
				req.SubResource = "scale"
				return reviewJSON(t, v1, req)
			}, check: badRequest("not Scale")},
	)

	// DELETE with a null object (the API server sends the old one).
	cases = append(cases,
		hostileCase{name: "DELETE with a null object to the mutator", path: MutateStatefulSetPath, contentType: "application/json", uid: "uid-del-mutate",
			body: func(t testingT) []byte {
				return reviewJSON(t, v1, rawRequest("del-mutate", admissionv1.Delete, stsKind, []byte("null"), stsJSON))
			}, check: func(t testingT, resp *admissionv1.AdmissionResponse, _ *served) {
				assert.True(t, resp.Allowed)
				assert.Empty(t, resp.Patch)
			}},
		hostileCase{name: "DELETE with a null object to the validator", path: ValidateStatefulSetPath, contentType: "application/json", uid: "uid-del-validate",
			body: func(t testingT) []byte {
				return reviewJSON(t, v1, rawRequest("del-validate", admissionv1.Delete, stsKind, []byte("null"), nil))
			}, check: allowed},
		hostileCase{name: "DELETE of a named headless Service, null object", path: ValidateServicePath, contentType: "application/json", uid: "uid-del-guard",
			body: func(t testingT) []byte {
				return reviewJSON(t, v1, rawRequest("del-guard", admissionv1.Delete, svcKind, []byte("null"), svcJSON))
			}, check: func(t testingT, resp *admissionv1.AdmissionResponse, _ *served) {
				assert.False(t, resp.Allowed)
				assert.Equal(t, int32(http.StatusForbidden), resp.Result.Code)
			}},
		hostileCase{name: "DELETE with both objects null", path: ValidateServicePath, contentType: "application/json", uid: "uid-del-null",
			body: func(t testingT) []byte {
				return reviewJSON(t, v1, rawRequest("del-null", admissionv1.Delete, svcKind, []byte("null"), []byte("null")))
			}, check: allowed},
	)

	// A v1beta1 review is answered as v1beta1.
	cases = append(cases, hostileCase{name: "v1beta1 AdmissionReview", path: MutateStatefulSetPath, contentType: "application/json", uid: "uid-beta",
		body: func(t testingT) []byte {
			return reviewJSON(t, "admission.k8s.io/v1beta1", rawRequest("beta", admissionv1.Create, stsKind, stsJSON, nil))
		}, check: func(t testingT, resp *admissionv1.AdmissionResponse, s *served) {
			assert.Equal(t, "admission.k8s.io/v1beta1", s.apiVersion)
			assert.True(t, resp.Allowed)
			var patched appsv1.StatefulSet
			require.NoError(t, json.Unmarshal(applyPatchTo(t, stsJSON, resp), &patched))
			assert.NotNil(t, patched.Spec.VolumeClaimTemplates[0].Spec.StorageClassName)
		}})

	// Unknown fields everywhere are ignored, as the API server's own
	// decoding of a newer client's object would.
	cases = append(cases, hostileCase{name: "unknown fields at every level", path: MutateStatefulSetPath, contentType: "application/json", uid: "uid-unknown",
		body: func(t testingT) []byte {
			obj := strings.Replace(string(stsJSON), `"spec":{`, `"spec":{"fromTheFuture":{"x":[1,2,3]},`, 1)
			obj = strings.Replace(obj, `"metadata":{`, `"metadata":{"surprise":true,`, 1)
			req := string(jsonOf(t, rawRequest("unknown", admissionv1.Create, stsKind, []byte(obj), nil)))
			req = strings.Replace(req, `{`, `{"extraRequestField":"x",`, 1)
			return []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","bogus":{"a":1},"request":` + req + `}`)
		}, check: func(t testingT, resp *admissionv1.AdmissionResponse, _ *served) {
			assert.True(t, resp.Allowed)
			obj := strings.Replace(string(stsJSON), `"spec":{`, `"spec":{"fromTheFuture":{"x":[1,2,3]},`, 1)
			obj = strings.Replace(obj, `"metadata":{`, `"metadata":{"surprise":true,`, 1)
			patched := applyPatchTo(t, []byte(obj), resp)
			assert.Contains(t, string(patched), `"fromTheFuture"`, "a field the webhook does not know survives its patch")
			assert.Contains(t, string(patched), `"storageClassName":"managed-csi"`)
		}})

	// Over the API server's 3 MiB request limit, under controller-runtime's
	// 7 MiB: reviewed like any other.
	cases = append(cases, hostileCase{name: "4 MiB object", path: MutateStatefulSetPath, contentType: "application/json", uid: "uid-4mib",
		body: func(t testingT) []byte {
			big := sts.DeepCopy()
			big.Annotations = map[string]string{"blob": strings.Repeat("x", 4<<20)}
			return reviewJSON(t, v1, rawRequest("4mib", admissionv1.Create, stsKind, jsonOf(t, big), nil))
		}, check: func(t testingT, resp *admissionv1.AdmissionResponse, _ *served) {
			assert.True(t, resp.Allowed)
			assert.NotEmpty(t, resp.Patch)
			assert.Less(t, len(resp.Patch), 4096, "the patch does not echo the object")
		}})

	// Huge label maps: 100k labels on the StatefulSet and its pod template,
	// and 100k in a Service selector.
	manyLabels := func(prefix string) map[string]string {
		m := make(map[string]string, 100_000)
		for i := 0; i < 100_000; i++ {
			m[fmt.Sprintf("%s%06d", prefix, i)] = "v"
		}
		return m
	}
	labelled := func() *appsv1.StatefulSet {
		s := sts.DeepCopy()
		for k, v := range manyLabels("example.com/l") {
			s.Labels[k] = v
		}
		s.Spec.Template.Labels = manyLabels("example.com/p")
		s.Spec.Template.Labels["app"] = "db"
		return s
	}
	for _, path := range []string{MutateStatefulSetPath, ValidateStatefulSetPath} {
		cases = append(cases, hostileCase{name: strings.TrimPrefix(path, "/") + " 100k labels", path: path, contentType: "application/json", uid: "uid-labels",
			body: func(t testingT) []byte {
				return reviewJSON(t, v1, rawRequest("labels", admissionv1.Create, stsKind, jsonOf(t, labelled()), nil))
			}, check: allowed})
	}
	cases = append(cases, hostileCase{name: "Service selector of 100k labels", path: ValidateServicePath, contentType: "application/json", uid: "uid-selector",
		body: func(t testingT) []byte {
			moved := svcObj.DeepCopy()
			moved.Spec.Selector = manyLabels("example.com/s")
			return reviewJSON(t, v1, rawRequest("selector", admissionv1.Update, svcKind, jsonOf(t, moved), svcJSON))
		}, check: func(t testingT, resp *admissionv1.AdmissionResponse, _ *served) {
			assert.False(t, resp.Allowed, "the new selector no longer selects the StatefulSet's pods")
		}})

	// Thousands of claim templates, none with a class: 10,000 patch
	// operations that must still apply, and mutation stays idempotent.
	templated := func() *appsv1.StatefulSet {
		s := sts.DeepCopy()
		tmpl := s.Spec.VolumeClaimTemplates[0]
		s.Spec.VolumeClaimTemplates = make([]corev1.PersistentVolumeClaim, 5000)
		for i := range s.Spec.VolumeClaimTemplates {
			s.Spec.VolumeClaimTemplates[i] = *tmpl.DeepCopy()
			if i > 0 { // the first stays "data", which the container mounts
				s.Spec.VolumeClaimTemplates[i].Name = fmt.Sprintf("data-%04d", i)
			}
		}
		return s
	}
	cases = append(cases,
		hostileCase{name: "5,000 claim templates to the mutator", path: MutateStatefulSetPath, contentType: "application/json", uid: "uid-templates",
			body: func(t testingT) []byte {
				return reviewJSON(t, v1, rawRequest("templates", admissionv1.Create, stsKind, jsonOf(t, templated()), nil))
			}, check: func(t testingT, resp *admissionv1.AdmissionResponse, _ *served) {
				require.True(t, resp.Allowed)
				var patched appsv1.StatefulSet
				require.NoError(t, json.Unmarshal(applyPatchTo(t, jsonOf(t, templated()), resp), &patched))
				require.Equal(t, 5000, len(patched.Spec.VolumeClaimTemplates))
				for _, tmpl := range patched.Spec.VolumeClaimTemplates {
					require.NotNil(t, tmpl.Spec.StorageClassName, tmpl.Name)
					require.Equal(t, "daily", tmpl.Labels["stateguard.dev/snapshot-schedule"], tmpl.Name)
				}
			}},
		hostileCase{name: "5,000 claim templates to the validator", path: ValidateStatefulSetPath, contentType: "application/json", uid: "uid-templates",
			body: func(t testingT) []byte {
				s := templated()
				bogus := "no-such-class"
				for i := range s.Spec.VolumeClaimTemplates {
					s.Spec.VolumeClaimTemplates[i].Spec.StorageClassName = &bogus
				}
				return reviewJSON(t, v1, rawRequest("templates", admissionv1.Create, stsKind, jsonOf(t, s), nil))
			}, check: func(t testingT, resp *admissionv1.AdmissionResponse, _ *served) {
				assert.False(t, resp.Allowed)
				assert.Equal(t, int32(http.StatusUnprocessableEntity), resp.Result.Code)
			}},
		hostileCase{name: "5,000 dangling volume mounts", path: MutateStatefulSetPath, contentType: "application/json", uid: "uid-mounts",
			body: func(t testingT) []byte {
				s := sts.DeepCopy()
				for i := 0; i < 5000; i++ {
					s.Spec.Template.Spec.Containers[0].VolumeMounts = append(s.Spec.Template.Spec.Containers[0].VolumeMounts,
						corev1.VolumeMount{Name: fmt.Sprintf("m-%04d", i), MountPath: fmt.Sprintf("/m/%d", i)})
				}
				return reviewJSON(t, v1, rawRequest("mounts", admissionv1.Create, stsKind, jsonOf(t, s), nil))
			}, check: func(t testingT, resp *admissionv1.AdmissionResponse, _ *served) {
				assert.True(t, resp.Allowed)
				assert.NotEmpty(t, resp.Patch)
			}},
	)
	return cases
}

// runHostile sends one case and checks its answer.
func runHostile(t testingT, srv *httptest.Server, c hostileCase) {
	t.Helper()
	body := c.body(t)
	var r io.Reader = http.NoBody
	if len(body) > 0 {
		r = bytes.NewReader(body)
	}
	s, err := postTo(srv, c.path, c.contentType, r)
	require.NoError(t, err, "%s: no well-formed answer within %s", c.name, hostileDeadline)
	resp := wellFormed(t, s, c.uid)
	if c.check != nil {
		c.check(t, resp, s)
	}
}

func TestHostileRequestsOverHTTP(t *testing.T) {
	h, rec := hostileHandlers(t)
	srv := serveHandlers(t, h)
	for _, c := range hostileCases(t) {
		t.Run(c.name, func(t *testing.T) {
			runHostile(t, srv, c)
		})
	}
	assert.Zero(t, rec.panics.Load(), "no hostile request reached a panic")
	assertServesNormally(t, srv, "after")
}

// TestHostileRequestsConcurrently sends every hostile case from a few
// goroutines at once while another keeps sending ordinary requests: those
// must keep getting their normal verdicts throughout.
func TestHostileRequestsConcurrently(t *testing.T) {
	if testing.Short() {
		t.Skip("sends every hostile case four times over")
	}
	h, rec := hostileHandlers(t)
	srv := serveHandlers(t, h)
	cases := hostileCases(t)

	const attackers = 3
	var wg sync.WaitGroup
	attackerTs := make([]*goroutineT, attackers)
	for a := range attackerTs {
		attackerTs[a] = &goroutineT{}
		wg.Add(1)
		go func(gt *goroutineT, a int) {
			defer wg.Done()
			// Each attacker starts at a different case, so that different
			// requests overlap.
			for i := range cases {
				runHostile(gt, srv, cases[(i+a*len(cases)/attackers)%len(cases)])
			}
		}(attackerTs[a], a)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	// Meanwhile, ordinary requests keep getting their verdicts.
	normalT := &goroutineT{}
	rounds := 0
	normalDone := make(chan struct{})
	go func() {
		defer close(normalDone)
		for {
			select {
			case <-done:
				return
			default:
			}
			assertServesNormally(normalT, srv, fmt.Sprintf("during-%d", rounds))
			rounds++
		}
	}()
	<-normalDone
	for a, gt := range attackerTs {
		gt.report(t, fmt.Sprintf("attacker %d", a))
	}
	normalT.report(t, "ordinary requests")
	t.Logf("%d rounds of ordinary requests served while %d goroutines sent %d hostile requests each", rounds, attackers, len(cases))
	assert.Positive(t, rounds)
	assert.Zero(t, rec.panics.Load())
	assertServesNormally(t, srv, "after")
}

// endlessBody is a request body of n bytes that exist only as they are read:
// a client streaming a huge review costs the test nothing, so memory growth
// is the server's alone. It counts what the server consumed.
type endlessBody struct {
	mu       sync.Mutex
	n, read  int64
	prefix   []byte
	filler   byte
	maxChunk int
}

func newEndlessBody(n int64) *endlessBody {
	return &endlessBody{n: n, filler: 'x', maxChunk: 64 << 10,
		prefix: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"huge","object":{"metadata":{"annotations":{"a":"`)}
}

func (b *endlessBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.read >= b.n {
		return 0, io.EOF
	}
	if len(p) > b.maxChunk {
		p = p[:b.maxChunk]
	}
	if rest := b.n - b.read; int64(len(p)) > rest {
		p = p[:rest]
	}
	for i := range p {
		if off := b.read + int64(i); off < int64(len(b.prefix)) {
			p[i] = b.prefix[off]
		} else {
			p[i] = b.filler
		}
	}
	b.read += int64(len(p))
	return len(p), nil
}

func (b *endlessBody) consumed() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.read
}

// controllerRuntimeBodyLimit is what controller-runtime's admission webhook
// reads of a request body at most (admission.maxRequestSize, unexported):
// two 3 MiB objects and room for the rest of the review.
const controllerRuntimeBodyLimit = 7 << 20

// TestOversizedBodyIsRefusedInBoundedMemory sends a 1 GiB review: the
// webhook reads no more than controller-runtime's 7 MiB limit, answers 413 in
// an AdmissionReview, and allocates a bounded amount doing so (not the body's
// size). Over a real connection the same body is cut off just as quickly,
// and ordinary requests are served afterwards.
func TestOversizedBodyIsRefusedInBoundedMemory(t *testing.T) {
	h, _ := hostileHandlers(t)

	t.Run("in process: bytes read and memory", func(t *testing.T) {
		hook := mountAsRun(h.ForPath()[MutateStatefulSetPath], true)
		body := newEndlessBody(1 << 30)
		req := httptest.NewRequest(http.MethodPost, MutateStatefulSetPath, body)
		req.ContentLength = 1 << 30
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()

		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		hook.ServeHTTP(w, req)
		elapsed := time.Since(start)
		runtime.ReadMemStats(&after)
		allocated := after.TotalAlloc - before.TotalAlloc
		t.Logf("read %d of %d bytes, allocated %d MiB, in %s", body.consumed(), int64(1<<30), allocated>>20, elapsed)

		assert.LessOrEqual(t, body.consumed(), int64(controllerRuntimeBodyLimit+body.maxChunk), "read past the limit")
		// io.ReadAll doubles its buffer up to the limit: about twice the
		// limit in total, whatever the body's size.
		assert.Less(t, allocated, uint64(64<<20), "allocation grows with the body")
		assert.Less(t, elapsed, hostileDeadline)
		var review admissionv1.AdmissionReview
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &review), w.Body.String())
		require.NotNil(t, review.Response)
		assert.False(t, review.Response.Allowed)
		assert.Equal(t, int32(http.StatusRequestEntityTooLarge), review.Response.Result.Code)
		assert.Contains(t, review.Response.Result.Message, "too large")
	})

	t.Run("over HTTPS", func(t *testing.T) {
		srv := serveHandlers(t, h)
		for _, path := range []string{MutateStatefulSetPath, ValidateStatefulSetPath, ValidateServicePath} {
			body := newEndlessBody(64 << 20)
			start := time.Now()
			s, err := postTo(srv, path, "application/json", body)
			// The server answers 413 as soon as it has read 7 MiB and then
			// closes the connection. The client may see the answer, or, if it
			// is still writing when the connection closes, a write error.
			if err != nil {
				t.Logf("%s: connection cut after %d bytes sent, in %s: %v", path, body.consumed(), time.Since(start), err)
				require.False(t, errors.Is(err, context.DeadlineExceeded), "no answer within %s", hostileDeadline)
			} else {
				resp := wellFormed(t, s, "")
				assert.Equal(t, int32(http.StatusRequestEntityTooLarge), resp.Result.Code)
			}
			assert.Less(t, body.consumed(), int64(64<<20), "the whole body was sent: the server read it all")
		}
		assertServesNormally(t, srv, "after-huge")
	})
}

// explodingLookup panics when asked about the namespace "explode", standing in
// for a bug in a policy that only some requests reach.
type explodingLookup struct{ *mapLookup }

func (l explodingLookup) Namespace(name string) (*corev1.Namespace, error) {
	if name == "explode" {
		panic("boom: a bug in a policy")
	}
	return l.mapLookup.Namespace(name)
}

// counterValue reads one sample of a counter from a registry.
func counterValue(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// TestPanicOverHTTPIsADenialAndCounted: a panic while reviewing one request,
// on any webhook path, is answered over HTTP as a denial that says "internal
// error" (with the request's UID, so the API server takes it), counted in
// stateguard_admission_panics_total, and the process goes on serving.
func TestPanicOverHTTPIsADenialAndCounted(t *testing.T) {
	cluster := hostileCluster(t)
	cluster.namespaces["explode"] = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "explode"}}
	engine, err := policies.NewEngine(policies.Config{})
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	recorder, err := NewPrometheusRecorder(reg)
	require.NoError(t, err)
	h := &Handlers{Engine: engine, Recorder: recorder,
		Lookup: func(context.Context) policies.Lookup { return explodingLookup{cluster} }}
	srv := serveHandlers(t, h)

	sts := jsonOf(t, mustObject[appsv1.StatefulSet](t, statefulSetYAML))
	svc := jsonOf(t, mustObject[corev1.Service](t, serviceYAML))
	requests := map[string]admissionv1.AdmissionRequest{
		MutateStatefulSetPath:   rawRequest("boom-mutate", admissionv1.Create, stsKind, sts, nil),
		ValidateStatefulSetPath: rawRequest("boom-validate", admissionv1.Create, stsKind, sts, nil),
		ValidateServicePath:     rawRequest("boom-guard", admissionv1.Delete, svcKind, nil, svc),
	}
	for path, req := range requests {
		req.Namespace = "explode"
		panics := func() float64 {
			return counterValue(t, reg, "stateguard_admission_panics_total", map[string]string{"webhook": path})
		}
		require.Zero(t, panics())
		for i := 1; i <= 2; i++ {
			s, err := postTo(srv, path, "application/json", bytes.NewReader(reviewJSON(t, "admission.k8s.io/v1", req)))
			require.NoError(t, err)
			resp := wellFormed(t, s, string(req.UID))
			assert.False(t, resp.Allowed)
			assert.Equal(t, int32(http.StatusInternalServerError), resp.Result.Code)
			assert.Contains(t, resp.Result.Message, "internal error")
			assert.Contains(t, resp.Result.Message, "explode/db", "the denial names the object")
			assert.Equal(t, float64(i), panics(), "%s: panic counter", path)
		}
		// The same path, another namespace: served as usual.
		assertServesNormally(t, srv, "after-panic-"+strings.TrimPrefix(path, "/"))
	}
	assert.Equal(t, float64(2), counterValue(t, reg, "stateguard_admission_panics_total", map[string]string{"webhook": ValidateServicePath}))
}

// TestCacheMissFallsBackToLiveRead: a Service or StorageClass the informer
// has not seen yet (created a moment before the StatefulSet) is read from the
// API server before anything is denied; a real absence is nil, not an error,
// and other errors are passed on, never read as "absent".
func TestCacheMissFallsBackToLiveRead(t *testing.T) {
	scheme := clientgoscheme.Scheme
	svc := mustObject[corev1.Service](t, serviceYAML)
	class := retainClass("fresh", "disk.csi.azure.com")
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "prod"}}
	emptyCache := fake.NewClientBuilder().WithScheme(scheme).Build()
	live := fake.NewClientBuilder().WithScheme(scheme).WithObjects(svc, class, ns).Build()
	l := &clusterLookup{ctx: context.Background(), cache: emptyCache, live: live}

	gotSvc, err := l.Service("prod", "db")
	require.NoError(t, err)
	require.NotNil(t, gotSvc, "a cache miss reads live")
	assert.Equal(t, corev1.ClusterIPNone, gotSvc.Spec.ClusterIP)
	gotClass, err := l.StorageClass("fresh")
	require.NoError(t, err)
	require.NotNil(t, gotClass)
	gotNS, err := l.Namespace("prod")
	require.NoError(t, err)
	require.NotNil(t, gotNS)

	missing, err := l.Service("prod", "nope")
	require.NoError(t, err)
	assert.Nil(t, missing, "absent everywhere: nil, so the policy reports it missing")

	broken := &clusterLookup{ctx: context.Background(), cache: unavailableReader{}, live: live}
	_, err = broken.Service("prod", "db")
	require.Error(t, err, "a failing cache is an error (a 500 denial), never 'Service not found'")
}

// unavailableReader fails every read with something other than NotFound.
type unavailableReader struct{ client.Reader }

func (unavailableReader) Get(context.Context, client.ObjectKey, client.Object, ...client.GetOption) error {
	return apierrors.NewServiceUnavailable("etcd is on fire")
}

// TestCachedObjectsAreStripped: the informers keep only what the policies
// read. Annotations (where last-applied-configuration and anything else
// users write live), managedFields, status and the rest of the spec are
// dropped on the way into the cache, so neither memory nor anything a
// heap dump would show grows with them.
func TestCachedObjectsAreStripped(t *testing.T) {
	fat := metav1.ObjectMeta{Name: "x", Namespace: "prod", UID: "u", ResourceVersion: "7",
		Labels:          map[string]string{"stateguard.dev/mode": "warn"},
		Annotations:     map[string]string{"kubectl.kubernetes.io/last-applied-configuration": strings.Repeat("{}", 1000)},
		ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		Finalizers:      []string{"f"},
		OwnerReferences: []metav1.OwnerReference{{Name: "o"}},
	}
	transforms := map[schema.GroupVersionKind]toolscache.TransformFunc{}
	for obj, by := range cachedObjects() {
		gvks, _, err := clientgoscheme.Scheme.ObjectKinds(obj)
		require.NoError(t, err)
		require.NotNil(t, by.Transform, "%T is cached whole", obj)
		transforms[gvks[0]] = by.Transform
	}
	require.Len(t, transforms, 4, "every informer Run starts (Services, StorageClasses, Namespaces, StatefulSets) has a transform")

	slim := func(obj client.Object) client.Object {
		gvks, _, err := clientgoscheme.Scheme.ObjectKinds(obj)
		require.NoError(t, err)
		out, err := transforms[gvks[0]](obj)
		require.NoError(t, err)
		o := out.(client.Object)
		assert.Empty(t, o.GetAnnotations(), "%T keeps annotations", obj)
		assert.Empty(t, o.GetManagedFields(), "%T keeps managedFields", obj)
		assert.Empty(t, o.GetFinalizers())
		assert.Empty(t, o.GetOwnerReferences())
		assert.Equal(t, "x", o.GetName())
		assert.Equal(t, "7", o.GetResourceVersion(), "the cache needs the resourceVersion")
		return o
	}

	svc := slim(&corev1.Service{ObjectMeta: fat, Spec: corev1.ServiceSpec{ClusterIP: "None", Selector: map[string]string{"app": "db"},
		PublishNotReadyAddresses: true, Ports: []corev1.ServicePort{{Port: 5432}}, ExternalIPs: []string{"1.2.3.4"}},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "5.6.7.8"}}}}}).(*corev1.Service)
	assert.Equal(t, corev1.ServiceSpec{ClusterIP: "None", Selector: map[string]string{"app": "db"}, PublishNotReadyAddresses: true}, svc.Spec)
	assert.Equal(t, corev1.ServiceStatus{}, svc.Status)
	assert.Empty(t, svc.Labels)

	ns := slim(&corev1.Namespace{ObjectMeta: fat, Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"kubernetes"}}}).(*corev1.Namespace)
	assert.Equal(t, map[string]string{"stateguard.dev/mode": "warn"}, ns.Labels, "mode labels are what Namespaces are cached for")
	assert.Empty(t, ns.Spec.Finalizers)

	sc := slim(&storagev1.StorageClass{ObjectMeta: fat, Provisioner: "disk.csi.azure.com", Parameters: map[string]string{"secret": "x"},
		MountOptions: []string{"o"}}).(*storagev1.StorageClass)
	assert.Equal(t, "disk.csi.azure.com", sc.Provisioner)
	assert.Empty(t, sc.Parameters, "provisioner parameters (which may name secrets) are not cached")

	full := mustObject[appsv1.StatefulSet](t, statefulSetYAML)
	full.ObjectMeta = fat
	st := slim(full).(*appsv1.StatefulSet)
	assert.Equal(t, "db", st.Spec.ServiceName)
	assert.Equal(t, map[string]string{"app": "db"}, st.Spec.Template.Labels)
	assert.Empty(t, st.Spec.Template.Spec.Containers, "pod specs (images, env) are not cached")
	assert.Empty(t, st.Spec.VolumeClaimTemplates)

	tombstone := toolscache.DeletedFinalStateUnknown{Key: "prod/x"}
	for _, tr := range transforms {
		out, err := tr(tombstone)
		require.NoError(t, err)
		assert.Equal(t, tombstone, out)
	}
}

// readCounter counts the reads that reach a client.Reader.
type readCounter struct {
	client.Reader
	mu   sync.Mutex
	gets map[string]int
}

func (c *readCounter) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.mu.Lock()
	if c.gets == nil {
		c.gets = map[string]int{}
	}
	c.gets[fmt.Sprintf("%T %s", obj, key)]++
	c.mu.Unlock()
	return c.Reader.Get(ctx, key, obj, opts...)
}

func (c *readCounter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.gets {
		n += v
	}
	return n
}

// TestLiveReadsPerReviewAreBounded: a StatefulSet whose claim templates all
// name a StorageClass the cache does not hold costs one live read of it, not
// one per template. Anyone allowed to create a StatefulSet (even with
// --dry-run=server) could otherwise make the webhook send the API server
// thousands of GETs per request.
func TestLiveReadsPerReviewAreBounded(t *testing.T) {
	scheme := clientgoscheme.Scheme
	svc := mustObject[corev1.Service](t, serviceYAML)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "prod"}}
	fresh := retainClass("fresh", "disk.csi.azure.com")
	cache := &readCounter{Reader: fake.NewClientBuilder().WithScheme(scheme).WithObjects(svc.DeepCopy(), ns.DeepCopy()).Build()}
	live := &readCounter{Reader: fake.NewClientBuilder().WithScheme(scheme).WithObjects(svc.DeepCopy(), ns.DeepCopy(), fresh).Build()}
	engine, err := policies.NewEngine(policies.Config{})
	require.NoError(t, err)
	h := &Handlers{Engine: engine, Recorder: NopRecorder{}, Lookup: func(ctx context.Context) policies.Lookup {
		return &clusterLookup{ctx: ctx, cache: cache, live: live}
	}}

	for _, class := range []string{"missing", "fresh"} {
		sts := mustObject[appsv1.StatefulSet](t, statefulSetYAML)
		tmpl := sts.Spec.VolumeClaimTemplates[0]
		tmpl.Spec.StorageClassName = &class
		sts.Spec.VolumeClaimTemplates = nil
		for i := 0; i < 1000; i++ {
			tmpl.Name = fmt.Sprintf("data-%d", i)
			sts.Spec.VolumeClaimTemplates = append(sts.Spec.VolumeClaimTemplates, *tmpl.DeepCopy())
		}
		sts.Spec.Template.Spec.Containers[0].VolumeMounts = nil
		before := live.total()
		resp := h.ForPath()[ValidateStatefulSetPath].Handle(context.Background(), review(t, admissionv1.Create, stsKind, sts, nil))
		require.NotNil(t, resp.Result)
		assert.Equal(t, class == "fresh", resp.Allowed, "%v", resp.Result)
		assert.Equal(t, 1, live.total()-before, "live reads for 1,000 templates naming %q: %v", class, live.gets)
	}
	assert.Zero(t, live.gets["*v1.Service prod/db"], "cache hits are not read live")
}

// TestLiveReadsPerReviewAreCapped: distinct missing classes in every claim
// template cost at most maxLiveReads live reads per review; the rest are
// judged from the cache (not found), and the review is still answered.
func TestLiveReadsPerReviewAreCapped(t *testing.T) {
	scheme := clientgoscheme.Scheme
	svc := mustObject[corev1.Service](t, serviceYAML)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "prod"}}
	cache := fake.NewClientBuilder().WithScheme(scheme).WithObjects(svc, ns).Build()
	live := &readCounter{Reader: fake.NewClientBuilder().WithScheme(scheme).Build()}
	engine, err := policies.NewEngine(policies.Config{})
	require.NoError(t, err)
	h := &Handlers{Engine: engine, Recorder: NopRecorder{}, Lookup: func(ctx context.Context) policies.Lookup {
		return &clusterLookup{ctx: ctx, cache: cache, live: live}
	}}
	sts := mustObject[appsv1.StatefulSet](t, statefulSetYAML)
	tmpl := sts.Spec.VolumeClaimTemplates[0]
	sts.Spec.VolumeClaimTemplates = nil
	for i := 0; i < 1000; i++ {
		tmpl.Name = fmt.Sprintf("data-%d", i)
		tmpl.Spec.StorageClassName = ptr(fmt.Sprintf("class-%d", i))
		sts.Spec.VolumeClaimTemplates = append(sts.Spec.VolumeClaimTemplates, *tmpl.DeepCopy())
	}
	sts.Spec.Template.Spec.Containers[0].VolumeMounts = nil
	resp := h.ForPath()[ValidateStatefulSetPath].Handle(context.Background(), review(t, admissionv1.Create, stsKind, sts, nil))
	assert.False(t, resp.Allowed)
	require.NotNil(t, resp.Result)
	assert.Equal(t, int32(http.StatusUnprocessableEntity), resp.Result.Code, "denied as not found, not as an error")
	assert.Equal(t, maxLiveReads, live.total())
}

// TestSlowBodyIsCutOffAtTheDeadline sends the headers of a 7 MiB review and
// then a trickle of its body, as a client holding connections open would.
// The server stops waiting at the exchange deadline (reviewTimeout in Run,
// shortened here), answers or closes the connection, and goes on serving.
// Without the deadline the connection would stay open until the client gave
// up: controller-runtime's server bounds only the headers.
func TestSlowBodyIsCutOffAtTheDeadline(t *testing.T) {
	h, _ := hostileHandlers(t)
	const timeout = 500 * time.Millisecond
	srv := serveHandlersWithin(t, h, timeout)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())

	for _, path := range []string{MutateStatefulSetPath, ValidateStatefulSetPath, ValidateServicePath} {
		t.Run(path, func(t *testing.T) {
			conn, err := tls.Dial("tcp", srv.Listener.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "example.com"})
			require.NoError(t, err)
			defer conn.Close()
			// The client's own guard: if the server never gives up, the test
			// fails here instead of hanging.
			require.NoError(t, conn.SetDeadline(time.Now().Add(hostileDeadline)))

			start := time.Now()
			_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: stateguard\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"apiVersion\":", path, 7<<20)
			require.NoError(t, err)

			// Trickle a byte now and then until the server stops listening.
			// Whatever it sends back (a 400 for the unreadable body, or
			// nothing), the connection must end.
			closed := make(chan error, 1)
			go func() {
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err == nil {
					// controller-runtime answers an unreadable body with a
					// review denying it (code 400), in an HTTP 200.
					var review admissionv1.AdmissionReview
					err = json.NewDecoder(resp.Body).Decode(&review)
					switch {
					case err != nil:
						err = fmt.Errorf("answered %s, not with a review: %w", resp.Status, err)
					case review.Response == nil || review.Response.Allowed || review.Response.Result == nil ||
						review.Response.Result.Code != http.StatusBadRequest:
						err = fmt.Errorf("a cut-off body was not denied with code 400: %+v", review.Response)
					default:
						t.Logf("answered: %s", review.Response.Result.Message)
					}
				} else if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
					err = nil // closed without an answer
				}
				closed <- err
			}()
			tick := time.NewTicker(timeout / 5)
			defer tick.Stop()
			for done := false; !done; {
				select {
				case err := <-closed:
					require.NoError(t, err, "the server must end the exchange, not the client's guard")
					done = true
				case <-tick.C:
					_, _ = conn.Write([]byte(" "))
				}
			}
			elapsed := time.Since(start)
			t.Logf("exchange ended after %s (deadline %s)", elapsed, timeout)
			assert.GreaterOrEqual(t, elapsed, timeout, "ended before the deadline: something else cut it")
		})
	}
	assertServesNormally(t, srv, "after-slow-bodies")
}
