package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	admissionv1beta1 "k8s.io/api/admission/v1beta1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/stateguard/stateguard/policies"
	"github.com/stateguard/stateguard/test/load/reviews"
)

// reviewRequest is one HTTP request to a webhook path, built afresh for
// each server (a body is read once).
type reviewRequest struct {
	name        string
	path        string
	body        func() io.Reader // nil: no body
	contentType string           // "-": no header
	noBody      bool             // http.NoBody
}

func jsonRequest(name, path, body string) reviewRequest {
	return reviewRequest{name: name, path: path, body: func() io.Reader { return strings.NewReader(body) }, contentType: "application/json"}
}

func (r reviewRequest) build() *http.Request {
	var body io.Reader
	if r.body != nil {
		body = r.body()
	}
	req := httptest.NewRequest(http.MethodPost, r.path, nil)
	switch {
	case r.noBody:
		req.Body = http.NoBody
	case body == nil:
		req.Body = nil
	default:
		req.Body = io.NopCloser(body)
	}
	if r.contentType != "-" {
		req.Header.Set("Content-Type", r.contentType)
	}
	return req
}

// failingReader returns some bytes, then an error.
type failingReader struct{ done bool }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.done {
		return 0, errors.New("connection reset by peer")
	}
	f.done = true
	return copy(p, `{"apiVersion":"admission.k8s.io/v1","request":{"ui`), nil
}

// reviewEquivalenceRequests are valid reviews (the benchmark's, in both
// versions) and everything a client might send instead.
func reviewEquivalenceRequests(t *testing.T) []reviewRequest {
	t.Helper()
	var out []reviewRequest
	valid := benchReviews()
	for _, r := range valid {
		out = append(out, jsonRequest(r.Name, r.Path, string(r.Body)))
	}
	create, _ := reviews.Find(valid, "mutate-statefulset/create")
	update, _ := reviews.Find(valid, "mutate-statefulset/update-unchanged")
	del, _ := reviews.Find(valid, "validate-service/delete-in-use")
	body := string(create.Body)
	replace := func(name, old, new string) {
		t.Helper()
		if !strings.Contains(body, old) {
			t.Fatalf("%s: %q not in the review", name, old)
		}
		out = append(out, jsonRequest(name, create.Path, strings.Replace(body, old, new, 1)))
	}
	replace("v1beta1", `"apiVersion":"admission.k8s.io/v1"`, `"apiVersion":"admission.k8s.io/v1beta1"`)
	replace("no apiVersion", `"apiVersion":"admission.k8s.io/v1",`, ``)
	replace("no kind", `"kind":"AdmissionReview",`, ``)
	replace("no apiVersion or kind", `"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1",`, ``)
	replace("other apiVersion", `"apiVersion":"admission.k8s.io/v1"`, `"apiVersion":"example.com/v9"`)
	replace("bad apiVersion", `"apiVersion":"admission.k8s.io/v1"`, `"apiVersion":"a/b/c"`)
	replace("apiVersion not a string", `"apiVersion":"admission.k8s.io/v1"`, `"apiVersion":1`)
	replace("apiVersion in capitals", `"apiVersion":"admission.k8s.io/v1"`, `"APIVERSION":"admission.k8s.io/v1beta1"`)
	replace("request in capitals", `"request":{`, `"Request":{`)
	replace("request key escaped", `"request":{`, `"\u0072equest":{`)
	replace("object key escaped", `"object":{`, `"\u006fbject":{`)
	replace("object in capitals", `"object":{`, `"Object":{`)
	replace("object null", `"object":{`, `"object":null,"x":{`)
	replace("object a string", `"object":{`, `"object":"x","x":{`)
	replace("object a number", `"object":{`, `"object":12,"x":{`)
	replace("object of the wrong shape", `"replicas":3`, `"replicas":"three"`)
	replace("object with a type error in managedFields", `"manager":"kubectl-client-side-apply"`, `"manager":5`)
	replace("object not JSON", `"object":{`, `"object":{x,`)
	replace("object too deep", `"object":{`, `"object":{"deep":`+strings.Repeat("[", 600)+strings.Repeat("]", 600)+`,`)
	replace("object first", `"uid":`, `"object":{"kind":"StatefulSet"},"uid":`)
	replace("repeated object", `"oldObject":null`, `"object":{"metadata":{"name":"again"}}`)
	replace("repeated request", `{"kind":"AdmissionReview",`, `{"request":{"uid":"first"},"kind":"AdmissionReview",`)
	replace("uid a number", `"uid":"8d3c0b1e-7a4f-4e5b-9c2d-000000000003"`, `"uid":3`)
	replace("no uid", `"uid":"8d3c0b1e-7a4f-4e5b-9c2d-000000000003",`, ``)
	replace("dry run", `"dryRun":false`, `"dryRun":true`)
	replace("kind a Service", `"kind":{"group":"apps","version":"v1","kind":"StatefulSet"}`, `"kind":{"group":"","version":"v1","kind":"Service"}`)
	replace("a response too", `"request":{`, `"response":{"uid":"r","allowed":true},"request":{`)
	replace("unknown fields", `"request":{`, `"future":[1,{"a":null}],"request":{"future":true,`)
	replace("escapes in values", `"name":"db","namespace"`, `"name":"d\u0062\n\"","namespace"`)
	replace("invalid UTF-8 in a value", `"name":"db","namespace"`, "\"name\":\"d\xff\xfeb\",\"namespace\"")
	out = append(out,
		jsonRequest("request null", create.Path, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}`),
		jsonRequest("request a string", create.Path, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":"x"}`),
		jsonRequest("no request", create.Path, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`),
		jsonRequest("empty request", create.Path, `{"request":{}}`),
		jsonRequest("empty object", create.Path, `{}`),
		jsonRequest("whitespace around", create.Path, " \n\t"+body+"\r\n "),
		jsonRequest("unicode space before", create.Path, "\u00a0"+body),
		jsonRequest("form feed before", create.Path, "\f"+body),
		jsonRequest("trailing garbage", create.Path, body+"x"),
		jsonRequest("two reviews", create.Path, body+body),
		jsonRequest("truncated", create.Path, body[:len(body)/2]),
		jsonRequest("not JSON", create.Path, `{not json`),
		jsonRequest("a JSON array", create.Path, `[`+body+`]`),
		jsonRequest("YAML", create.Path, "apiVersion: admission.k8s.io/v1\nkind: AdmissionReview\nrequest:\n  uid: y\n  kind: {group: apps, version: v1, kind: StatefulSet}\n  operation: CREATE\n  namespace: shop\n  object: {metadata: {name: db}}\n"),
		jsonRequest("protobuf magic", create.Path, "k8s\x00\x0a\x02v1"),
		jsonRequest("empty body", create.Path, ``),
		jsonRequest("update", update.Path, string(update.Body)),
		jsonRequest("delete", del.Path, string(del.Body)),
		jsonRequest("StatefulSet to the Service path", del.Path, body),
		reviewRequest{name: "no body", path: create.Path, contentType: "application/json"},
		reviewRequest{name: "http.NoBody", path: create.Path, contentType: "application/json", noBody: true},
		reviewRequest{name: "no content type", path: create.Path, body: func() io.Reader { return strings.NewReader(body) }, contentType: "-"},
		reviewRequest{name: "text/plain", path: create.Path, body: func() io.Reader { return strings.NewReader(body) }, contentType: "text/plain"},
		reviewRequest{name: "charset", path: create.Path, body: func() io.Reader { return strings.NewReader(body) }, contentType: "application/json; charset=utf-8"},
		reviewRequest{name: "oversized and wrong type", path: create.Path, body: func() io.Reader { return io.LimitReader(zeros{}, maxReviewSize+1) }, contentType: "text/plain"},
		reviewRequest{name: "read error", path: create.Path, body: func() io.Reader { return &failingReader{} }, contentType: "application/json"},
	)
	// Around the size limit: one byte under it (decoded), at it and over it
	// (refused).
	for _, size := range []int{maxReviewSize - 1, maxReviewSize, maxReviewSize + 1} {
		big := strings.Replace(body, `"annotations":{`, `"annotations":{"padding":"`+strings.Repeat("x", size-len(body)-len(`"padding":"",`))+`",`, 1)
		if len(big) != size {
			t.Fatalf("padded to %d, not %d", len(big), size)
		}
		out = append(out, jsonRequest(fmt.Sprintf("size limit%+d", size-maxReviewSize), create.Path, big))
	}
	return out
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

// testLogger logs everything (V(5) included) as JSON lines without times.
func testLogger(w io.Writer) logr.Logger {
	return logr.FromSlogHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: slog.Level(-10),
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}

// reviewDeserializer decodes AdmissionReviews exactly as controller-runtime's
// admission.Webhook does (admission/http.go): the same codec factory over a
// scheme of the same two AdmissionReview versions.
var reviewDeserializer = func() runtime.Decoder {
	scheme := runtime.NewScheme()
	utilruntime.Must(admissionv1.AddToScheme(scheme))
	utilruntime.Must(admissionv1beta1.AddToScheme(scheme))
	return serializer.NewCodecFactory(scheme).UniversalDeserializer()
}()

type contextKey struct{}

// TestReviewServerMatchesControllerRuntime proves that reviewServer answers
// every request exactly as controller-runtime's admission.Webhook.ServeHTTP
// does: the same status, headers and body bytes, the same log lines, and
// WithContextFunc called as often, its context reaching the handler.
func TestReviewServerMatchesControllerRuntime(t *testing.T) {
	engine, err := policies.NewEngine(policies.Config{})
	if err != nil {
		t.Fatal(err)
	}
	lookup := benchLookup(engine)
	withContext := func(ctx context.Context) policies.Lookup {
		if ctx.Value(contextKey{}) == nil {
			panic("the request's context lacks WithContextFunc's value")
		}
		return lookup
	}
	h := &Handlers{Engine: engine, Recorder: NopRecorder{}, Lookup: withContext}
	panicking := &Handlers{Engine: engine, Recorder: NopRecorder{}, Lookup: func(context.Context) policies.Lookup { return &panicLookup{} }}

	requests := reviewEquivalenceRequests(t)
	for _, handlers := range []struct {
		name string
		h    *Handlers
	}{{"", h}, {"panicking/", panicking}} {
		var crLog, fastLog bytes.Buffer
		var crContexts, fastContexts int
		contextFunc := func(n *int) func(context.Context, *http.Request) context.Context {
			return func(ctx context.Context, _ *http.Request) context.Context {
				*n++
				return context.WithValue(ctx, contextKey{}, true)
			}
		}
		reference, fast := map[string]http.Handler{}, map[string]http.Handler{}
		for path, handler := range handlers.h.ForPath() {
			hook, err := admission.StandaloneWebhook(&admission.Webhook{Handler: handler, RecoverPanic: ptr(true), WithContextFunc: contextFunc(&crContexts)},
				admission.StandaloneOptions{Logger: testLogger(&crLog)})
			if err != nil {
				t.Fatal(err)
			}
			reference[path] = hook
			fast[path] = NewReviewServer(&admission.Webhook{Handler: handler, RecoverPanic: ptr(true), WithContextFunc: contextFunc(&fastContexts)},
				testLogger(&fastLog))
		}
		for _, r := range requests {
			t.Run(handlers.name+r.name, func(t *testing.T) {
				crLog.Reset()
				fastLog.Reset()
				crContexts, fastContexts = 0, 0
				want := httptest.NewRecorder()
				reference[r.path].ServeHTTP(want, r.build())
				got := httptest.NewRecorder()
				fast[r.path].ServeHTTP(got, r.build())
				if got.Code != want.Code {
					t.Errorf("status %d, want %d", got.Code, want.Code)
				}
				if !reflect.DeepEqual(got.Header(), want.Header()) {
					t.Errorf("headers %v, want %v", got.Header(), want.Header())
				}
				if !bytes.Equal(canonicalPatchOrder(t, got.Body.Bytes()), canonicalPatchOrder(t, want.Body.Bytes())) {
					t.Errorf("body differs\n got: %.2000s\nwant: %.2000s", got.Body, want.Body)
				}
				if crLog.String() != fastLog.String() {
					t.Errorf("logs differ\n got: %.3000s\nwant: %.3000s", fastLog.String(), crLog.String())
				}
				if fastContexts != crContexts || crContexts != 1 {
					t.Errorf("WithContextFunc called %d times, controller-runtime %d", fastContexts, crContexts)
				}
			})
		}
	}
}

// TestReviewServerLogConstructor: a webhook's LogConstructor makes the
// request log lines, as in controller-runtime.
func TestReviewServerLogConstructor(t *testing.T) {
	engine, err := policies.NewEngine(policies.Config{})
	if err != nil {
		t.Fatal(err)
	}
	lookup := benchLookup(engine)
	h := &Handlers{Engine: engine, Recorder: NopRecorder{}, Lookup: func(context.Context) policies.Lookup { return lookup }}
	r, _ := reviews.Find(benchReviews(), "validate-statefulset/create")
	var logs [2]bytes.Buffer
	for i := range logs {
		hook := &admission.Webhook{Handler: h.ForPath()[r.Path], LogConstructor: func(base logr.Logger, req *admission.Request) logr.Logger {
			if req == nil {
				return base
			}
			return base.WithValues("custom", req.UID)
		}}
		var server http.Handler
		if i == 0 {
			server, err = admission.StandaloneWebhook(hook, admission.StandaloneOptions{Logger: testLogger(&logs[i])})
			if err != nil {
				t.Fatal(err)
			}
		} else {
			server = NewReviewServer(hook, testLogger(&logs[i]))
		}
		server.ServeHTTP(httptest.NewRecorder(), jsonRequest(r.Name, r.Path, string(r.Body)).build())
	}
	if logs[0].String() != logs[1].String() || !strings.Contains(logs[1].String(), `"custom":"`+r.UID) {
		t.Errorf("logs differ\n got: %s\nwant: %s", &logs[1], &logs[0])
	}
}

// canonicalPatchOrder returns a response body with the operations of its
// patch sorted: the JSON patch diff iterates maps, so the order of its
// operations varies from one review to the next, in both servers.
func canonicalPatchOrder(t *testing.T, body []byte) []byte {
	t.Helper()
	var ar admissionv1.AdmissionReview
	if json.Unmarshal(body, &ar) != nil || ar.Response == nil || len(ar.Response.Patch) == 0 {
		return body
	}
	var ops []json.RawMessage
	if err := json.Unmarshal(ar.Response.Patch, &ops); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(ops, func(a, b json.RawMessage) int { return bytes.Compare(a, b) })
	sorted := mustMarshal(t, ops)
	return bytes.Replace(body, mustMarshal(t, ar.Response.Patch), mustMarshal(t, sorted), 1)
}

// TestReviewsTakeTheFastPath: the reviews the API server sends are decoded
// by decodeReview, not handed to controller-runtime, and their objects are
// cut once, in decodeReview, and decoded by json-iterator.
func TestReviewsTakeTheFastPath(t *testing.T) {
	for _, r := range benchReviews() {
		req, _, cut, ok := decodeReview(r.Body)
		if !ok {
			t.Errorf("%s: not decoded", r.Name)
			continue
		}
		ctx := context.WithValue(context.Background(), cutObjectsKey{}, cut)
		for _, raw := range [][]byte{req.Object.Raw, req.OldObject.Raw} {
			if raw == nil {
				continue
			}
			if _, unusual, ok := cutFromContext(ctx, raw); !ok || unusual {
				t.Errorf("%s: the object's cut is not found (%v), or unusual (%v)", r.Name, ok, unusual)
			}
			if _, _, ok := cutFromContext(ctx, bytes.Clone(raw)); ok {
				t.Errorf("%s: a cut found for other bytes", r.Name)
			}
		}
	}
}

// TestDecodeReviewMatchesControllerRuntime checks decodeReview against
// controller-runtime's decoding (the same codec over the whole body) on the
// benchmark reviews mangled at random: whenever decodeReview decodes one,
// the codec decodes the same request and apiVersion and kind.
func TestDecodeReviewMatchesControllerRuntime(t *testing.T) {
	seeds := reviewSeeds()
	rng := rand.New(rand.NewPCG(5, 6))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	decoded := 0
	for i := 0; i < n; i++ {
		if checkDecodeReview(t, mangle(rng, seeds[rng.IntN(len(seeds))])) {
			decoded++
		}
	}
	for _, s := range seeds {
		checkDecodeReview(t, s)
	}
	t.Logf("%d of %d mangled reviews decoded", decoded, n)
}

func FuzzDecodeReview(f *testing.F) {
	for _, s := range reviewSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkDecodeReview(t, body) })
}

func reviewSeeds() [][]byte {
	var out [][]byte
	for _, r := range benchReviews() {
		out = append(out, r.Body)
	}
	return append(out,
		[]byte(`{"request":{"object":null,"oldObject":{"a":[1,"\u0041"]},"uid":"u","dryRun":true}}`),
		[]byte(`{"apiVersion":"admission.k8s.io/v1beta1","request":{"userInfo":{"extra":{"a":["b"]}},"options":{"x":1},"object":{}}}`),
		// Shapes requestDecoder leaves to sigs.k8s.io/json.
		[]byte(`{"kind":"AdmissionReview","request":{"uid":"\u0075","name":null,"requestKind":null,"dryRun":null,"options":null,"object":{"metadata":{"managedFields":[]}}},"response":{"allowed":true}}`),
		[]byte(`{"request":{"uid":"a","uid":"b","kind":{"group":"g","group":"h","kind":"K"},"userInfo":{"groups":null,"extra":{"x":null,"y":[],"z":["1","2"]}}}}`),
		[]byte(`{"request":{"subResource":"status","requestSubResource":"scale","resource":{"resource":"r","x":1},"requestResource":{"group":"g"},"userInfo":{"username":"é","uid":"u","groups":[],"other":[1]},"unknown":{"a":[{}]}}}`),
	)
}

// checkDecodeReview reports whether decodeReview decoded body, failing the
// test if it decoded it otherwise than controller-runtime would.
func checkDecodeReview(t *testing.T, body []byte) bool {
	t.Helper()
	got, gotGVK, cut, ok := decodeReview(body)
	if !ok {
		return false
	}
	for i, raw := range [][]byte{got.Object.Raw, got.OldObject.Raw} {
		if cut.cut[i] == nil {
			continue
		}
		if want, unusual, ok := withoutUnreadFields(raw); !ok || !bytes.Equal(cut.cut[i], want) || unusual != cut.unusual[i] {
			t.Fatalf("object %d cut as %q, not %q: %q", i, cut.cut[i], want, body)
		}
	}
	want := admission.Request{}
	ar := unversionedReview{}
	ar.Request = &want.AdmissionRequest
	ar.SetGroupVersionKind(admissionv1.SchemeGroupVersion.WithKind("AdmissionReview"))
	_, wantGVK, err := reviewDeserializer.Decode(body, nil, &ar)
	if err != nil {
		t.Fatalf("decoded what controller-runtime rejects (%v): %q", err, body)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("request differs\n got: %+v\nwant: %+v\nbody: %q", got, want, body)
	}
	if !reflect.DeepEqual(gotGVK, wantGVK) {
		t.Fatalf("kind %v, want %v: %q", gotGVK, wantGVK, body)
	}
	return true
}

// TestWholeDiffDecodesInFull covers mutateStatefulSet's fallback: a mutation
// outside the claim templates makes the patch diff the whole objects, which
// must then be decoded in full, or the patch would remove managedFields and
// the last-applied annotation.
func TestWholeDiffDecodesInFull(t *testing.T) {
	r, _ := reviews.Find(reviews.All(benchNamespace, benchName), "mutate-statefulset/create")
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(r.Body, &ar); err != nil {
		t.Fatal(err)
	}
	req := admission.Request{AdmissionRequest: *ar.Request}
	for _, decode := range []struct {
		name  string
		whole bool
	}{{"decodeObject", false}, {"decodeWhole", true}} {
		var sreq policies.StatefulSetRequest
		var errResp *admission.Response
		if decode.whole {
			sreq, errResp = decodeStatefulSetRequest(context.Background(), req, decodeWhole)
		} else {
			sreq, errResp = decodeStatefulSetRequest(context.Background(), req, decodeObject)
		}
		if errResp != nil {
			t.Fatal(errResp.Result)
		}
		mutated := sreq.Object.DeepCopy()
		mutated.Spec.Template.Spec.Containers[0].Env = append(mutated.Spec.Template.Spec.Containers[0].Env, corev1.EnvVar{Name: "X", Value: "1"})
		mutations := []policies.Mutation{{Policy: "test", Path: "/spec/template/spec/containers/0/env/-"}}
		resp := patchResponse(req.Object.Raw, sreq.Object, mutated, mutations)
		var removes []string
		for _, p := range resp.Patches {
			if p.Operation == "remove" {
				removes = append(removes, p.Path)
			}
		}
		if decode.whole && len(removes) > 0 {
			t.Errorf("%s: the whole diff removes %v", decode.name, removes)
		}
		if !decode.whole && len(removes) == 0 {
			t.Errorf("%s: expected the whole diff of a partly decoded object to remove fields; this test's premise is wrong", decode.name)
		}
	}
	if claimTemplatesOnly([]policies.Mutation{{Path: "/spec/template"}}) || !claimTemplatesOnly([]policies.Mutation{{Path: policies.ClaimTemplatesPath + "/0"}}) {
		t.Error("claimTemplatesOnly")
	}
}
