package policies

// storage-class: every claim template gets a StorageClass that can actually
// serve it. A disk class asked for ReadWriteMany leaves pods Pending forever,
// and that failure shows only in events, long after the apply succeeded.
//
// Mutates (CREATE only): fills an absent storageClassName with the class the
// config maps from the template's access modes, and turns a volumeMount that
// names neither a pod volume nor a claim template into a new claim template:
// the API server admits such a StatefulSet, but rejects every pod it creates.
// On UPDATE it only copies those values back from the live object, because
// claim templates are immutable and re-applying the original manifest must work.
//
// Validates: the class exists, is allowed, and its provisioner serves the
// template's access and volume modes (per the capability table); "" (static
// binding) only when the config allows it. Reclaim, binding and expansion
// settings that endanger data are warnings. On UPDATE everything is advisory.

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var storageClassPolicy = Policy{
	ID:                  StorageClass,
	MutateStatefulSet:   mutateStorageClass,
	ValidateStatefulSet: validateStorageClass,
	AdvisoryOnUpdate:    true, // claim templates are immutable: a denial could never get the class fixed
}

// sharedFirst orders access modes by how much they demand of a volume: when a
// template asks for several, the most demanding decides the class.
var sharedFirst = []corev1.PersistentVolumeAccessMode{
	corev1.ReadWriteMany, corev1.ReadOnlyMany, corev1.ReadWriteOnce, corev1.ReadWriteOncePod,
}

// ClassForAccessModes returns the class the config maps to a claim's access
// modes: a shared-file class if any mode is shared, else the disk class.
// No modes means ReadWriteOnce, the API server's own assumption for claims.
func (c *Config) ClassForAccessModes(modes []corev1.PersistentVolumeAccessMode) (string, bool) {
	if len(modes) == 0 {
		modes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	}
	for _, want := range sharedFirst {
		for _, m := range modes {
			if m == want {
				class, ok := c.Policies.StorageClass.Classes[m]
				return class, ok && class != ""
			}
		}
	}
	return "", false
}

func mutateStorageClass(r *StatefulSetReview, sts *appsv1.StatefulSet) []Mutation {
	if r.Operation == Update {
		return restoreStorageClass(r.OldObject, sts)
	}
	if r.Operation != Create {
		return nil
	}
	var out []Mutation
	cfg := &r.Config.Policies.StorageClass
	for _, name := range danglingMounts(sts) {
		tmpl := corev1.PersistentVolumeClaim{}
		tmpl.Name = name
		tmpl.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
		tmpl.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: cfg.DefaultSize.DeepCopy()}
		if class, ok := r.Config.ClassForAccessModes(tmpl.Spec.AccessModes); ok {
			tmpl.Spec.StorageClassName = &class
		}
		sts.Spec.VolumeClaimTemplates = append(sts.Spec.VolumeClaimTemplates, tmpl)
		out = append(out, Mutation{Policy: StorageClass, Path: ClaimTemplatePointer(len(sts.Spec.VolumeClaimTemplates)-1, ""), Value: templateValue(tmpl)})
	}
	for i := range sts.Spec.VolumeClaimTemplates {
		spec := &sts.Spec.VolumeClaimTemplates[i].Spec
		if spec.StorageClassName != nil {
			continue // "" included: it asks for static binding, validated below
		}
		class, ok := r.Config.ClassForAccessModes(spec.AccessModes)
		if !ok {
			continue
		}
		spec.StorageClassName = &class
		out = append(out, Mutation{Policy: StorageClass, Path: ClaimTemplatePointer(i, templateClassField), Value: class})
	}
	return out
}

// templateValue is a claim template as a manifest writes it: the fields set,
// without the empty status and unset timestamp its Go type serializes.
func templateValue(t corev1.PersistentVolumeClaim) any {
	value, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&t)
	if err != nil {
		return t // the same JSON, with the empty status (the converter handles every API type)
	}
	delete(value, "status")
	if meta, ok := value["metadata"].(map[string]any); ok {
		delete(meta, "creationTimestamp")
	}
	return value
}

// danglingMounts returns, in order of first use, the volumeMount names of
// containers and init containers that match neither a pod volume nor a claim
// template.
func danglingMounts(sts *appsv1.StatefulSet) []string {
	known := make(map[string]bool)
	for _, v := range sts.Spec.Template.Spec.Volumes {
		known[v.Name] = true
	}
	for _, t := range sts.Spec.VolumeClaimTemplates {
		known[t.Name] = true
	}
	var out []string
	for _, containers := range [][]corev1.Container{sts.Spec.Template.Spec.InitContainers, sts.Spec.Template.Spec.Containers} {
		for _, c := range containers {
			for _, m := range c.VolumeMounts {
				if m.Name == "" || known[m.Name] {
					continue
				}
				known[m.Name] = true
				out = append(out, m.Name)
			}
		}
	}
	return out
}

// restoreStorageClass copies back, from the live object, what CREATE injected
// and a re-applied manifest lacks: claim templates made for dangling mounts,
// and classes filled into templates that still name none.
func restoreStorageClass(old, sts *appsv1.StatefulSet) []Mutation {
	if old == nil {
		return nil
	}
	var out []Mutation
	have := len(sts.Spec.VolumeClaimTemplates)
	if have < len(old.Spec.VolumeClaimTemplates) && sameTemplateNames(old.Spec.VolumeClaimTemplates[:have], sts.Spec.VolumeClaimTemplates) {
		dangling := map[string]bool{}
		for _, name := range danglingMounts(sts) {
			dangling[name] = true
		}
		extra := old.Spec.VolumeClaimTemplates[have:]
		restorable := true
		for _, t := range extra {
			restorable = restorable && dangling[t.Name]
		}
		if restorable {
			for _, t := range extra {
				sts.Spec.VolumeClaimTemplates = append(sts.Spec.VolumeClaimTemplates, *t.DeepCopy())
				out = append(out, Mutation{Policy: StorageClass, Path: ClaimTemplatePointer(len(sts.Spec.VolumeClaimTemplates)-1, ""), Value: templateValue(t)})
			}
		}
	}
	for i := range sts.Spec.VolumeClaimTemplates {
		if i >= len(old.Spec.VolumeClaimTemplates) {
			break
		}
		cur, prev := &sts.Spec.VolumeClaimTemplates[i], old.Spec.VolumeClaimTemplates[i]
		if cur.Name != prev.Name || cur.Spec.StorageClassName != nil || prev.Spec.StorageClassName == nil {
			continue
		}
		class := *prev.Spec.StorageClassName
		cur.Spec.StorageClassName = &class
		out = append(out, Mutation{Policy: StorageClass, Path: ClaimTemplatePointer(i, templateClassField), Value: class})
	}
	return out
}

func sameTemplateNames(a, b []corev1.PersistentVolumeClaim) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name {
			return false
		}
	}
	return true
}

func validateStorageClass(r *StatefulSetReview) ([]Issue, error) {
	return checkStorageClasses(r.Config, r.Object, r.Lookup)
}

func checkStorageClasses(cfg *Config, sts *appsv1.StatefulSet, lookup Lookup) ([]Issue, error) {
	var issues []Issue
	sc := &cfg.Policies.StorageClass
	warned := map[string]bool{} // class-level warnings, once per class
	templates := field.NewPath("spec", "volumeClaimTemplates")
	for i, tmpl := range sts.Spec.VolumeClaimTemplates {
		p := templates.Index(i).Child("spec", "storageClassName")
		if tmpl.Spec.StorageClassName == nil {
			continue // the cluster's default class applies; mutation fills it when it can
		}
		name := *tmpl.Spec.StorageClassName
		if name == "" {
			if !sc.AllowStaticBinding {
				issues = append(issues, violation(p, "",
					`is "" (static binding); name a class such as %s or set allowStaticBinding: true`, suggestClass(cfg, tmpl.Spec, "")))
			}
			continue
		}
		if len(sc.Allowed) > 0 && !slices.Contains(sc.Allowed, name) {
			issues = append(issues, violation(p, name,
				"%q is not allowed; use one of %s", name, strings.Join(sc.Allowed, ", ")))
			continue
		}
		class, err := lookup.StorageClass(name)
		if err != nil {
			return nil, fmt.Errorf("looking up StorageClass %s: %w", name, err)
		}
		if class == nil {
			issues = append(issues, violation(p, name,
				"StorageClass %q not found; create it or use %s", name, suggestClass(cfg, tmpl.Spec, name)))
			continue
		}
		capability, known := Capabilities[class.Provisioner]
		if !known {
			if !warned[name] {
				issues = append(issues, advisory(p, name,
					"%q: unknown provisioner %q, access modes not checked", name, class.Provisioner))
			}
		} else {
			volumeMode := volumeModeOf(tmpl.Spec)
			for _, m := range tmpl.Spec.AccessModes {
				if !capability.Supports(m, volumeMode) {
					issues = append(issues, violation(p, name,
						"%q (%s) serves no %s %s volumes; use %s", name, class.Provisioner, m, volumeMode, suggestClass(cfg, tmpl.Spec, name)))
					break
				}
			}
		}
		if warned[name] {
			continue
		}
		warned[name] = true
		if class.ReclaimPolicy != nil && *class.ReclaimPolicy == corev1.PersistentVolumeReclaimDelete {
			issues = append(issues, advisory(p, name,
				"%q has reclaimPolicy Delete: deleting a claim deletes its data; prefer a Retain class", name))
		}
		if known && capability.Zonal && class.VolumeBindingMode != nil && *class.VolumeBindingMode == storagev1.VolumeBindingImmediate {
			issues = append(issues, advisory(p, name,
				"%q binds zonal disks Immediately, before pods are scheduled; use WaitForFirstConsumer", name))
		}
		if class.AllowVolumeExpansion == nil || !*class.AllowVolumeExpansion {
			issues = append(issues, advisory(p, name,
				"%q does not allow volume expansion: a full volume cannot be grown in place", name))
		}
	}
	if rp := sts.Spec.PersistentVolumeClaimRetentionPolicy; rp != nil {
		rpPath := field.NewPath("spec", "persistentVolumeClaimRetentionPolicy")
		if rp.WhenDeleted == appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
			issues = append(issues, advisory(rpPath.Child("whenDeleted"), string(rp.WhenDeleted),
				"is Delete: deleting the StatefulSet deletes its claims and their data; use Retain"))
		}
		if rp.WhenScaled == appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
			issues = append(issues, advisory(rpPath.Child("whenScaled"), string(rp.WhenScaled),
				"is Delete: scaling down deletes the claims of removed pods and their data; use Retain"))
		}
	}
	return issues, nil
}

// suggestClass names the class to use instead, for messages: the class the
// config maps the template to, else a catalog class whose provisioner serves
// the template; never failing, the class being reported.
func suggestClass(cfg *Config, spec corev1.PersistentVolumeClaimSpec, failing string) string {
	sc := &cfg.Policies.StorageClass
	usable := func(name string) bool {
		return name != "" && name != failing && (len(sc.Allowed) == 0 || slices.Contains(sc.Allowed, name))
	}
	provisioners := make(map[string]string, len(sc.Catalog))
	for _, c := range sc.Catalog {
		provisioners[c.Name] = c.Provisioner
	}
	if class, ok := cfg.ClassForAccessModes(spec.AccessModes); ok && usable(class) {
		p, inCatalog := provisioners[class]
		if _, known := Capabilities[p]; !inCatalog || !known || serves(p, spec) {
			return fmt.Sprintf("%q", class)
		}
	}
	for _, c := range sc.Catalog {
		if usable(c.Name) && serves(c.Provisioner, spec) {
			return fmt.Sprintf("%q", c.Name)
		}
	}
	var allowed []string
	for _, name := range sc.Allowed {
		if usable(name) {
			allowed = append(allowed, name)
		}
	}
	if len(allowed) > 0 {
		sort.Strings(allowed)
		return "one of " + strings.Join(allowed, ", ")
	}
	return "another StorageClass"
}

// serves reports whether a known provisioner serves every access mode of a
// claim with its volume mode.
func serves(provisioner string, spec corev1.PersistentVolumeClaimSpec) bool {
	capability, ok := Capabilities[provisioner]
	if !ok {
		return false
	}
	modes := spec.AccessModes
	if len(modes) == 0 {
		modes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	}
	for _, m := range modes {
		if !capability.Supports(m, volumeModeOf(spec)) {
			return false
		}
	}
	return true
}

func volumeModeOf(spec corev1.PersistentVolumeClaimSpec) corev1.PersistentVolumeMode {
	if spec.VolumeMode != nil {
		return *spec.VolumeMode
	}
	return corev1.PersistentVolumeFilesystem
}
