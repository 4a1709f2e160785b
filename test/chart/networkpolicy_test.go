package chart_test

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The NetworkPolicy is off by default. When on, it selects exactly the
// webhook pods, is about ingress only, and opens the container's webhook
// port to networkPolicy.webhookFrom (anyone when empty), its metrics port to
// networkPolicy.metricsFrom and its probe port to networkPolicy.probesFrom
// (neither when empty), and nothing else.
func TestNetworkPolicy(t *testing.T) {
	forEachRendering(t, checkNetworkPolicy)

	t.Run("enabled-without-peers", func(t *testing.T) {
		t.Parallel()
		r := renderAndDecode(t, "", "networkPolicy.enabled=true")
		checkNetworkPolicy(t, r)
		np := r.networkPolicy
		if np == nil {
			t.Fatalf("--set networkPolicy.enabled=true renders no NetworkPolicy")
		}
		webhookPort := containerPort(t, r, "webhook")
		if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].From) != 0 || len(np.Spec.Ingress[0].Ports) != 1 ||
			np.Spec.Ingress[0].Ports[0].Port.IntVal != webhookPort.ContainerPort {
			t.Errorf("without peers: ingress %+v, want one rule: port %d from anywhere (metrics and probe ports closed)", np.Spec.Ingress, webhookPort.ContainerPort)
		}
	})
}

func checkNetworkPolicy(t *testing.T, r *rendering) {
	t.Helper()
	enabled := r.value("networkPolicy.enabled") == true
	if r.name == "" && r.opts.Set == nil && enabled {
		t.Errorf("defaults: networkPolicy.enabled is true, want false")
	}
	np := r.networkPolicy
	if !enabled {
		if np != nil {
			t.Errorf("networkPolicy.enabled is false, yet NetworkPolicy %s is rendered", np.Name)
		}
		return
	}
	if np == nil {
		t.Fatalf("networkPolicy.enabled is true, no NetworkPolicy rendered")
	}
	if np.Name != r.fullname() || np.Namespace != r.namespace() {
		t.Errorf("NetworkPolicy %s/%s, want %s/%s", np.Namespace, np.Name, r.namespace(), r.fullname())
	}

	// Exactly the webhook pods: the Deployment's selector, which its pod
	// template carries and the helm test pods do not.
	sel := np.Spec.PodSelector
	if len(sel.MatchExpressions) != 0 || !maps.Equal(sel.MatchLabels, r.deployment.Spec.Selector.MatchLabels) {
		t.Errorf("podSelector %+v, want exactly the Deployment's selector %v", sel, r.deployment.Spec.Selector.MatchLabels)
	}
	selector, err := metav1.LabelSelectorAsSelector(&sel)
	if err != nil {
		t.Fatalf("podSelector: %v", err)
	}
	if !selector.Matches(labels.Set(r.deployment.Spec.Template.Labels)) {
		t.Errorf("podSelector %v does not select the webhook pods (labels %v)", sel.MatchLabels, r.deployment.Spec.Template.Labels)
	}
	for _, p := range helmTestPods(t, r) {
		if selector.Matches(labels.Set(p.pod.Labels)) {
			t.Errorf("podSelector %v also selects %s (labels %v)", sel.MatchLabels, p.what, p.pod.Labels)
		}
	}

	// Ingress only: egress to the API server stays open.
	if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) || len(np.Spec.Egress) != 0 {
		t.Errorf("policyTypes %v with %d egress rules, want [Ingress] and none", np.Spec.PolicyTypes, len(np.Spec.Egress))
	}

	// One rule per port, each port one of the container's, with the peers
	// the values give.
	type want struct {
		port  string // the container port's name
		value string // the values' peer list
	}
	wants := []want{{"webhook", "webhookFrom"}}
	for _, w := range []want{{"metrics", "metricsFrom"}, {"health", "probesFrom"}} {
		if len(peersFromValues(t, r, w.value)) > 0 {
			wants = append(wants, w)
		}
	}
	if r.name == "values-networkpolicy.yaml" && len(wants) != 3 {
		t.Fatalf("%s must set webhookFrom, metricsFrom and probesFrom for this test to mean something", r.name)
	}
	rules := map[int32]networkingv1.NetworkPolicyIngressRule{}
	for _, rule := range np.Spec.Ingress {
		if len(rule.Ports) != 1 || rule.Ports[0].Port == nil {
			t.Errorf("ingress rule %+v: want exactly one port", rule)
			continue
		}
		port := rule.Ports[0].Port.IntVal
		if _, dup := rules[port]; dup {
			t.Errorf("two ingress rules for port %d", port)
		}
		rules[port] = rule
	}
	if len(rules) != len(wants) {
		t.Errorf("ingress rules for ports %v, want one for each of %v", slices.Sorted(maps.Keys(rules)), wants)
	}
	for _, w := range wants {
		cp := containerPort(t, r, w.port)
		rule, ok := rules[cp.ContainerPort]
		if !ok {
			t.Errorf("no ingress rule for the %s port %d", w.port, cp.ContainerPort)
			continue
		}
		p := rule.Ports[0]
		if p.Port.Type != intstr.Int || p.Protocol == nil || *p.Protocol != cp.Protocol || p.EndPort != nil {
			t.Errorf("%s rule port %+v, want the container's port %d/%s by number", w.port, p, cp.ContainerPort, cp.Protocol)
		}
		peers := peersFromValues(t, r, w.value)
		if len(peers) == 0 {
			if len(rule.From) != 0 {
				t.Errorf("%s rule from %+v, want anywhere (networkPolicy.%s is empty)", w.port, rule.From, w.value)
			}
			continue
		}
		if !equality.Semantic.DeepEqual(rule.From, peers) {
			t.Errorf("%s rule from %+v, want networkPolicy.%s %+v", w.port, rule.From, w.value, peers)
		}
	}
}

// peersFromValues decodes networkPolicy.<key> from the effective values,
// strictly, as NetworkPolicyPeers.
func peersFromValues(t *testing.T, r *rendering, key string) []networkingv1.NetworkPolicyPeer {
	t.Helper()
	v := r.value("networkPolicy." + key)
	if v == nil {
		return nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var peers []networkingv1.NetworkPolicyPeer
	if err := decodeStrict(data, &peers); err != nil {
		t.Fatalf("networkPolicy.%s is not a list of NetworkPolicyPeers: %v", key, err)
	}
	return peers
}

// containerPort returns the webhook container's port of that name.
func containerPort(t *testing.T, r *rendering, name string) corev1.ContainerPort {
	t.Helper()
	for _, p := range r.deployment.Spec.Template.Spec.Containers[0].Ports {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("the container has no port named %s", name)
	return corev1.ContainerPort{}
}
