package chart_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/stateguard/stateguard/test/cluster"
)

// goModDir returns the directory of a module go.mod requires.
func goModDir(t *testing.T, module string) string {
	t.Helper()
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go list -m %s: %v %s (is the module downloaded? go mod download %s)", module, err, msg, module)
	}
	return dir
}

// crdFiles are the CustomResourceDefinitions the chart's objects need:
// cert-manager's from the module go.mod requires, the Prometheus operator's
// from testdata/crds (copied from its module, see the README there).
func crdFiles(t *testing.T) []string {
	t.Helper()
	cm := filepath.Join(goModDir(t, "github.com/cert-manager/cert-manager"), "deploy", "crds")
	files := []string{
		filepath.Join(cm, "cert-manager.io_issuers.yaml"),
		filepath.Join(cm, "cert-manager.io_certificates.yaml"),
		testdataPath("crds/monitoring.coreos.com_servicemonitors.yaml"),
		testdataPath("crds/monitoring.coreos.com_prometheusrules.yaml"),
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// Plain CRDs, not chart templates.
		if strings.Contains(string(data), "{{") {
			t.Fatalf("%s is templated, not a plain CRD", f)
		}
		if objs := splitObjects(t, string(data)); len(objs) != 1 || objs[0].Kind != "CustomResourceDefinition" {
			t.Fatalf("%s: want one CustomResourceDefinition", f)
		}
	}
	return files
}

func installCRDs(t *testing.T, c *cluster.Cluster) {
	t.Helper()
	var names []string
	for _, f := range crdFiles(t) {
		// Server-side: the CRDs are too big for the last-applied annotation.
		c.MustKubectl(t, "", "apply", "--server-side", "-f", f)
		data, _ := os.ReadFile(f)
		names = append(names, "crd/"+splitObjects(t, string(data))[0].Metadata.Name)
	}
	c.MustKubectl(t, "", append([]string{"wait", "--for=condition=Established", "--timeout=60s"}, names...)...)
}

// Every value set, rendered, is accepted by a real API server (server-side
// dry run, strict field validation, Pod Security "restricted" enforced on
// the release namespace), without a single warning.
func TestServerSideDryRunApply(t *testing.T) {
	t.Parallel()
	helmBin(t)
	c := cluster.Start(t, cluster.Options{})
	installCRDs(t, c)
	for _, ns := range []string{defaultNamespace, "stateguard-test"} {
		c.MustKubectl(t, "", "create", "namespace", ns)
		c.MustKubectl(t, "", "label", "namespace", ns,
			"pod-security.kubernetes.io/enforce=restricted", "pod-security.kubernetes.io/warn=restricted")
	}

	// Pod Security admission is on, so "no warnings" below means something.
	const privileged = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"privileged","namespace":"` + defaultNamespace + `"},
		"spec":{"containers":[{"name":"c","image":"registry.k8s.io/pause:3.10","securityContext":{"privileged":true}}]}}`
	if _, stderr, err := c.Kubectl(t, privileged, "apply", "--dry-run=server", "-f", "-"); err == nil || !strings.Contains(stderr, "violates PodSecurity") {
		t.Fatalf("Pod Security admission does not refuse a privileged pod in %s: %v %s", defaultNamespace, err, stderr)
	}

	sets := append([]string{""}, valueSets(t)...)
	for _, vs := range sets {
		name := vs
		if name == "" {
			name = "defaults"
		}
		t.Run(name, func(t *testing.T) {
			o := renderOpts{}
			if vs != "" {
				o.Values = []string{vs}
			}
			stream := render(t, o)
			objs := splitObjects(t, stream)
			var stdout, stderr string
			var err error
			// The first apply after the CRDs may meet a stale discovery cache.
			c.Eventually(t, 30*time.Second, func() error {
				stdout, stderr, err = c.Kubectl(t, stream, "apply", "--dry-run=server", "--validate=strict", "-f", "-")
				if err != nil && strings.Contains(stderr, "no matches for kind") {
					return err
				}
				return nil
			})
			if err != nil {
				t.Fatalf("the API server rejects the chart rendered with %s: %v\n%s", name, err, stderr)
			}
			if strings.Contains(strings.ToLower(stderr), "warning") {
				t.Errorf("the API server warns about the chart rendered with %s:\n%s", name, stderr)
			}
			if got := strings.Count(stdout, "(server dry run)"); got != len(objs) {
				t.Errorf("the API server accepted %d objects, the chart renders %d:\n%s", got, len(objs), stdout)
			}
		})
	}

	// deploy/stateguard.yaml, as a user without Helm applies it.
	t.Run("deploy-manifests", func(t *testing.T) {
		data, err := os.ReadFile(deployManifest)
		if err != nil {
			t.Fatal(err)
		}
		_, stderr, err := c.Kubectl(t, string(data), "apply", "--server-side", "--dry-run=server", "--validate=strict", "-f", "-")
		if err != nil || strings.Contains(strings.ToLower(stderr), "warning") {
			t.Fatalf("kubectl apply --server-side -f deploy/stateguard.yaml: %v\n%s", err, stderr)
		}
	})

	// A real helm install and upgrade without cert-manager: the generated
	// certificate is kept across upgrades (lookup), and replaced after the
	// Secret is deleted.
	t.Run("helm-install-upgrade-self-signed", func(t *testing.T) {
		const release, ns = "sg", "sg-install"
		fn := release + "-stateguard"
		helmArgs := func(args ...string) []string {
			return append([]string{"--kubeconfig", c.Kubeconfig}, args...)
		}
		// Ignore: nothing serves these webhooks here, and this cluster is
		// shared with the other subtests.
		out, err := runHelm(t, helmArgs("install", release, chartDir, "-n", ns, "--create-namespace",
			"--set", "certManager.enabled=false", "--set", "webhook.failurePolicy=Ignore")...)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"kubectl -n " + ns + " rollout status deployment/" + fn, "--dry-run=server", "helm test " + release} {
			if !strings.Contains(out, want) {
				t.Errorf("NOTES do not say %q:\n%s", want, out)
			}
		}
		type state struct {
			crt, ca, bundle             []byte
			checksumTLS, checksumConfig string
		}
		read := func() state {
			t.Helper()
			var s corev1.Secret
			getJSON(t, c, &s, "-n", ns, "secret", fn+"-tls")
			var v admissionregistrationv1.ValidatingWebhookConfiguration
			getJSON(t, c, &v, "validatingwebhookconfiguration", fn)
			var m admissionregistrationv1.MutatingWebhookConfiguration
			getJSON(t, c, &m, "mutatingwebhookconfiguration", fn)
			var d appsv1.Deployment
			getJSON(t, c, &d, "-n", ns, "deployment", fn)
			for _, w := range v.Webhooks {
				if string(w.ClientConfig.CABundle) != string(v.Webhooks[0].ClientConfig.CABundle) {
					t.Errorf("webhooks disagree on the caBundle")
				}
			}
			if string(m.Webhooks[0].ClientConfig.CABundle) != string(v.Webhooks[0].ClientConfig.CABundle) {
				t.Errorf("mutating and validating webhooks disagree on the caBundle")
			}
			return state{s.Data["tls.crt"], s.Data["ca.crt"], v.Webhooks[0].ClientConfig.CABundle,
				d.Spec.Template.Annotations["checksum/tls"], d.Spec.Template.Annotations["checksum/config"]}
		}
		first := read()
		if len(first.crt) == 0 || string(first.bundle) != string(first.ca) {
			t.Fatalf("after install: caBundle and the Secret's ca.crt differ (or the Secret is empty)")
		}
		verifyServingCert(t, first.ca, first.crt, fn+"-webhook."+ns+".svc", 3650)

		if _, err := runHelm(t, helmArgs("upgrade", release, chartDir, "-n", ns, "--reuse-values", "--set", "config.defaultMode=warn")...); err != nil {
			t.Fatal(err)
		}
		second := read()
		if string(second.crt) != string(first.crt) || string(second.bundle) != string(first.bundle) || second.checksumTLS != first.checksumTLS {
			t.Errorf("helm upgrade regenerated the certificate: the lookup of the existing Secret did not work")
		}
		if second.checksumConfig == first.checksumConfig {
			t.Errorf("helm upgrade with a new config did not change checksum/config")
		}

		// Rotation: delete the Secret, upgrade.
		c.MustKubectl(t, "", "-n", ns, "delete", "secret", fn+"-tls")
		if _, err := runHelm(t, helmArgs("upgrade", release, chartDir, "-n", ns, "--reuse-values")...); err != nil {
			t.Fatal(err)
		}
		third := read()
		if string(third.ca) == string(first.ca) || string(third.bundle) != string(third.ca) || third.checksumTLS == first.checksumTLS {
			t.Errorf("after deleting the Secret, helm upgrade must generate a new CA, put it in the caBundle and roll the pods")
		}

		if _, err := runHelm(t, helmArgs("uninstall", release, "-n", ns)...); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Kubectl(t, "", "get", "validatingwebhookconfiguration", fn); err == nil {
			t.Errorf("helm uninstall left the ValidatingWebhookConfiguration behind")
		}
	})

	// And with cert-manager: the install goes through (the Certificates stay
	// unissued here, there is no cert-manager controller).
	t.Run("helm-install-cert-manager", func(t *testing.T) {
		out, err := runHelm(t, "--kubeconfig", c.Kubeconfig, "install", "stateguard", chartDir, "-n", "sg-cm", "--create-namespace",
			"--set", "webhook.failurePolicy=Ignore", "--values", testdataPath("values-monitoring.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "get certificate stateguard-serving") {
			t.Errorf("NOTES do not explain the cert-manager check:\n%s", out)
		}
		var v admissionregistrationv1.ValidatingWebhookConfiguration
		getJSON(t, c, &v, "validatingwebhookconfiguration", "stateguard")
		if v.Annotations["cert-manager.io/inject-ca-from"] != "sg-cm/stateguard-serving" {
			t.Errorf("inject-ca-from %q", v.Annotations["cert-manager.io/inject-ca-from"])
		}
		if _, err := runHelm(t, "--kubeconfig", c.Kubeconfig, "uninstall", "stateguard", "-n", "sg-cm"); err != nil {
			t.Fatal(err)
		}
	})
}

func getJSON(t *testing.T, c *cluster.Cluster, into any, args ...string) {
	t.Helper()
	out := c.MustKubectl(t, "", append([]string{"get", "-o", "json"}, args...)...)
	if err := json.Unmarshal([]byte(out), into); err != nil {
		t.Fatalf("kubectl get %v: %v", args, err)
	}
}
