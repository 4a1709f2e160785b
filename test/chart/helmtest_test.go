package chart_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/stateguard/stateguard/internal/config"
	"github.com/stateguard/stateguard/test/cluster"
	"github.com/stateguard/stateguard/webhook"
)

// TestHelmTestHook plays `helm test` step by step where no pod can run (the
// test control plane has no nodes): the chart's webhooks.yaml registered
// with the API server, the real webhook serving the chart's PolicyConfig,
// the test's RBAC, ConfigMap and Service applied, and each container of the
// test pod and of the probe pod it starts run as the test's
// ServiceAccount, with exactly the image's arguments. Standing in for the
// kubelet, the test then records the probe's exit status in its pod status,
// as the kubelet would, for the await-denial step to read.
func TestHelmTestHook(t *testing.T) {
	t.Parallel()
	helmBin(t)
	r := renderAndDecode(t, "")
	fn, ns, testNS := r.fullname(), r.namespace(), r.value("tests.namespace").(string)

	// The webhook configurations exactly as the chart registers them; envtest
	// points them at the local server (keeping service.path).
	mutating, validating := r.mutating.DeepCopy(), r.validating.DeepCopy()
	c := cluster.Start(t, cluster.Options{Webhooks: envtest.WebhookInstallOptions{
		MutatingWebhooks:   []*admissionregistrationv1.MutatingWebhookConfiguration{mutating},
		ValidatingWebhooks: []*admissionregistrationv1.ValidatingWebhookConfiguration{validating},
	}})

	// The webhook, with the config the chart's ConfigMap holds.
	cfgFile := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfgFile, []byte(r.configMap.Data["config.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	engine, err := config.Load(config.Options{Path: cfgFile})
	if err != nil {
		t.Fatal(err)
	}
	ctrl.SetLogger(logr.Discard())
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- webhook.Run(ctx, webhook.Options{
			Engine: engine, RestConfig: c.Config,
			CertDir: c.Webhooks.LocalServingCertDir, Port: c.Webhooks.LocalServingPort,
			MetricsAddr: "0", ProbeAddr: "0", ShutdownGrace: 5 * time.Second,
		})
	}()
	stopped := false
	stopWebhook := func() {
		if !stopped {
			stopped = true
			stop()
			if err := <-served; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("webhook: %v", err)
			}
		}
	}
	t.Cleanup(stopWebhook)

	// The test's hooks other than the pod, as helm creates them (weight -10).
	c.MustKubectl(t, "", "create", "namespace", ns)
	var hooks, pods []object
	for _, o := range r.testObjects {
		if o.Kind == "Pod" {
			pods = append(pods, o)
		} else {
			hooks = append(hooks, o)
		}
	}
	if len(pods) != 1 {
		t.Fatalf("want one test pod, got %d", len(pods))
	}
	c.MustKubectl(t, list(hooks), "create", "-f", "-")

	// The test pod itself: created so that it has a UID (it never runs).
	c.MustKubectl(t, string(pods[0].JSON), "create", "-f", "-")
	var testPod corev1.Pod
	getJSON(t, c, &testPod, "-n", ns, "pod", pods[0].Metadata.Name)

	// Its ServiceAccount's identity, and the ConfigMap's files where the
	// pod mounts them.
	sa := c.AddUser(t, "system:serviceaccount:"+ns+":"+fn+"-test", "system:serviceaccounts", "system:serviceaccounts:"+ns)
	manifests := t.TempDir()
	var cm corev1.ConfigMap
	getJSON(t, c, &cm, "-n", ns, "configmap", fn+"-test")
	for name, data := range cm.Data {
		if err := os.WriteFile(filepath.Join(manifests, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run := func(ctr corev1.Container) kubectlResult {
		t.Helper()
		if len(ctr.Command) != 1 || ctr.Command[0] != "kubectl" {
			t.Fatalf("container %s: command %v, want [kubectl] (the image has nothing else)", ctr.Name, ctr.Command)
		}
		args := make([]string, len(ctr.Args))
		for i, a := range ctr.Args {
			a = strings.ReplaceAll(a, "$(POD_UID)", string(testPod.UID))
			args[i] = strings.ReplaceAll(a, "/manifests/", manifests+"/")
		}
		return kubectlAs(t, c, sa, args...)
	}

	// The webhook serves once a well-formed StatefulSet passes.
	c.Eventually(t, 60*time.Second, func() error {
		select {
		case err := <-served:
			stopped = true
			t.Fatalf("the webhook stopped: %v", err)
		default:
		}
		_, stderr, err := c.Kubectl(t, "", "create", "--dry-run=server", "-f", filepath.Join(manifests, "allowed.yaml"))
		if err != nil {
			return fmt.Errorf("%v: %s", err, stderr)
		}
		return nil
	})

	init := map[string]corev1.Container{}
	var order []string
	for _, ctr := range testPod.Spec.InitContainers {
		init[ctr.Name] = ctr
		order = append(order, ctr.Name)
	}
	if strings.Join(order, ",") != "expect-allowed,reset,start-probe,await-denial" {
		t.Fatalf("test pod init containers %v", order)
	}

	// 1. With its headless Service: admitted, without a warning.
	if res := run(init["expect-allowed"]); res.code != 0 || strings.Contains(res.stderr, "Warning") {
		t.Fatalf("expect-allowed: %s", res)
	}
	// 2. No probe pod left from an earlier run.
	if res := run(init["reset"]); res.code != 0 {
		t.Fatalf("reset: %s", res)
	}
	// 3. The probe pod, owned by the test pod.
	if res := run(init["start-probe"]); res.code != 0 {
		t.Fatalf("start-probe: %s", res)
	}
	probeName := fn + "-test-probe"
	var probe corev1.Pod
	getJSON(t, c, &probe, "-n", ns, "pod", probeName)
	if len(probe.OwnerReferences) != 1 || probe.OwnerReferences[0].UID != testPod.UID || probe.OwnerReferences[0].Kind != "Pod" {
		t.Errorf("probe pod owners %+v: want the test pod (uid %s), so that it goes away with it", probe.OwnerReferences, testPod.UID)
	}
	if probe.Spec.ServiceAccountName != fn+"-test" || probe.Spec.RestartPolicy != corev1.RestartPolicyNever || len(probe.Spec.Containers) != 1 {
		t.Fatalf("probe pod spec %+v", probe.Spec)
	}
	// What the kubelet would do: run the probe's container, record its exit.
	denied := run(probe.Spec.Containers[0])
	if denied.code != 1 || !strings.Contains(denied.stdout+denied.stderr, "headless-service") {
		t.Fatalf("the probe must be turned down by stateguard's headless-service policy: %s", denied)
	}
	t.Logf("the probe's log, which `helm test --logs` prints:\n%s", denied.stderr)
	status := map[string]any{"status": map[string]any{
		"phase": "Failed",
		"containerStatuses": []any{map[string]any{
			"name": probe.Spec.Containers[0].Name, "image": probe.Spec.Containers[0].Image, "imageID": "",
			"ready": false, "restartCount": 0,
			"state": map[string]any{"terminated": map[string]any{"exitCode": denied.code, "reason": "Error", "message": denied.stderr}},
		}},
	}}
	patch, _ := json.Marshal(status)
	c.MustKubectl(t, "", "-n", ns, "patch", "pod", probeName, "--subresource=status", "--type=merge", "-p", string(patch))
	// 4. The test pod sees the probe fail with kubectl's exit status 1.
	if res := run(init["await-denial"]); res.code != 0 {
		t.Fatalf("await-denial: %s", res)
	}
	// 5. And prints the probe's log.
	if main := testPod.Spec.Containers; len(main) != 1 || !strings.Contains(strings.Join(main[0].Args, " "), "logs pod/"+probeName) {
		t.Errorf("the test pod's container must print the probe's log: %+v", main)
	}

	// The check discriminates. In warn mode the denial becomes a warning,
	// which --warnings-as-errors still turns into exit status 1; in disabled
	// mode nothing is turned down, so the probe would succeed and the test
	// pod would fail.
	for _, tc := range []struct {
		mode      string
		wantCode  int
		wantInOut string
	}{
		{"warn", 1, "headless-service"},
		{"disabled", 0, ""},
	} {
		c.MustKubectl(t, "", "label", "--overwrite", "namespace", testNS, "stateguard.dev/mode.headless-service="+tc.mode)
		c.Eventually(t, 30*time.Second, func() error {
			res := run(probe.Spec.Containers[0])
			if res.code != tc.wantCode || !strings.Contains(res.stdout+res.stderr, tc.wantInOut) {
				return fmt.Errorf("mode %s: want exit %d mentioning %q, got %s", tc.mode, tc.wantCode, tc.wantInOut, res)
			}
			return nil
		})
		if res := run(init["expect-allowed"]); res.code != 0 {
			t.Errorf("mode %s: expect-allowed: %s", tc.mode, res)
		}
	}
	c.MustKubectl(t, "", "label", "namespace", testNS, "stateguard.dev/mode.headless-service-")

	// The check NOTES.txt tells the user to run gets the answer it promises
	// (another release name: this one's webhook configurations exist).
	notes, err := runHelm(t, "--kubeconfig", c.Kubeconfig, "install", "notes", chartDir, "-n", ns, "--dry-run=server", "--set", "certManager.enabled=false")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(notes, "cat <<'EOF' | kubectl ")
	cmdline, rest, _ := strings.Cut(rest, "\n")
	manifest, rest, _ := strings.Cut(rest, "\n     EOF")
	_, expected, _ := strings.Cut(rest, "Expected: the request is denied by the headless-service policy:\n")
	expected, _, _ = strings.Cut(strings.TrimSpace(expected), " ...")
	if !ok || expected == "" {
		t.Fatalf("NOTES.txt has no `cat <<'EOF' | kubectl ...` check with an expected denial:\n%s", notes)
	}
	_, stderr, err := c.Kubectl(t, manifest, strings.Fields(cmdline)...)
	if err == nil || !strings.Contains(stderr, expected) {
		t.Errorf("the NOTES check `kubectl %s`: want a denial containing %q, got %v: %s", cmdline, expected, err, stderr)
	}

	// And with the webhook gone (failurePolicy Fail), even the first check fails.
	stopWebhook()
	if res := run(init["expect-allowed"]); res.code == 0 || !strings.Contains(res.stderr, "failed calling webhook") {
		t.Errorf("expect-allowed with no webhook serving: want a failure calling the webhook, got %s", res)
	}
}

// list wraps objects in a kind: List for kubectl.
func list(objs []object) string {
	items := make([]json.RawMessage, len(objs))
	for i, o := range objs {
		items[i] = o.JSON
	}
	data, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
	return string(data)
}

type kubectlResult struct {
	args           []string
	code           int
	stdout, stderr string
	err            error
}

func (r kubectlResult) String() string {
	return fmt.Sprintf("kubectl %s: exit %d (%v)\nstdout: %s\nstderr: %s", strings.Join(r.args, " "), r.code, r.err, r.stdout, r.stderr)
}

// kubectlAs runs kubectl as the user of kubeconfig and returns its exit
// status.
func kubectlAs(t *testing.T, c *cluster.Cluster, kubeconfig string, args ...string) kubectlResult {
	t.Helper()
	stdout, stderr, err := c.KubectlAs(t, kubeconfig, "", args...)
	res := kubectlResult{args: args, stdout: stdout, stderr: stderr, err: err}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		t.Fatalf("running kubectl: %v", err)
	}
	return res
}
