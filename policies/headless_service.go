package policies

// headless-service: a StatefulSet's pods get stable DNS names
// (pod-0.svc.ns.svc.cluster.local) only through a headless Service that
// selects them, and clustered databases find their peers by those names.
//
// Reads: the StatefulSet's spec.serviceName and pod template labels, and the
// Service of that name in its namespace. On CREATE a missing, non-headless or
// mismatched Service is a violation. On UPDATE everything is advisory:
// serviceName is immutable, so denying would only block scaling and rollouts
// of StatefulSets that predate the policy.
//
// The Service guard denies deleting a headless Service that a StatefulSet
// names, or changing its selector so it stops selecting that StatefulSet's
// pods: either silently breaks peer discovery of running databases.

import (
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var headlessServicePolicy = Policy{
	ID:                  HeadlessService,
	ValidateStatefulSet: validateHeadlessService,
	AdvisoryOnUpdate:    true,
	ValidateService:     guardHeadlessService,
}

func validateHeadlessService(r *StatefulSetReview) ([]Issue, error) {
	return checkHeadlessService(r.Namespace, r.Object, r.Lookup)
}

func checkHeadlessService(namespace string, sts *appsv1.StatefulSet, lookup Lookup) ([]Issue, error) {
	namePath := field.NewPath("spec", "serviceName")
	name := sts.Spec.ServiceName
	if name == "" {
		return []Issue{violation(namePath, "",
			"is empty; name a headless Service (clusterIP: None) that selects the pods, for stable pod DNS")}, nil
	}
	svc, err := lookup.Service(namespace, name)
	if err != nil {
		return nil, fmt.Errorf("looking up Service %s/%s: %w", namespace, name, err)
	}
	if svc == nil {
		return []Issue{violation(namePath, name,
			"Service %q not found in namespace %s; create it headless (clusterIP: None) selecting the pods", name, namespace)}, nil
	}
	var issues []Issue
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		found := svc.Spec.ClusterIP
		if found == "" {
			found = "unset, so one is allocated"
		}
		issues = append(issues, violation(namePath, name,
			"Service %q is not headless (clusterIP: %s); set spec.clusterIP: None on it", name, found))
	}
	if len(svc.Spec.Selector) == 0 {
		issues = append(issues, violation(namePath, name,
			"Service %q has no selector; select the pods by their template labels", name))
	} else if missing := missingLabels(svc.Spec.Selector, sts.Spec.Template.Labels); len(missing) > 0 {
		issues = append(issues, violation(field.NewPath("spec", "template", "metadata", "labels"), "",
			"lack %s, which Service %q selects; add them", missing, name))
	}
	if !svc.Spec.PublishNotReadyAddresses {
		issues = append(issues, advisory(namePath, name,
			"Service %q lacks publishNotReadyAddresses: true; clustered databases need peer DNS before they are ready", name))
	}
	return issues, nil
}

// missingLabels returns the selector's key/values that pod labels lack.
func missingLabels(selector, podLabels map[string]string) labels.Set {
	missing := labels.Set{}
	for k, v := range selector {
		if got, ok := podLabels[k]; !ok || got != v {
			missing[k] = v
		}
	}
	return missing
}

// selects reports whether a non-empty Service selector matches pod labels.
func selects(selector, podLabels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if got, ok := podLabels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func guardHeadlessService(r *ServiceReview) ([]Issue, error) {
	old := r.OldObject
	if old == nil || old.Spec.ClusterIP != corev1.ClusterIPNone {
		return nil, nil
	}
	var broken func(*appsv1.StatefulSet) bool
	var p *field.Path
	var format string
	switch {
	case r.Operation == Delete:
		broken = func(*appsv1.StatefulSet) bool { return true }
		format = "deleting headless Service %[1]q breaks pod DNS of StatefulSet %[2]s; delete them first"
	case r.Operation == Update && r.Object != nil:
		broken = func(sts *appsv1.StatefulSet) bool {
			return selects(old.Spec.Selector, sts.Spec.Template.Labels) && !selects(r.Object.Spec.Selector, sts.Spec.Template.Labels)
		}
		p = field.NewPath("spec", "selector")
		format = "no longer selects the pods of StatefulSet %[2]s, breaking their DNS; keep selecting them"
	default:
		return nil, nil
	}
	all, err := r.Lookup.StatefulSets(r.Namespace)
	if err != nil {
		return nil, fmt.Errorf("listing StatefulSets in %s: %w", r.Namespace, err)
	}
	var names []string
	for _, sts := range all {
		if sts.Spec.ServiceName == old.Name && broken(sts) {
			names = append(names, sts.Name)
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	sort.Strings(names)
	return []Issue{violation(p, "", format, old.Name, strings.Join(names, ", "))}, nil
}
