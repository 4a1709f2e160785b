package webhook

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/stateguard/stateguard/test/load/reviews"
)

// BenchmarkAdmission measures one review end to end in process: the
// AdmissionReview bytes in, decoding, the policies, the response encoded out.
// Besides ns/op (wall time) it reports cpu-ns/op, the process's CPU time per
// review (GC included), which a busy machine disturbs much less.
//
//	go test -run='^$' -bench=BenchmarkAdmission -benchmem -count=5 ./webhook/
func BenchmarkAdmission(b *testing.B) {
	runAdmissionBenchmark(b, benchHandlers(b))
}

// benchReviews are the reviews of objects written with kubectl apply (the
// typical case, the bytes hack/loadgen sends), then the same without the
// last-applied-configuration annotation, named ".../no-last-applied".
func benchReviews() []reviews.Review {
	out := reviews.All(benchNamespace, benchName)
	for _, r := range reviews.AllWithoutLastApplied(benchNamespace, benchName) {
		r.Name += "/no-last-applied"
		out = append(out, r)
	}
	return out
}

// TestBenchmarkReviews proves that the benchmark inputs take the intended
// paths (allowed or denied, with or without a patch), so BenchmarkAdmission
// cannot silently measure an error response.
func TestBenchmarkReviews(t *testing.T) {
	handlers := benchHandlers(t)
	for _, r := range benchReviews() {
		t.Run(r.Name, func(t *testing.T) {
			w := benchPost(handlers[r.Path], r)
			if w.Code != http.StatusOK {
				t.Fatalf("HTTP %d: %s", w.Code, w.Body)
			}
			var out admissionv1.AdmissionReview
			if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
				t.Fatalf("decoding the response: %v\n%s", err, w.Body)
			}
			resp := out.Response
			if resp == nil {
				t.Fatalf("no response: %s", w.Body)
			}
			if string(resp.UID) != r.UID {
				t.Errorf("uid %q, want %q", resp.UID, r.UID)
			}
			if resp.Allowed != r.Allowed {
				t.Fatalf("allowed=%v, want %v: %s", resp.Allowed, r.Allowed, w.Body)
			}
			if !r.Allowed {
				// A denial, not an error: 403 Forbidden naming the StatefulSet.
				if resp.Result == nil || resp.Result.Code != http.StatusForbidden || resp.Result.Reason != "Forbidden" {
					t.Errorf("want a Forbidden denial, got %+v", resp.Result)
				}
			} else if resp.Result != nil && resp.Result.Code != http.StatusOK {
				t.Errorf("allowed with result %+v", resp.Result)
			}
			if got := len(resp.Warnings) > 0; got != r.Warnings {
				t.Errorf("warnings %q, want some: %v", resp.Warnings, r.Warnings)
			}
			if got := len(resp.Patch) > 0; got != r.Patch {
				t.Fatalf("patch %s, want one: %v", resp.Patch, r.Patch)
			}
			if r.Patch {
				benchCheckPatched(t, r, resp)
			}
		})
	}
}

// checkPatched applies the response's patch to the reviewed object and checks
// that both claim templates got the class and the schedule label.
func benchCheckPatched(t *testing.T, r reviews.Review, resp *admissionv1.AdmissionResponse) {
	t.Helper()
	if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("patchType %v", resp.PatchType)
	}
	var in admissionv1.AdmissionReview
	if err := json.Unmarshal(r.Body, &in); err != nil {
		t.Fatal(err)
	}
	patched := benchApplyPatch(t, in.Request.Object.Raw, resp.Patch)
	var sts appsv1.StatefulSet
	if err := json.Unmarshal(patched, &sts); err != nil {
		t.Fatal(err)
	}
	if len(sts.Spec.VolumeClaimTemplates) != 2 {
		t.Fatalf("%d claim templates after the patch", len(sts.Spec.VolumeClaimTemplates))
	}
	for _, tmpl := range sts.Spec.VolumeClaimTemplates {
		if tmpl.Spec.StorageClassName == nil || *tmpl.Spec.StorageClassName != reviews.DiskClass {
			t.Errorf("template %s: class %v, want %s", tmpl.Name, tmpl.Spec.StorageClassName, reviews.DiskClass)
		}
		if tmpl.Labels[reviews.ScheduleLabel] != reviews.Schedule {
			t.Errorf("template %s: labels %v", tmpl.Name, tmpl.Labels)
		}
	}
}

// applyPatch applies a JSON patch the way the API server does (it uses the
// same library for webhook patches).
func benchApplyPatch(t *testing.T, doc, patch []byte) []byte {
	t.Helper()
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		t.Fatalf("patch is not a JSON patch: %v\n%s", err, patch)
	}
	out, err := p.Apply(doc)
	if err != nil {
		t.Fatalf("applying the patch: %v\n%s", err, patch)
	}
	return out
}

// BenchmarkAdmissionHTTPS is BenchmarkAdmission over a loopback TLS
// connection kept alive (HTTP/1.1, the TLS settings of Run), client and
// server in this process: what a review costs on the wire, without an API
// server. cpu-ns/op counts both ends.
func BenchmarkAdmissionHTTPS(b *testing.B) {
	mux := http.NewServeMux()
	for path, h := range benchHandlers(b) {
		mux.Handle(path, h)
	}
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = &tls.Config{}
	hardenTLS(srv.TLS)
	srv.StartTLS()
	defer srv.Close()
	client := srv.Client()
	client.Transport.(*http.Transport).ForceAttemptHTTP2 = false
	for _, r := range reviews.All(benchNamespace, benchName) {
		b.Run(r.Name, func(b *testing.B) {
			b.ReportAllocs()
			var body bytes.Buffer
			cpu := benchProcessCPU()
			for b.Loop() {
				req, err := http.NewRequest(http.MethodPost, srv.URL+r.Path, bytes.NewReader(r.Body))
				if err != nil {
					b.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				body.Reset()
				_, err = body.ReadFrom(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Fatalf("HTTP %d, %v: %s", resp.StatusCode, err, body.Bytes())
				}
			}
			b.ReportMetric(float64(benchProcessCPU()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}
