package cluster_test

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/stateguard/stateguard/test/cluster"
)

// Webhook configurations given in Options.Webhooks are registered pointing at
// a local server, which the test serves with envtest's certificate.
func TestWebhookRegistration(t *testing.T) {
	t.Parallel()
	path := "/validate-configmaps"
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	hook := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "deny-labelled-configmaps"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "deny.test.stateguard.dev",
			AdmissionReviewVersions: []string{"v1"},
			SideEffects:             &none,
			FailurePolicy:           &fail,
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				// Rewritten to https://<local host:port><path>.
				Service: &admissionregistrationv1.ServiceReference{Name: "ignored", Namespace: "ignored", Path: &path},
			},
			ObjectSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"deny": "yes"}},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
			}},
		}},
	}
	c := cluster.Start(t, cluster.Options{Webhooks: envtest.WebhookInstallOptions{
		ValidatingWebhooks: []*admissionregistrationv1.ValidatingWebhookConfiguration{hook},
	}})
	serveWebhook(t, c.Webhooks, path)

	c.MustKubectl(t, "", "create", "configmap", "allowed")
	stdout, stderr, err := c.Kubectl(t, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: denied\n  labels: {deny: \"yes\"}\n", "apply", "-f", "-")
	if err == nil || !strings.Contains(stderr, "denied by test webhook") {
		t.Fatalf("want denial, got err=%v stdout=%q stderr=%q", err, stdout, stderr)
	}
}

func serveWebhook(t *testing.T, o *envtest.WebhookInstallOptions, path string) {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(o.LocalServingCertDir, "tls.crt"), filepath.Join(o.LocalServingCertDir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		review.Response = &admissionv1.AdmissionResponse{
			UID:    review.Request.UID,
			Result: &metav1.Status{Message: "denied by test webhook", Code: http.StatusForbidden},
		}
		_ = json.NewEncoder(w).Encode(review)
	})
	l, err := net.Listen("tcp", net.JoinHostPort(o.LocalServingHost, strconv.Itoa(o.LocalServingPort)))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	go func() {
		if err := srv.ServeTLS(l, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("webhook server: %v", err)
		}
	}()
	t.Cleanup(func() { _ = srv.Close() })
}
