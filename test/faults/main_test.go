// Package faults proves what `stateguard serve` promises when things go
// wrong around it, against a real kube-apiserver (test/cluster) and the real
// binary (test/serve), with the chart's webhook configurations:
//
//   - TestCertificateRotation: serving certificate files replaced under load
//     (a kubelet-style atomic Secret volume update, then an in-place
//     overwrite): no failed handshake or request, the new certificate served
//     within seconds;
//   - TestGracefulShutdown: SIGTERM under steady load: unready first, no
//     failed request until it stops accepting, in-flight reviews complete,
//     exit within the grace period;
//   - TestAPIServerRestart: the API server stopped and started again: reviews
//     are answered from the caches meanwhile, and the caches follow the
//     restarted API server;
//   - TestFailurePolicy: webhook down or hanging, with the chart's Fail and
//     Ignore: refused within timeoutSeconds, or admitted; the exempt
//     namespaces never blocked;
//   - TestRollingRestart: two replicas behind a local nginx restarted one
//     after the other during a `kubectl apply` loop: no failed admission.
//
// They run in `make test` (each starts its own control plane). The
// rolling-restart test needs nginx (`make nginx` installs Debian's); without
// it, it skips (fails with STATEGUARD_REQUIRE_INTEGRATION=1).
package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/stateguard/stateguard/test/load/reviews"
	"github.com/stateguard/stateguard/test/serve"
)

func TestMain(m *testing.M) { serve.Main(m) }

// reviewClient posts AdmissionReviews over HTTPS as the API server does:
// HTTP/1.1, keep-alive (unless fresh), verifying the server's certificate.
type reviewClient struct {
	base string
	hc   *http.Client
}

// newReviewClient returns a client of base (https://127.0.0.1:port). With
// fresh, every request opens a new connection (a TLS handshake each).
func newReviewClient(base string, tr *http.Transport, fresh bool) *reviewClient {
	tr.DisableKeepAlives = fresh
	tr.ForceAttemptHTTP2 = false
	tr.MaxConnsPerHost = 1
	tr.MaxIdleConnsPerHost = 1
	return &reviewClient{base: base, hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

func (c *reviewClient) close() { c.hc.CloseIdleConnections() }

// post sends a review and checks the response is an AdmissionReview for
// its UID, returning the response.
func (c *reviewClient) post(ctx context.Context, r reviews.Review) (*http.Response, *admissionv1.AdmissionResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+r.Path, bytes.NewReader(r.Body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", r.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp, nil, fmt.Errorf("%s: reading the response: %w", r.Name, err)
	}
	ar, err := decodeReview(resp.StatusCode, body, r.UID)
	if err != nil {
		return resp, nil, fmt.Errorf("%s: %w", r.Name, err)
	}
	return resp, ar, nil
}

// decodeReview checks an HTTP response to a review: 200, an AdmissionReview
// whose response echoes uid.
func decodeReview(status int, body []byte, uid string) (*admissionv1.AdmissionResponse, error) {
	if status != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %.300s", status, body)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("decoding the response: %w: %.300s", err, body)
	}
	if out.Response == nil || string(out.Response.UID) != uid {
		return nil, fmt.Errorf("response lacks uid %s: %.300s", uid, body)
	}
	return out.Response, nil
}

// expect checks a response against what reviews says the webhook answers.
func expect(r reviews.Review, resp *admissionv1.AdmissionResponse) error {
	if resp.Allowed != r.Allowed {
		msg := ""
		if resp.Result != nil {
			msg = resp.Result.Message
		}
		return fmt.Errorf("%s: allowed=%t, want %t (%s)", r.Name, resp.Allowed, r.Allowed, msg)
	}
	if (len(resp.Patch) > 0) != r.Patch {
		return fmt.Errorf("%s: patch %t, want %t", r.Name, len(resp.Patch) > 0, r.Patch)
	}
	return nil
}

// failures collects the errors of concurrent workers: all counted, the
// first ones kept.
type failures struct {
	mu   sync.Mutex
	n    int
	errs []error
}

func (f *failures) add(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if len(f.errs) < 100 {
		f.errs = append(f.errs, err)
	}
}

func (f *failures) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// String lists the distinct errors kept, with their counts.
func (f *failures) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[string]int{}
	var order []string
	for _, err := range f.errs {
		s := err.Error()
		if seen[s] == 0 {
			order = append(order, s)
		}
		seen[s]++
	}
	var b strings.Builder
	for i, s := range order {
		if i == 8 {
			fmt.Fprintf(&b, "  ... and %d more distinct errors\n", len(order)-i)
			break
		}
		fmt.Fprintf(&b, "  %dx %s\n", seen[s], s)
	}
	return b.String()
}
