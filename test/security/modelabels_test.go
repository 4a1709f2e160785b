package security

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/stateguard/stateguard/policies"
	"github.com/stateguard/stateguard/test/cluster"
)

// adminGroup is the group the document's policy lets set the mode labels.
const adminGroup = "stateguard-admins"

// namespaceEditor lets its subjects do to Namespaces what a tenant owner
// typically may: create them and change their labels.
const namespaceEditor = `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: namespace-editor
rules:
  - apiGroups: [""]
    resources: [namespaces]
    verbs: [get, list, watch, create, patch, update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: namespace-editor
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: namespace-editor
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: tenant}
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: platform-admin}
`

// The ValidatingAdmissionPolicy of docs/security.md ("Namespace label
// editors"), applied as the document says: a user with the same rights on
// Namespaces cannot add, change or remove a stateguard.dev/mode or
// stateguard.dev/mode.<policy> label, nor create a namespace that has one,
// unless in group stateguard-admins; other labels stay free.
func TestModeLabelPolicy(t *testing.T) {
	t.Parallel()
	manifest := docYAMLBlock(t, "kind: ValidatingAdmissionPolicy\n")
	var policy admissionregistrationv1.ValidatingAdmissionPolicy
	var binding admissionregistrationv1.ValidatingAdmissionPolicyBinding
	decodeDocuments(t, manifest, &policy, &binding)
	if policy.Kind != "ValidatingAdmissionPolicy" || binding.Kind != "ValidatingAdmissionPolicyBinding" || binding.Spec.PolicyName != policy.Name {
		t.Fatalf("docs/security.md: want a ValidatingAdmissionPolicy and a binding of it, got %s %q and %s %q of %q",
			policy.Kind, policy.Name, binding.Kind, binding.Name, binding.Spec.PolicyName)
	}
	if len(policy.Spec.Validations) != 1 || policy.Spec.Validations[0].Message == "" {
		t.Fatalf("docs/security.md: want the policy to have one validation with a message, got %+v", policy.Spec.Validations)
	}
	// What kubectl prints for a denial by the policy.
	denial := fmt.Sprintf("ValidatingAdmissionPolicy '%s' with binding '%s' denied request: %s",
		policy.Name, binding.Name, policy.Spec.Validations[0].Message)

	c := cluster.Start(t, cluster.Options{})
	// Two users with the same rights on Namespaces, one of them in the
	// admin group; neither is in system:masters.
	tenant := c.AddUser(t, "tenant", "tenants")
	admin := c.AddUser(t, "platform-admin", adminGroup)
	// Fixtures are set up by a cluster admin in the admin group: being in
	// system:masters does not exempt anyone from admission.
	root := c.AddUser(t, "root", "system:masters", adminGroup)
	c.MustKubectl(t, namespaceEditor, "apply", "-f", "-")

	// The premises: who is who, who may do what.
	for _, u := range []struct {
		name, kubeconfig string
		inAdminGroup     bool
	}{{"tenant", tenant, false}, {"platform-admin", admin, true}} {
		groups := whoAmI(t, c, u.kubeconfig)
		if slices.Contains(groups, "system:masters") || slices.Contains(groups, adminGroup) != u.inAdminGroup {
			t.Fatalf("%s is in groups %v: want %s only for platform-admin, system:masters for nobody", u.name, groups, adminGroup)
		}
		// RBAC takes effect through the API server's informers.
		c.Eventually(t, 30*time.Second, func() error { return canI(t, c, u.name, u.kubeconfig, "yes", "patch", "namespaces") })
		for _, verb := range []string{"create", "update"} {
			if err := canI(t, c, u.name, u.kubeconfig, "yes", verb, "namespaces"); err != nil {
				t.Fatal(err)
			}
		}
		// Nor could they simply remove the policy.
		for _, res := range []string{"validatingadmissionpolicies.admissionregistration.k8s.io", "validatingadmissionpolicybindings.admissionregistration.k8s.io"} {
			if err := canI(t, c, u.name, u.kubeconfig, "no", "delete", res); err != nil {
				t.Fatal(err)
			}
		}
	}

	// The document's YAML, applied by a cluster admin as it stands.
	c.MustKubectl(t, manifest, "apply", "--validate=strict", "-f", "-")

	// The policy takes effect once the API server has loaded it: wait until
	// a tenant's dry run of a namespace labelled disabled is denied by it.
	// (Its type check runs in kube-controller-manager, which this cluster
	// does not run; an expression that does not compile would deny every
	// namespace write, which the admitted cases below would catch.)
	probe := namespaceManifest("probe", map[string]string{policies.ModeLabel: string(policies.Disabled)})
	c.Eventually(t, 60*time.Second, func() error {
		_, stderr, err := c.KubectlAs(t, tenant, probe, "create", "--dry-run=server", "-f", "-")
		if err == nil {
			return fmt.Errorf("the tenant's dry run of a namespace labelled %s=disabled is still admitted", policies.ModeLabel)
		}
		if !strings.Contains(stderr, denial) {
			return fmt.Errorf("denied, but not by the policy: %s", stderr)
		}
		return nil
	})

	mode := policies.ModeLabel
	perPolicy := func(id policies.PolicyID) string { return policies.ModeLabelPrefix + string(id) }
	for i, tc := range []struct {
		name   string
		before map[string]string // nil: the namespace does not exist, the change creates it
		change change
		after  map[string]string // the labels if the change goes through
		// touchesMode: denied to the tenant, allowed to the admin group.
		touchesMode bool
	}{
		{"add the mode label", map[string]string{"team": "a"},
			label(mode + "=disabled"), map[string]string{"team": "a", mode: "disabled"}, true},
		{"add a per-policy mode label", map[string]string{},
			label(perPolicy(policies.StorageClass) + "=audit"), map[string]string{perPolicy(policies.StorageClass): "audit"}, true},
		{"change the mode label", map[string]string{mode: "enforce"},
			label("--overwrite", mode+"=disabled"), map[string]string{mode: "disabled"}, true},
		{"change a per-policy mode label", map[string]string{perPolicy(policies.HeadlessService): "enforce"},
			label("--overwrite", perPolicy(policies.HeadlessService)+"=warn"), map[string]string{perPolicy(policies.HeadlessService): "warn"}, true},
		{"remove the mode label", map[string]string{mode: "enforce", "team": "a"},
			label(mode + "-"), map[string]string{"team": "a"}, true},
		{"remove a per-policy mode label", map[string]string{mode: "warn", perPolicy(policies.SnapshotSchedule): "enforce"},
			label(perPolicy(policies.SnapshotSchedule) + "-"), map[string]string{mode: "warn"}, true},
		{"change the mode label with an update (kubectl replace)", map[string]string{mode: "enforce", "team": "a"},
			replaceLabels(map[string]string{mode: "audit", "team": "a"}), map[string]string{mode: "audit", "team": "a"}, true},
		{"create a namespace labelled disabled", nil,
			create(map[string]string{mode: "disabled"}), map[string]string{mode: "disabled"}, true},
		{"create a namespace with a per-policy mode label", nil,
			create(map[string]string{perPolicy(policies.StorageClass): "disabled", "team": "a"}), map[string]string{perPolicy(policies.StorageClass): "disabled", "team": "a"}, true},

		{"add another label", map[string]string{mode: "enforce"},
			label("team=b"), map[string]string{mode: "enforce", "team": "b"}, false},
		{"change another label", map[string]string{mode: "enforce", perPolicy(policies.StorageClass): "warn", "team": "a"},
			label("--overwrite", "team=b"), map[string]string{mode: "enforce", perPolicy(policies.StorageClass): "warn", "team": "b"}, false},
		{"remove another label", map[string]string{mode: "enforce", "team": "a"},
			label("team-"), map[string]string{mode: "enforce"}, false},
		{"change another label with an update, mode labels kept", map[string]string{mode: "warn", "team": "a"},
			replaceLabels(map[string]string{mode: "warn", "team": "b"}), map[string]string{mode: "warn", "team": "b"}, false},
		{"add a label that only looks like a mode label", map[string]string{mode: "enforce"},
			label("stateguard.dev/modest=yes"), map[string]string{mode: "enforce", "stateguard.dev/modest": "yes"}, false},
		{"create a namespace with other labels", nil,
			create(map[string]string{"team": "a"}), map[string]string{"team": "a"}, false},
	} {
		for _, u := range []struct {
			name, kubeconfig string
			denied           bool
		}{
			{"tenant", tenant, tc.touchesMode},
			{"admin-group", admin, false},
		} {
			t.Run(u.name+"/"+tc.name, func(t *testing.T) {
				ns := fmt.Sprintf("%s-%d", strings.SplitN(u.name, "-", 2)[0], i)
				if tc.before != nil {
					c.MustKubectlAs(t, root, namespaceManifest(ns, tc.before), "create", "-f", "-")
				}
				stdout, stderr, err := tc.change(t, c, u.kubeconfig, ns)
				got, exists := namespaceLabels(t, c, ns)
				if u.denied {
					if err == nil {
						t.Errorf("admitted, want denied by the policy: %s", stdout)
					} else if !strings.Contains(stderr, denial) {
						t.Errorf("want the policy's denial %q, got: %v\n%s", denial, err, stderr)
					}
					if tc.before == nil && exists {
						t.Errorf("namespace %s was created, with labels %v", ns, got)
					}
					if tc.before != nil && !maps.Equal(got, tc.before) {
						t.Errorf("labels %v after a denial, want them unchanged: %v", got, tc.before)
					}
					return
				}
				if err != nil {
					hint := ""
					if u.kubeconfig == admin {
						hint = fmt.Sprintf(" (does the policy in docs/security.md still name group %s?)", adminGroup)
					}
					t.Fatalf("denied, want admitted%s: %v\n%s", hint, err, stderr)
				}
				if !exists || !maps.Equal(got, tc.after) {
					t.Errorf("labels %v (namespace exists: %v), want %v", got, exists, tc.after)
				}
			})
		}
	}

	// system:masters is not exempt: without the admin group, a cluster
	// admin's change is denied as well (they could of course remove the
	// policy).
	t.Run("system:masters-without-admin-group", func(t *testing.T) {
		c.MustKubectlAs(t, root, namespaceManifest("masters", map[string]string{mode: "enforce"}), "create", "-f", "-")
		_, stderr, err := c.Kubectl(t, "", "label", "namespace", "masters", "--overwrite", mode+"=disabled")
		if err == nil || !strings.Contains(stderr, denial) {
			t.Errorf("a system:masters user outside %s: want the policy's denial, got %v: %s", adminGroup, err, stderr)
		}
	})
}

// change makes a change to namespace ns as the user of kubeconfig.
type change func(t *testing.T, c *cluster.Cluster, kubeconfig, ns string) (stdout, stderr string, err error)

// label runs `kubectl label namespace <ns> args...` (a patch).
func label(args ...string) change {
	return func(t *testing.T, c *cluster.Cluster, kubeconfig, ns string) (string, string, error) {
		return c.KubectlAs(t, kubeconfig, "", append([]string{"label", "namespace", ns}, args...)...)
	}
}

// replaceLabels reads the namespace and writes it back with these labels
// (an update).
func replaceLabels(labels map[string]string) change {
	return func(t *testing.T, c *cluster.Cluster, kubeconfig, ns string) (string, string, error) {
		out, stderr, err := c.KubectlAs(t, kubeconfig, "", "get", "namespace", ns, "-o", "json")
		if err != nil {
			t.Fatalf("%v: %s", err, stderr)
		}
		var obj corev1.Namespace
		if err := json.Unmarshal([]byte(out), &obj); err != nil {
			t.Fatal(err)
		}
		obj.Labels = maps.Clone(labels)
		obj.Labels[corev1.LabelMetadataName] = ns
		data, err := json.Marshal(&obj)
		if err != nil {
			t.Fatal(err)
		}
		return c.KubectlAs(t, kubeconfig, string(data), "replace", "-f", "-")
	}
}

// create creates the namespace with these labels.
func create(labels map[string]string) change {
	return func(t *testing.T, c *cluster.Cluster, kubeconfig, ns string) (string, string, error) {
		return c.KubectlAs(t, kubeconfig, namespaceManifest(ns, labels), "create", "-f", "-")
	}
}

func namespaceManifest(name string, labels map[string]string) string {
	data, _ := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"name": name, "labels": labels},
	})
	return string(data)
}

// namespaceLabels returns a namespace's labels without the one the API
// server sets (kubernetes.io/metadata.name), and whether it exists.
func namespaceLabels(t *testing.T, c *cluster.Cluster, name string) (map[string]string, bool) {
	t.Helper()
	out, stderr, err := c.Kubectl(t, "", "get", "namespace", name, "-o", "json", "--ignore-not-found")
	if err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	if strings.TrimSpace(out) == "" {
		return nil, false
	}
	var ns corev1.Namespace
	if err := json.Unmarshal([]byte(out), &ns); err != nil {
		t.Fatal(err)
	}
	labels := maps.Clone(ns.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	delete(labels, corev1.LabelMetadataName)
	return labels, true
}

// whoAmI returns the groups the API server puts the user of kubeconfig in.
func whoAmI(t *testing.T, c *cluster.Cluster, kubeconfig string) []string {
	t.Helper()
	out, stderr, err := c.KubectlAs(t, kubeconfig, "", "auth", "whoami", "-o", "json")
	if err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	var review struct {
		Status struct {
			UserInfo struct {
				Groups []string `json:"groups"`
			} `json:"userInfo"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &review); err != nil {
		t.Fatalf("kubectl auth whoami: %v\n%s", err, out)
	}
	return review.Status.UserInfo.Groups
}

// canI returns nil if `kubectl auth can-i verb resource` answers want
// ("yes" or "no") for user, whose kubeconfig it is.
func canI(t *testing.T, c *cluster.Cluster, user, kubeconfig, want, verb, resource string) error {
	t.Helper()
	// can-i exits 1 for "no"; the answer is on stdout either way.
	out, stderr, _ := c.KubectlAs(t, kubeconfig, "", "auth", "can-i", verb, resource)
	if got := strings.TrimSpace(out); got != want {
		return fmt.Errorf("kubectl auth can-i %s %s as %s: %q, want %q %s", verb, resource, user, got, want, stderr)
	}
	return nil
}
