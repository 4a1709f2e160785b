package chart_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/stateguard/stateguard/internal/config"
	"github.com/stateguard/stateguard/policies"
	"github.com/stateguard/stateguard/webhook"
)

// rendering is one value set rendered, every object decoded strictly.
type rendering struct {
	name string
	opts renderOpts
	objs []object

	deployment         *appsv1.Deployment
	configMap          *corev1.ConfigMap
	policyConfig       policies.Config
	mutating           *admissionregistrationv1.MutatingWebhookConfiguration
	validating         *admissionregistrationv1.ValidatingWebhookConfiguration
	clusterRole        *rbacv1.ClusterRole
	clusterRoleBinding *rbacv1.ClusterRoleBinding
	serviceAccount     *corev1.ServiceAccount
	services           map[string]*corev1.Service
	pdb                *policyv1.PodDisruptionBudget
	networkPolicy      *networkingv1.NetworkPolicy
	secrets            []*corev1.Secret
	issuers            map[string]*cmv1.Issuer
	certificates       map[string]*cmv1.Certificate
	unstructured       map[string]*unstructured.Unstructured // by kind
	testObjects        []object
	values             map[string]any
}

// renderAndDecode renders a value set (name "" = defaults) and decodes every
// object into its Go type, strictly; an object of a kind the chart is not
// meant to render fails the test.
func renderAndDecode(t *testing.T, valuesFile string, set ...string) *rendering {
	t.Helper()
	o := renderOpts{Set: set}
	if valuesFile != "" {
		o.Values = []string{valuesFile}
	}
	r := &rendering{
		name: valuesFile, opts: o, objs: splitObjects(t, render(t, o)),
		services: map[string]*corev1.Service{}, issuers: map[string]*cmv1.Issuer{},
		certificates: map[string]*cmv1.Certificate{}, unstructured: map[string]*unstructured.Unstructured{},
	}
	r.values = effectiveValues(t, valuesFile, set...)
	for _, obj := range r.objs {
		if obj.isTestHook() {
			r.testObjects = append(r.testObjects, obj)
		}
		var into any
		switch gvk := obj.APIVersion + "/" + obj.Kind; gvk {
		case "apps/v1/Deployment":
			if r.deployment != nil {
				t.Fatalf("two Deployments: %s", obj)
			}
			r.deployment = &appsv1.Deployment{}
			into = r.deployment
		case "v1/ConfigMap":
			cm := &corev1.ConfigMap{}
			into = cm
			if strings.HasSuffix(obj.Metadata.Name, "-config") {
				r.configMap = cm
			}
		case "v1/Service":
			svc := &corev1.Service{}
			into = svc
			if !obj.isTestHook() {
				r.services[obj.Metadata.Name] = svc
			}
		case "v1/ServiceAccount":
			sa := &corev1.ServiceAccount{}
			into = sa
			if !obj.isTestHook() {
				r.serviceAccount = sa
			}
		case "v1/Secret":
			s := &corev1.Secret{}
			into = s
			r.secrets = append(r.secrets, s)
		case "v1/Pod":
			into = &corev1.Pod{}
		case "policy/v1/PodDisruptionBudget":
			r.pdb = &policyv1.PodDisruptionBudget{}
			into = r.pdb
		case "networking.k8s.io/v1/NetworkPolicy":
			if r.networkPolicy != nil {
				t.Fatalf("two NetworkPolicies: %s", obj)
			}
			r.networkPolicy = &networkingv1.NetworkPolicy{}
			into = r.networkPolicy
		case "rbac.authorization.k8s.io/v1/ClusterRole":
			r.clusterRole = &rbacv1.ClusterRole{}
			into = r.clusterRole
		case "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
			r.clusterRoleBinding = &rbacv1.ClusterRoleBinding{}
			into = r.clusterRoleBinding
		case "rbac.authorization.k8s.io/v1/Role":
			into = &rbacv1.Role{}
		case "rbac.authorization.k8s.io/v1/RoleBinding":
			into = &rbacv1.RoleBinding{}
		case "admissionregistration.k8s.io/v1/MutatingWebhookConfiguration":
			r.mutating = &admissionregistrationv1.MutatingWebhookConfiguration{}
			into = r.mutating
		case "admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration":
			r.validating = &admissionregistrationv1.ValidatingWebhookConfiguration{}
			into = r.validating
		case "cert-manager.io/v1/Issuer":
			is := &cmv1.Issuer{}
			into = is
			r.issuers[obj.Metadata.Name] = is
		case "cert-manager.io/v1/Certificate":
			c := &cmv1.Certificate{}
			into = c
			r.certificates[obj.Metadata.Name] = c
		case "monitoring.coreos.com/v1/ServiceMonitor", "monitoring.coreos.com/v1/PrometheusRule":
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(obj.JSON); err != nil {
				t.Fatalf("%s: %v", obj, err)
			}
			if r.unstructured[obj.Kind] != nil {
				t.Fatalf("two %ss", obj.Kind)
			}
			r.unstructured[obj.Kind] = u
			continue
		default:
			t.Fatalf("%s: the chart is not meant to render %s", obj, gvk)
		}
		if err := decodeStrict(obj.JSON, into); err != nil {
			t.Fatalf("%s: strict decoding into %T: %v", obj, into, err)
		}
	}
	for what, missing := range map[string]bool{
		"Deployment": r.deployment == nil, "ConfigMap <name>-config": r.configMap == nil,
		"MutatingWebhookConfiguration": r.mutating == nil, "ValidatingWebhookConfiguration": r.validating == nil,
		"ClusterRole": r.clusterRole == nil, "ClusterRoleBinding": r.clusterRoleBinding == nil,
		"ServiceAccount": r.serviceAccount == nil,
	} {
		if missing {
			t.Fatalf("%s: no %s rendered", r.name, what)
		}
	}
	raw := r.configMap.Data["config.yaml"]
	if err := yaml.UnmarshalStrict([]byte(raw), &r.policyConfig); err != nil {
		t.Fatalf("the ConfigMap's config.yaml is not a PolicyConfig: %v\n%s", err, raw)
	}
	return r
}

// effectiveValues merges the chart's values.yaml with a values file and
// --set pairs the simple way (maps merge, the rest replaces), enough for
// the tests to know what they asked for.
func effectiveValues(t *testing.T, valuesFile string, set ...string) map[string]any {
	t.Helper()
	vals := readYAMLMap(t, filepath.Join(chartDir, "values.yaml"))
	if valuesFile != "" {
		mergeValues(vals, readYAMLMap(t, testdataPath(valuesFile)))
	}
	for _, s := range set {
		k, v, _ := strings.Cut(s, "=")
		var parsed any = v
		if b, err := strconv.ParseBool(v); err == nil {
			parsed = b
		} else if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			parsed = n
		}
		m := vals
		parts := strings.Split(k, ".")
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = parsed
	}
	return vals
}

func readYAMLMap(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func mergeValues(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeValues(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// value returns a value by dotted path from the effective values.
func (r *rendering) value(path string) any {
	var cur any = r.values
	for _, p := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func (r *rendering) intValue(t *testing.T, path string) int {
	t.Helper()
	switch v := r.value(path).(type) {
	case float64:
		return int(v)
	case int64:
		return int(v)
	case int:
		return v
	}
	t.Fatalf("%s: value %s is %T, not a number", r.name, path, r.value(path))
	return 0
}

func (r *rendering) release() string {
	if r.opts.Release != "" {
		return r.opts.Release
	}
	return defaultRelease
}

func (r *rendering) namespace() string {
	if r.opts.Namespace != "" {
		return r.opts.Namespace
	}
	return defaultNamespace
}

// fullname is the name prefix the chart gives its objects.
func (r *rendering) fullname() string {
	if v, _ := r.value("fullnameOverride").(string); v != "" {
		return v
	}
	if strings.Contains(r.release(), "stateguard") {
		return r.release()
	}
	return r.release() + "-stateguard"
}

// wantExempt is the exempt list the chart must produce: the config's (the
// PolicyConfig default when not set) plus the release namespace.
func (r *rendering) wantExempt() []string {
	list := append([]string(nil), policies.DefaultExemptNamespaces...)
	if cfg, ok := r.value("config").(map[string]any); ok {
		if raw, ok := cfg["exemptNamespaces"]; ok {
			list = nil
			items, _ := raw.([]any)
			for _, ns := range items {
				list = append(list, ns.(string))
			}
		}
	}
	if !slices.Contains(list, r.namespace()) {
		list = append(list, r.namespace())
	}
	return list
}

// forEachRendering runs f for the defaults and every testdata value set.
func forEachRendering(t *testing.T, f func(t *testing.T, r *rendering)) {
	t.Helper()
	for _, vs := range append([]string{""}, valueSets(t)...) {
		name := vs
		if name == "" {
			name = "defaults"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, renderAndDecode(t, vs))
		})
	}
}

func TestRenderedObjectsDecodeStrictly(t *testing.T) {
	forEachRendering(t, func(t *testing.T, r *rendering) {
		// renderAndDecode did the strict decoding; check names and namespaces.
		for _, o := range r.objs {
			if strings.HasPrefix(o.Kind, "Cluster") || strings.HasSuffix(o.Kind, "WebhookConfiguration") {
				if o.Metadata.Namespace != "" {
					t.Errorf("%s: cluster-scoped object with a namespace", o)
				}
				continue
			}
			want := r.namespace()
			if o.isTestHook() && (o.Kind == "Service" || o.Kind == "Role" || o.Kind == "RoleBinding") && o.Metadata.Name == r.fullname()+"-test" && o.Metadata.Namespace != want {
				want = r.value("tests.namespace").(string)
			}
			if o.Metadata.Namespace != want {
				t.Errorf("%s: namespace %q, want %q", o, o.Metadata.Namespace, want)
			}
			if !strings.HasPrefix(o.Metadata.Name, r.fullname()) {
				t.Errorf("%s: name does not start with %q", o, r.fullname())
			}
			if o.Metadata.Labels["app.kubernetes.io/instance"] != r.release() || o.Metadata.Labels["app.kubernetes.io/part-of"] != "stateguard" {
				t.Errorf("%s: missing the release's standard labels: %v", o, o.Metadata.Labels)
			}
		}
	})
}

func TestDeploymentAvailability(t *testing.T) {
	forEachRendering(t, func(t *testing.T, r *rendering) {
		d := r.deployment
		replicas := r.intValue(t, "replicaCount")
		if d.Spec.Replicas == nil || int(*d.Spec.Replicas) != replicas {
			t.Errorf("replicas %v, want %d", d.Spec.Replicas, replicas)
		}
		if r.name == "" && replicas != 3 {
			t.Errorf("default replicaCount %d, want 3", replicas)
		}
		ru := d.Spec.Strategy.RollingUpdate
		if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
			t.Errorf("strategy %+v: want a rolling update with maxUnavailable 0", d.Spec.Strategy)
		}
		selector := d.Spec.Selector.MatchLabels
		for k, v := range selector {
			if d.Spec.Template.Labels[k] != v {
				t.Errorf("pod template lacks selector label %s=%s", k, v)
			}
		}
		pod := d.Spec.Template.Spec
		if want, _ := r.value("priorityClassName").(string); pod.PriorityClassName != want {
			t.Errorf("priorityClassName %q, want %q", pod.PriorityClassName, want)
		}
		if r.name == "" && pod.PriorityClassName != "system-cluster-critical" {
			t.Errorf("default priorityClassName %q, want system-cluster-critical", pod.PriorityClassName)
		}

		// Spread over nodes: a topology spread constraint and/or pod
		// anti-affinity on the hostname, selecting this release's pods.
		spread := false
		for _, c := range pod.TopologySpreadConstraints {
			if c.TopologyKey == corev1.LabelHostname && c.LabelSelector != nil && maps.Equal(c.LabelSelector.MatchLabels, selector) {
				spread = true
				if !slices.Contains(c.MatchLabelKeys, "pod-template-hash") {
					t.Errorf("hostname spread without matchLabelKeys [pod-template-hash]: %+v", c)
				}
			}
		}
		if r.value("affinity") == nil || len(r.value("affinity").(map[string]any)) == 0 {
			aa := pod.Affinity
			if aa == nil || aa.PodAntiAffinity == nil || len(aa.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
				t.Errorf("no default pod anti-affinity: %+v", aa)
			} else {
				term := aa.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm
				if term.TopologyKey != corev1.LabelHostname || !maps.Equal(term.LabelSelector.MatchLabels, selector) {
					t.Errorf("anti-affinity term %+v does not keep replicas apart per node", term)
				}
				spread = true
			}
		}
		if !spread {
			t.Errorf("replicas are not spread across nodes: %+v", pod.TopologySpreadConstraints)
		}

		// The PodDisruptionBudget: only with more than one replica.
		if replicas == 1 {
			if r.pdb != nil {
				t.Errorf("a PodDisruptionBudget with one replica blocks every node drain")
			}
			return
		}
		if r.pdb == nil {
			t.Fatalf("no PodDisruptionBudget with %d replicas", replicas)
		}
		if !maps.Equal(r.pdb.Spec.Selector.MatchLabels, selector) {
			t.Errorf("PDB selector %v, want the Deployment's %v", r.pdb.Spec.Selector.MatchLabels, selector)
		}
		minAvail := r.pdb.Spec.MinAvailable
		if minAvail == nil {
			t.Fatalf("PDB without minAvailable")
		}
		want := r.value("podDisruptionBudget.minAvailable")
		switch w := want.(type) {
		case string:
			if minAvail.Type != intstr.String || minAvail.StrVal != w {
				t.Errorf("PDB minAvailable %v, want %q", minAvail, w)
			}
		default:
			if minAvail.Type != intstr.Int || minAvail.IntValue() != r.intValue(t, "podDisruptionBudget.minAvailable") || minAvail.IntValue() >= replicas {
				t.Errorf("PDB minAvailable %v, want %v (< %d replicas)", minAvail, want, replicas)
			}
		}
		if r.pdb.Spec.UnhealthyPodEvictionPolicy == nil || *r.pdb.Spec.UnhealthyPodEvictionPolicy != policyv1.AlwaysAllow {
			t.Errorf("PDB unhealthyPodEvictionPolicy %v, want AlwaysAllow", r.pdb.Spec.UnhealthyPodEvictionPolicy)
		}
	})
}

func TestDeploymentContainer(t *testing.T) {
	forEachRendering(t, func(t *testing.T, r *rendering) {
		pod := r.deployment.Spec.Template.Spec
		if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 {
			t.Fatalf("want one container, got %d (+%d init)", len(pod.Containers), len(pod.InitContainers))
		}
		c := pod.Containers[0]
		if pod.ServiceAccountName != r.serviceAccount.Name {
			t.Errorf("serviceAccountName %q, want %q", pod.ServiceAccountName, r.serviceAccount.Name)
		}

		// Args: serve with the chart's paths and ports.
		flags := map[string]string{}
		if len(c.Args) == 0 || c.Args[0] != "serve" {
			t.Fatalf("args %v: want serve ...", c.Args)
		}
		for _, a := range c.Args[1:] {
			k, v, ok := strings.Cut(a, "=")
			if !ok || !strings.HasPrefix(k, "--") {
				t.Fatalf("arg %q is not --flag=value", a)
			}
			flags[k] = v
		}
		for k, v := range map[string]string{
			"--config": "/etc/stateguard/config.yaml", "--cert-dir": "/certs", "--port": "9443",
			"--metrics-bind-address": ":8080", "--health-probe-bind-address": ":8081",
			"--log-format": r.value("logFormat").(string),
		} {
			if flags[k] != v {
				t.Errorf("%s=%q, want %q", k, flags[k], v)
			}
		}

		// Graceful shutdown: --shutdown-delay, then --shutdown-grace, within
		// the termination grace period, long enough for an in-flight review.
		grace, err := time.ParseDuration(flags["--shutdown-grace"])
		if err != nil {
			t.Fatalf("--shutdown-grace: %v", err)
		}
		delay, err := time.ParseDuration(flags["--shutdown-delay"])
		if err != nil {
			t.Fatalf("--shutdown-delay: %v", err)
		}
		if want := time.Duration(r.intValue(t, "shutdownDelaySeconds")) * time.Second; delay != want {
			t.Errorf("--shutdown-delay %s, want %s", delay, want)
		}
		tgps := pod.TerminationGracePeriodSeconds
		if tgps == nil || *tgps != int64(r.intValue(t, "terminationGracePeriodSeconds")) {
			t.Fatalf("terminationGracePeriodSeconds %s, want %d", show(tgps), r.intValue(t, "terminationGracePeriodSeconds"))
		}
		timeout := time.Duration(r.intValue(t, "webhook.timeoutSeconds")) * time.Second
		if total := time.Duration(*tgps) * time.Second; delay+grace >= total || grace < timeout {
			t.Errorf("shutdown-delay %s + shutdown-grace %s must stay below terminationGracePeriodSeconds %s, and the grace must cover the %s webhook timeout", delay, grace, total, timeout)
		}
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Exec != nil {
			t.Errorf("preStop exec %v: the image has no shell", c.Lifecycle.PreStop.Exec.Command)
		}

		// Probes on the health port.
		ports := map[string]int32{}
		for _, p := range c.Ports {
			ports[p.Name] = p.ContainerPort
		}
		if ports["webhook"] != 9443 || ports["metrics"] != 8080 || ports["health"] != 8081 {
			t.Errorf("ports %v", ports)
		}
		for name, probe := range map[string]*corev1.Probe{"/readyz": c.ReadinessProbe, "/healthz": c.LivenessProbe} {
			if probe == nil || probe.HTTPGet == nil {
				t.Errorf("no HTTP probe on %s", name)
				continue
			}
			port := probe.HTTPGet.Port
			if probe.HTTPGet.Path != name || (port.String() != "health" && port.IntValue() != 8081) {
				t.Errorf("probe %s: %+v, want %s on port 8081", name, probe.HTTPGet, name)
			}
		}

		// Requests and limits.
		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := c.Resources.Requests[res]; !ok {
				t.Errorf("no %s request", res)
			}
		}
		if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
			t.Errorf("no memory limit")
		}

		// Image.
		want := r.value("image.repository").(string) + ":v"
		if d, _ := r.value("image.digest").(string); d != "" {
			want = r.value("image.repository").(string) + "@" + d
		}
		if !strings.HasPrefix(c.Image, want) {
			t.Errorf("image %q, want %s...", c.Image, want)
		}

		// Mounts: the config, the certificate Secret, a scratch /tmp.
		mounts := map[string]string{}
		for _, m := range c.VolumeMounts {
			mounts[m.MountPath] = m.Name
		}
		vols := map[string]corev1.Volume{}
		for _, v := range pod.Volumes {
			vols[v.Name] = v
		}
		if v := vols[mounts["/etc/stateguard"]]; v.ConfigMap == nil || v.ConfigMap.Name != r.configMap.Name {
			t.Errorf("/etc/stateguard is not the ConfigMap %s: %+v", r.configMap.Name, v)
		}
		if v := vols[mounts["/certs"]]; v.Secret == nil || v.Secret.SecretName != tlsSecretName(r) {
			t.Errorf("/certs is not the Secret %s: %+v", tlsSecretName(r), v)
		}
		if v := vols[mounts["/tmp"]]; v.EmptyDir == nil {
			t.Errorf("/tmp is not an emptyDir: %+v", v)
		}
	})
}

func tlsSecretName(r *rendering) string {
	if r.value("certManager.enabled") == true {
		return r.fullname() + "-serving-tls"
	}
	return r.fullname() + "-tls"
}

// restricted checks the restricted Pod Security profile on a pod spec.
func restricted(t *testing.T, what string, pod corev1.PodSpec) {
	t.Helper()
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod securityContext %+v: want runAsNonRoot and seccomp RuntimeDefault", what, psc)
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Errorf("%s: uses host namespaces", what)
	}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			t.Errorf("%s: hostPath volume %s", what, v.Name)
		}
	}
	for _, c := range append(append([]corev1.Container(nil), pod.InitContainers...), pod.Containers...) {
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("%s/%s: no securityContext", what, c.Name)
			continue
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s/%s: allowPrivilegeEscalation not false", what, c.Name)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s/%s: privileged", what, c.Name)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s/%s: root filesystem not read-only", what, c.Name)
		}
		if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
			t.Errorf("%s/%s: capabilities %+v, want drop [ALL], add none", what, c.Name, sc.Capabilities)
		}
		uid := sc.RunAsUser
		if uid == nil {
			uid = psc.RunAsUser
		}
		if uid == nil || *uid == 0 {
			t.Errorf("%s/%s: runs as UID %v, want non-root", what, c.Name, uid)
		}
		if sc.SeccompProfile != nil && sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s/%s: seccomp %s", what, c.Name, sc.SeccompProfile.Type)
		}
	}
}

func TestPodSecurityRestricted(t *testing.T) {
	forEachRendering(t, func(t *testing.T, r *rendering) {
		restricted(t, "Deployment", r.deployment.Spec.Template.Spec)
		for _, p := range helmTestPods(t, r) {
			restricted(t, p.what, p.pod.Spec)
		}
	})
}

// namedPod is a pod the chart makes, named for test messages.
type namedPod struct {
	what string
	pod  *corev1.Pod
}

// helmTestPods returns the chart's helm test pods and the probe pod each of
// them starts.
func helmTestPods(t *testing.T, r *rendering) []namedPod {
	t.Helper()
	var out []namedPod
	for _, o := range r.testObjects {
		if o.Kind != "Pod" {
			continue
		}
		var pod corev1.Pod
		if err := decodeStrict(o.JSON, &pod); err != nil {
			t.Fatal(err)
		}
		out = append(out, namedPod{o.String(), &pod})
		if probe := probePod(t, &pod, "uid"); probe != nil {
			out = append(out, namedPod{"probe pod of " + o.String(), probe})
		}
	}
	return out
}

func TestRBACLeastPrivilege(t *testing.T) {
	forEachRendering(t, func(t *testing.T, r *rendering) {
		// Exactly these, read-only.
		want := map[string]bool{"/services": true, "/namespaces": true, "storage.k8s.io/storageclasses": true, "apps/statefulsets": true}
		got := map[string]bool{}
		for _, rule := range r.clusterRole.Rules {
			if len(rule.NonResourceURLs) > 0 || len(rule.ResourceNames) > 0 {
				t.Errorf("unexpected rule %+v", rule)
			}
			verbs := append([]string(nil), rule.Verbs...)
			sort.Strings(verbs)
			if !slices.Equal(verbs, []string{"get", "list", "watch"}) {
				t.Errorf("rule %+v: verbs %v, want exactly get, list, watch", rule, rule.Verbs)
			}
			for _, g := range rule.APIGroups {
				for _, res := range rule.Resources {
					if g == "*" || res == "*" || strings.Contains(res, "secret") {
						t.Errorf("rule %+v grants %s/%s", rule, g, res)
					}
					got[g+"/"+res] = true
				}
			}
		}
		if !maps.Equal(got, want) {
			t.Errorf("ClusterRole covers %v, want exactly %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		}
		b := r.clusterRoleBinding
		if b.RoleRef.Kind != "ClusterRole" || b.RoleRef.Name != r.clusterRole.Name || len(b.Subjects) != 1 ||
			b.Subjects[0].Kind != "ServiceAccount" || b.Subjects[0].Name != r.serviceAccount.Name || b.Subjects[0].Namespace != r.namespace() {
			t.Errorf("ClusterRoleBinding %+v does not bind the ClusterRole to the webhook's ServiceAccount", b)
		}
		// No other (Cluster)Role outside the helm test hooks.
		for _, o := range r.objs {
			if (o.Kind == "Role" || o.Kind == "RoleBinding") && !o.isTestHook() {
				t.Errorf("%s: unexpected", o)
			}
		}
	})
}

func TestWebhookRegistration(t *testing.T) {
	forEachRendering(t, func(t *testing.T, r *rendering) {
		failurePolicy := admissionregistrationv1.FailurePolicyType(r.value("webhook.failurePolicy").(string))
		timeout := int32(r.intValue(t, "webhook.timeoutSeconds"))
		if r.name == "" && (failurePolicy != admissionregistrationv1.Fail || timeout != 5) {
			t.Errorf("defaults: failurePolicy %s timeout %d, want Fail and 5", failurePolicy, timeout)
		}
		webhookSvc := r.services[r.fullname()+"-webhook"]
		if webhookSvc == nil {
			t.Fatalf("no webhook Service %s-webhook", r.fullname())
		}
		if len(webhookSvc.Spec.Ports) != 1 || webhookSvc.Spec.Ports[0].Port != 443 || webhookSvc.Spec.Ports[0].TargetPort.String() != "webhook" {
			t.Errorf("webhook Service ports %+v: want 443 -> webhook (9443)", webhookSvc.Spec.Ports)
		}
		if !maps.Equal(webhookSvc.Spec.Selector, r.deployment.Spec.Selector.MatchLabels) {
			t.Errorf("webhook Service selector %v, want the Deployment's", webhookSvc.Spec.Selector)
		}

		type hook struct {
			name          string
			path          string
			rules         []admissionregistrationv1.RuleWithOperations
			common        commonFields
			reinvocation  *admissionregistrationv1.ReinvocationPolicyType
			clientConfig  admissionregistrationv1.WebhookClientConfig
			configuration string
		}
		var hooks []hook
		for _, w := range r.mutating.Webhooks {
			hooks = append(hooks, hook{name: w.Name, rules: w.Rules, reinvocation: w.ReinvocationPolicy, clientConfig: w.ClientConfig,
				common: commonFields{w.AdmissionReviewVersions, w.SideEffects, w.MatchPolicy, w.FailurePolicy, w.TimeoutSeconds, w.NamespaceSelector, w.ObjectSelector}, configuration: "mutating"})
		}
		for _, w := range r.validating.Webhooks {
			hooks = append(hooks, hook{name: w.Name, rules: w.Rules, clientConfig: w.ClientConfig,
				common: commonFields{w.AdmissionReviewVersions, w.SideEffects, w.MatchPolicy, w.FailurePolicy, w.TimeoutSeconds, w.NamespaceSelector, w.ObjectSelector}, configuration: "validating"})
		}

		want := map[string]struct {
			configuration, path, group, resource string
			ops                                  []admissionregistrationv1.OperationType
		}{
			"statefulsets.mutate.stateguard.dev":   {"mutating", webhook.MutateStatefulSetPath, "apps", "statefulsets", []admissionregistrationv1.OperationType{"CREATE", "UPDATE"}},
			"statefulsets.validate.stateguard.dev": {"validating", webhook.ValidateStatefulSetPath, "apps", "statefulsets", []admissionregistrationv1.OperationType{"CREATE", "UPDATE"}},
			"services.validate.stateguard.dev":     {"validating", webhook.ValidateServicePath, "", "services", []admissionregistrationv1.OperationType{"UPDATE", "DELETE"}},
		}
		if len(hooks) != len(want) {
			t.Errorf("%d webhooks, want %d", len(hooks), len(want))
		}
		for _, h := range hooks {
			w, ok := want[h.name]
			if !ok {
				t.Errorf("unexpected webhook %q", h.name)
				continue
			}
			if h.configuration != w.configuration {
				t.Errorf("%s: in the %s configuration, want %s", h.name, h.configuration, w.configuration)
			}
			svc := h.clientConfig.Service
			if svc == nil || svc.Path == nil || *svc.Path != w.path || svc.Name != webhookSvc.Name || svc.Namespace != r.namespace() || svc.Port == nil || *svc.Port != 443 || h.clientConfig.URL != nil {
				t.Errorf("%s: clientConfig service %v url %v, want service %s/%s:443 path %s", h.name, svc, show(h.clientConfig.URL), r.namespace(), webhookSvc.Name, w.path)
			}
			if len(h.rules) != 1 {
				t.Fatalf("%s: %d rules, want 1", h.name, len(h.rules))
			}
			rule := h.rules[0]
			if !slices.Equal(rule.APIGroups, []string{w.group}) || !slices.Equal(rule.APIVersions, []string{"v1"}) ||
				!slices.Equal(rule.Resources, []string{w.resource}) || !slices.Equal(rule.Operations, w.ops) ||
				rule.Scope == nil || *rule.Scope != admissionregistrationv1.NamespacedScope {
				t.Errorf("%s: rule %+v, want %q/v1 %s %v, Namespaced", h.name, rule, w.group, w.resource, w.ops)
			}
			c := h.common
			if !slices.Equal(c.reviewVersions, []string{"v1"}) {
				t.Errorf("%s: admissionReviewVersions %v", h.name, c.reviewVersions)
			}
			if c.sideEffects == nil || *c.sideEffects != admissionregistrationv1.SideEffectClassNone {
				t.Errorf("%s: sideEffects %v, want None", h.name, show(c.sideEffects))
			}
			if c.matchPolicy == nil || *c.matchPolicy != admissionregistrationv1.Equivalent {
				t.Errorf("%s: matchPolicy %v, want Equivalent", h.name, show(c.matchPolicy))
			}
			if c.failurePolicy == nil || *c.failurePolicy != failurePolicy {
				t.Errorf("%s: failurePolicy %v, want %s", h.name, show(c.failurePolicy), failurePolicy)
			}
			if c.timeoutSeconds == nil || *c.timeoutSeconds != timeout {
				t.Errorf("%s: timeoutSeconds %v, want %d", h.name, show(c.timeoutSeconds), timeout)
			}
			if c.objectSelector != nil && (len(c.objectSelector.MatchLabels) > 0 || len(c.objectSelector.MatchExpressions) > 0) {
				t.Errorf("%s: objectSelector %+v: whoever edits a workload must not be able to exempt it", h.name, c.objectSelector)
			}
			if h.configuration == "mutating" && (h.reinvocation == nil || *h.reinvocation != admissionregistrationv1.IfNeededReinvocationPolicy) {
				t.Errorf("%s: reinvocationPolicy %v, want IfNeeded", h.name, show(h.reinvocation))
			}
			// The selector leaves out exactly the exempt namespaces, which
			// always include the defaults (unless replaced) and the release's.
			ns := c.namespaceSelector
			if ns == nil || len(ns.MatchLabels) != 0 || len(ns.MatchExpressions) != 1 {
				t.Fatalf("%s: namespaceSelector %+v: want one matchExpression", h.name, ns)
			}
			e := ns.MatchExpressions[0]
			if e.Key != corev1.LabelMetadataName || e.Operator != "NotIn" {
				t.Errorf("%s: namespaceSelector %+v: want kubernetes.io/metadata.name NotIn", h.name, e)
			}
			if !slices.Equal(e.Values, r.wantExempt()) {
				t.Errorf("%s: namespaceSelector leaves out %v, want %v", h.name, e.Values, r.wantExempt())
			}
			if !slices.Contains(e.Values, r.namespace()) {
				t.Errorf("%s: the release namespace %s is not left out: the webhook could block its own recovery", h.name, r.namespace())
			}
			if !slices.Equal(e.Values, r.policyConfig.ExemptNamespaces) {
				t.Errorf("%s: namespaceSelector %v differs from the PolicyConfig's exemptNamespaces %v", h.name, e.Values, r.policyConfig.ExemptNamespaces)
			}
		}
		if r.name == "" {
			e := r.validating.Webhooks[0].NamespaceSelector.MatchExpressions[0].Values
			for _, ns := range []string{"kube-system", "kube-public", "kube-node-lease", defaultNamespace} {
				if !slices.Contains(e, ns) {
					t.Errorf("defaults: %s is not exempt", ns)
				}
			}
		}
	})
}

type commonFields struct {
	reviewVersions    []string
	sideEffects       *admissionregistrationv1.SideEffectClass
	matchPolicy       *admissionregistrationv1.MatchPolicyType
	failurePolicy     *admissionregistrationv1.FailurePolicyType
	timeoutSeconds    *int32
	namespaceSelector *metav1.LabelSelector
	objectSelector    *metav1.LabelSelector
}

func TestWebhooksTemplateHoldsOnlyTheTwoConfigurations(t *testing.T) {
	// The webhook's integration tests register exactly this file.
	for _, vs := range [][]string{nil, {"certManager.enabled=false"}} {
		objs := splitObjects(t, render(t, renderOpts{ShowOnly: "templates/webhooks.yaml", Set: vs}))
		var kinds []string
		for _, o := range objs {
			kinds = append(kinds, o.Kind)
		}
		if !slices.Equal(kinds, []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}) {
			t.Errorf("--set %v: templates/webhooks.yaml renders %v", vs, kinds)
		}
	}
}

func TestPolicyConfigLoads(t *testing.T) {
	forEachRendering(t, func(t *testing.T, r *rendering) {
		file := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(file, []byte(r.configMap.Data["config.yaml"]), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := config.Load(config.Options{Path: file}); err != nil {
			t.Fatalf("the webhook's config loader rejects the ConfigMap's PolicyConfig: %v\n%s", err, r.configMap.Data["config.yaml"])
		}
		pc := r.policyConfig
		if pc.APIVersion != policies.ConfigAPIVersion || pc.Kind != policies.ConfigKind {
			t.Errorf("apiVersion/kind %s/%s", pc.APIVersion, pc.Kind)
		}
		if !slices.Equal(pc.ExemptNamespaces, r.wantExempt()) {
			t.Errorf("exemptNamespaces %v, want %v", pc.ExemptNamespaces, r.wantExempt())
		}
		// What the values asked for is what the config says.
		if want, _ := r.value("config.profile").(string); pc.Profile != want {
			t.Errorf("profile %q, want %q", pc.Profile, want)
		}
		if want, _ := r.value("config.defaultMode").(string); string(pc.DefaultMode) != want {
			t.Errorf("defaultMode %q, want %q", pc.DefaultMode, want)
		}
		if r.name == "values-eks-warn.yaml" {
			sc := pc.Policies.StorageClass
			if pc.Policies.HeadlessService.Mode != policies.Enforce || sc.Mode != policies.Audit || sc.Classes["ReadWriteOnce"] != "gp3" ||
				!slices.Equal(sc.Allowed, []string{"gp3", "efs-sc"}) || !sc.AllowStaticBinding || sc.DefaultSize.String() != "20Gi" ||
				len(sc.Catalog) != 1 || pc.Policies.SnapshotSchedule.LabelKey != "backup.example.com/schedule" {
				t.Errorf("custom policies not carried over: %+v", pc.Policies)
			}
		}
	})
}

func TestConfigChangeRollsPods(t *testing.T) {
	checksum := func(set ...string) string {
		t.Helper()
		objs := splitObjects(t, renderFresh(t, renderOpts{ShowOnly: "templates/deployment.yaml", Set: set}))
		var d appsv1.Deployment
		if err := decodeStrict(objs[0].JSON, &d); err != nil {
			t.Fatal(err)
		}
		sum := d.Spec.Template.Annotations["checksum/config"]
		if len(sum) != 64 {
			t.Fatalf("checksum/config annotation %q: want a SHA-256", sum)
		}
		return sum
	}
	base := checksum()
	if again := checksum(); again != base {
		t.Errorf("checksum differs between two renders of the same values: %s, %s", base, again)
	}
	if other := checksum("replicaCount=5", "webhook.timeoutSeconds=10"); other != base {
		t.Errorf("checksum/config changed with values that are not the config")
	}
	for _, set := range [][]string{
		{"config.defaultMode=warn"},
		{"config.policies.headless-service.mode=audit"},
		{"config.exemptNamespaces={kube-system}"},
		{"config.profile=gke"},
	} {
		if got := checksum(set...); got == base {
			t.Errorf("--set %v changes the config but not checksum/config: the pods would keep the old config", set)
		}
	}
	// The release namespace is part of the config, so it counts too.
	objs := splitObjects(t, render(t, renderOpts{Namespace: "elsewhere", ShowOnly: "templates/deployment.yaml"}))
	if strings.Contains(string(objs[0].JSON), base) {
		t.Errorf("checksum/config ignores the release namespace, which the config's exemptNamespaces contain")
	}
}

func TestCertManagerChain(t *testing.T) {
	r := renderAndDecode(t, "")
	fn, ns := r.fullname(), r.namespace()
	if len(r.secrets) != 0 {
		t.Errorf("with cert-manager the chart must not render Secrets, got %d", len(r.secrets))
	}
	selfSigned := r.issuers[fn+"-selfsigned"]
	caIssuer := r.issuers[fn+"-ca"]
	caCert := r.certificates[fn+"-ca"]
	serving := r.certificates[fn+"-serving"]
	if selfSigned == nil || caIssuer == nil || caCert == nil || serving == nil || len(r.issuers) != 2 || len(r.certificates) != 2 {
		t.Fatalf("want Issuers %[1]s-selfsigned, %[1]s-ca and Certificates %[1]s-ca, %[1]s-serving; got %v, %v", fn, slices.Sorted(maps.Keys(r.issuers)), slices.Sorted(maps.Keys(r.certificates)))
	}
	if selfSigned.Spec.SelfSigned == nil {
		t.Errorf("%s is not a selfSigned issuer", selfSigned.Name)
	}
	if !caCert.Spec.IsCA || caCert.Spec.IssuerRef.Name != selfSigned.Name || caCert.Spec.IssuerRef.Kind != "Issuer" {
		t.Errorf("CA Certificate %+v: want isCA, issued by %s", caCert.Spec, selfSigned.Name)
	}
	if caIssuer.Spec.CA == nil || caIssuer.Spec.CA.SecretName != caCert.Spec.SecretName {
		t.Errorf("CA Issuer %+v: want ca.secretName %s", caIssuer.Spec, caCert.Spec.SecretName)
	}
	if serving.Spec.IsCA || serving.Spec.IssuerRef.Name != caIssuer.Name || serving.Spec.IssuerRef.Kind != "Issuer" {
		t.Errorf("serving Certificate %+v: want issued by %s", serving.Spec, caIssuer.Name)
	}
	svc := fn + "-webhook"
	wantDNS := []string{svc, svc + "." + ns, svc + "." + ns + ".svc", svc + "." + ns + ".svc.cluster.local"}
	if !slices.Equal(serving.Spec.DNSNames, wantDNS) {
		t.Errorf("serving DNS names %v, want %v", serving.Spec.DNSNames, wantDNS)
	}
	if !slices.Contains(serving.Spec.Usages, cmv1.UsageServerAuth) {
		t.Errorf("serving usages %v lack server auth", serving.Spec.Usages)
	}
	if serving.Spec.SecretName != tlsSecretName(r) {
		t.Errorf("serving secret %s, the Deployment mounts %s", serving.Spec.SecretName, tlsSecretName(r))
	}
	for _, d := range []*cmv1.Certificate{caCert, serving} {
		if d.Spec.Duration == nil || d.Spec.Duration.Duration < 30*24*time.Hour {
			t.Errorf("%s: duration %v", d.Name, d.Spec.Duration)
		}
	}
	for _, annotations := range []map[string]string{r.mutating.Annotations, r.validating.Annotations} {
		if got := annotations["cert-manager.io/inject-ca-from"]; got != ns+"/"+serving.Name {
			t.Errorf("inject-ca-from %q, want %s/%s", got, ns, serving.Name)
		}
	}
	for _, w := range r.validating.Webhooks {
		if len(w.ClientConfig.CABundle) != 0 {
			t.Errorf("%s: caBundle set although cert-manager injects it", w.Name)
		}
	}
}

func TestSelfSignedCertificate(t *testing.T) {
	r := renderAndDecode(t, "values-self-signed.yaml")
	if len(r.issuers)+len(r.certificates) != 0 {
		t.Errorf("cert-manager objects rendered with certManager.enabled=false")
	}
	if len(r.secrets) != 1 {
		t.Fatalf("want one Secret, got %d", len(r.secrets))
	}
	s := r.secrets[0]
	if s.Name != tlsSecretName(r) || s.Type != corev1.SecretTypeTLS {
		t.Errorf("Secret %s of type %s, want %s of type kubernetes.io/tls", s.Name, s.Type, tlsSecretName(r))
	}
	for _, k := range []string{"tls.crt", "tls.key", "ca.crt"} {
		if len(s.Data[k]) == 0 {
			t.Fatalf("Secret lacks %s", k)
		}
	}
	if _, err := tls.X509KeyPair(s.Data["tls.crt"], s.Data["tls.key"]); err != nil {
		t.Errorf("tls.crt and tls.key do not match: %v", err)
	}
	svc := r.fullname() + "-webhook." + r.namespace() + ".svc"
	verifyServingCert(t, s.Data["ca.crt"], s.Data["tls.crt"], svc, 730)
	for _, w := range r.mutating.Webhooks {
		if string(w.ClientConfig.CABundle) != string(s.Data["ca.crt"]) {
			t.Errorf("%s: caBundle differs from the Secret's ca.crt", w.Name)
		}
	}
	for _, w := range r.validating.Webhooks {
		if string(w.ClientConfig.CABundle) != string(s.Data["ca.crt"]) {
			t.Errorf("%s: caBundle differs from the Secret's ca.crt", w.Name)
		}
	}
	if len(r.mutating.Annotations["cert-manager.io/inject-ca-from"]+r.validating.Annotations["cert-manager.io/inject-ca-from"]) != 0 {
		t.Errorf("inject-ca-from without cert-manager")
	}
	if len(r.deployment.Spec.Template.Annotations["checksum/tls"]) != 64 {
		t.Errorf("no checksum/tls annotation: a regenerated certificate would not roll the pods")
	}
}

// verifyServingCert checks that cert is signed by ca, valid now for the
// service's DNS name for about validityDays, and a server certificate.
func verifyServingCert(t *testing.T, caPEM, certPEM []byte, dnsName string, validityDays int) {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("ca.crt holds no certificate")
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatalf("tls.crt is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: dnsName, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("serving certificate does not verify for %s against ca.crt: %v", dnsName, err)
	}
	if days := int(cert.NotAfter.Sub(cert.NotBefore).Hours() / 24); days < validityDays-1 || days > validityDays+1 {
		t.Errorf("certificate valid %d days, want %d", days, validityDays)
	}
}

func TestMetricsAndMonitoring(t *testing.T) {
	def := renderAndDecode(t, "")
	if len(def.unstructured) != 0 || len(ofKind(def.objs, "ConfigMap")) != 1+len(ofKind(def.testObjects, "ConfigMap")) {
		t.Errorf("monitoring objects rendered by default")
	}
	r := renderAndDecode(t, "values-monitoring.yaml")
	metricsSvc := r.services[r.fullname()+"-metrics"]
	if metricsSvc == nil || len(metricsSvc.Spec.Ports) != 1 || metricsSvc.Spec.Ports[0].Port != 8080 || metricsSvc.Spec.Ports[0].Name != "metrics" {
		t.Fatalf("metrics Service %+v: want port 8080 named metrics", metricsSvc)
	}

	sm := r.unstructured["ServiceMonitor"]
	if sm == nil {
		t.Fatalf("no ServiceMonitor")
	}
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	for k, v := range sel {
		if metricsSvc.Labels[k] != v {
			t.Errorf("ServiceMonitor selector %v does not select the metrics Service (labels %v)", sel, metricsSvc.Labels)
		}
	}
	if !maps.Equal(sel, mergeMaps(r.deployment.Spec.Selector.MatchLabels, map[string]string{"stateguard.dev/service": "metrics"})) {
		t.Errorf("ServiceMonitor selector %v would also select the webhook Service", sel)
	}
	endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(endpoints) != 1 {
		t.Fatalf("ServiceMonitor endpoints %v", endpoints)
	}
	ep := endpoints[0].(map[string]any)
	if ep["port"] != "metrics" || ep["path"] != "/metrics" || ep["interval"] != "15s" {
		t.Errorf("ServiceMonitor endpoint %v", ep)
	}
	if sm.GetLabels()["release"] != "kube-prometheus-stack" {
		t.Errorf("ServiceMonitor labels %v lack metrics.serviceMonitor.labels", sm.GetLabels())
	}

	pr := r.unstructured["PrometheusRule"]
	if pr == nil {
		t.Fatalf("no PrometheusRule")
	}
	groups, _, _ := unstructured.NestedSlice(pr.Object, "spec", "groups")
	exprs := map[string]string{}
	for _, g := range groups {
		rules, _, _ := unstructured.NestedSlice(g.(map[string]any), "rules")
		for _, rule := range rules {
			m := rule.(map[string]any)
			alert, _ := m["alert"].(string)
			expr, _ := m["expr"].(string)
			severity, _, _ := unstructured.NestedString(m, "labels", "severity")
			summary, _, _ := unstructured.NestedString(m, "annotations", "summary")
			if alert == "" || expr == "" || severity == "" || summary == "" {
				t.Errorf("rule %v: want alert, expr, labels.severity, annotations.summary", m)
			}
			exprs[alert] = expr
		}
	}
	selector := fmt.Sprintf(`job="%s-metrics",namespace="%s"`, r.fullname(), r.namespace())
	for alert, want := range map[string][]string{
		"StateguardWebhookDown":     {"up{" + selector + "}"},
		"StateguardAdmissionErrors": {"stateguard_admission_decisions_total{" + selector, `decision="error"`},
		"StateguardAdmissionPanics": {"stateguard_admission_panics_total{" + selector},
		"StateguardAdmissionSlow":   {"stateguard_admission_duration_seconds_bucket{" + selector, "by (webhook, le)", "> 2.5"},
		"StateguardDenialsSpike":    {"stateguard_admission_decisions_total{" + selector, `decision="deny"`, "by (policy)"},
	} {
		expr, ok := exprs[alert]
		if !ok {
			t.Errorf("no alert %s", alert)
			continue
		}
		for _, w := range want {
			if !strings.Contains(expr, w) {
				t.Errorf("%s: expr %q lacks %q", alert, expr, w)
			}
		}
	}

	var dash *corev1.ConfigMap
	for _, o := range ofKind(r.objs, "ConfigMap") {
		if o.Metadata.Name == r.fullname()+"-dashboard" {
			dash = decodeInto[corev1.ConfigMap](t, r.objs, "ConfigMap", o.Metadata.Name)
		}
	}
	if dash == nil || dash.Labels["grafana_dashboard"] != "1" || dash.Annotations["grafana_folder"] != "Platform" {
		t.Fatalf("dashboard ConfigMap %+v: want label grafana_dashboard: \"1\" and the annotations", dash)
	}
	var board struct {
		UID    string `json:"uid"`
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(dash.Data["stateguard.json"]), &board); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	metrics := map[string]bool{}
	for _, p := range board.Panels {
		for _, target := range p.Targets {
			for _, m := range []string{"stateguard_admission_decisions_total", "stateguard_admission_duration_seconds_bucket", "stateguard_mutations_total", "stateguard_admission_panics_total", "up{"} {
				if strings.Contains(target.Expr, m) {
					metrics[m] = true
				}
			}
		}
	}
	if board.UID == "" || len(metrics) != 5 {
		t.Errorf("dashboard %q plots %v, want every stateguard metric and up", board.Title, slices.Sorted(maps.Keys(metrics)))
	}
}

func mergeMaps(a, b map[string]string) map[string]string {
	out := map[string]string{}
	maps.Copy(out, a)
	maps.Copy(out, b)
	return out
}

// show renders a pointer's value for a message.
func show[T any](p *T) string {
	if p == nil {
		return "<unset>"
	}
	return fmt.Sprint(*p)
}
