package policies

import (
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const (
	// ConfigAPIVersion and ConfigKind identify a PolicyConfig document.
	ConfigAPIVersion = "stateguard.dev/v1alpha1"
	ConfigKind       = "PolicyConfig"

	// DefaultSnapshotLabelKey is the label that names a StatefulSet's snapshot schedule.
	DefaultSnapshotLabelKey = "stateguard.dev/snapshot-schedule"
)

// Config is the PolicyConfig that serve, check and mutate all read. The zero
// value plus Complete is the built-in aks profile.
type Config struct {
	APIVersion       string         `json:"apiVersion"`
	Kind             string         `json:"kind"`
	Profile          string         `json:"profile,omitempty"`
	DefaultMode      Mode           `json:"defaultMode,omitempty"`
	ExemptNamespaces []string       `json:"exemptNamespaces,omitempty"`
	Policies         PoliciesConfig `json:"policies,omitempty"`
}

// PoliciesConfig holds each policy's settings under its policy ID.
type PoliciesConfig struct {
	HeadlessService  HeadlessServiceConfig  `json:"headless-service,omitempty"`
	StorageClass     StorageClassConfig     `json:"storage-class,omitempty"`
	SnapshotSchedule SnapshotScheduleConfig `json:"snapshot-schedule,omitempty"`
}

// HeadlessServiceConfig tunes the headless-service policy.
type HeadlessServiceConfig struct {
	Mode Mode `json:"mode,omitempty"`
}

// StorageClassConfig tunes the storage-class policy.
type StorageClassConfig struct {
	Mode Mode `json:"mode,omitempty"`
	// Classes maps an access mode to the class that claim templates asking for
	// it get. Entries override the profile's one by one.
	Classes map[corev1.PersistentVolumeAccessMode]string `json:"classes,omitempty"`
	// Allowed, when non-empty, is the only classes claim templates may use.
	Allowed []string `json:"allowed,omitempty"`
	// DefaultSize is the request of claim templates made for dangling volumeMounts.
	DefaultSize *resource.Quantity `json:"defaultSize,omitempty"`
	// AllowStaticBinding admits storageClassName: "" (binding to pre-made PVs).
	AllowStaticBinding bool `json:"allowStaticBinding,omitempty"`
	// Catalog describes classes known without a cluster, for offline checks.
	// Entries override the profile's catalog by name.
	Catalog []CatalogClass `json:"catalog,omitempty"`
}

// CatalogClass describes a StorageClass for offline checks. Fields left out
// take the values the API server would default them to.
type CatalogClass struct {
	Name                 string                                `json:"name"`
	Provisioner          string                                `json:"provisioner"`
	ReclaimPolicy        *corev1.PersistentVolumeReclaimPolicy `json:"reclaimPolicy,omitempty"`
	VolumeBindingMode    *storagev1.VolumeBindingMode          `json:"volumeBindingMode,omitempty"`
	AllowVolumeExpansion *bool                                 `json:"allowVolumeExpansion,omitempty"`
}

// SnapshotScheduleConfig tunes the snapshot-schedule policy.
type SnapshotScheduleConfig struct {
	Mode      Mode     `json:"mode,omitempty"`
	LabelKey  string   `json:"labelKey,omitempty"`
	Schedules []string `json:"schedules,omitempty"`
}

// DefaultExemptNamespaces are exempt when the config names none.
var DefaultExemptNamespaces = []string{"kube-system", "kube-public", "kube-node-lease"}

// DefaultSchedules are the schedule names allowed when the config names none.
var DefaultSchedules = []string{"hourly", "daily", "weekly"}

// Complete returns a copy of c with every unset field filled from its profile
// and the built-in defaults. It does not validate; call Validate on the result.
func (c Config) Complete() Config {
	out := c
	if out.APIVersion == "" {
		out.APIVersion = ConfigAPIVersion
	}
	if out.Kind == "" {
		out.Kind = ConfigKind
	}
	if out.Profile == "" {
		out.Profile = DefaultProfile
	}
	if out.DefaultMode == "" {
		out.DefaultMode = Enforce
	}
	if out.ExemptNamespaces == nil {
		out.ExemptNamespaces = append([]string(nil), DefaultExemptNamespaces...)
	}
	profile, ok := Profiles[out.Profile]
	if !ok {
		// Validate reports the unknown profile; complete what we can.
		profile = Profiles[DefaultProfile]
	}

	sc := &out.Policies.StorageClass
	classes := make(map[corev1.PersistentVolumeAccessMode]string, len(profile.Classes))
	for m, name := range profile.Classes {
		classes[m] = name
	}
	for m, name := range c.Policies.StorageClass.Classes {
		classes[m] = name
	}
	sc.Classes = classes
	if sc.DefaultSize == nil {
		q := resource.MustParse("10Gi")
		sc.DefaultSize = &q
	}
	sc.Catalog = mergeCatalog(profile.Catalog, c.Policies.StorageClass.Catalog)

	ss := &out.Policies.SnapshotSchedule
	if ss.LabelKey == "" {
		ss.LabelKey = DefaultSnapshotLabelKey
	}
	if ss.Schedules == nil {
		ss.Schedules = append([]string(nil), DefaultSchedules...)
	}
	return out
}

// mergeCatalog overlays user entries on the profile's: a user entry with a
// profile entry's name replaces only the fields it sets. User entries come
// first and keep their positions (duplicates included, for Validate to
// report), so a validation error's catalog[i] is the i-th entry of the file.
func mergeCatalog(profile, user []CatalogClass) []CatalogClass {
	byName := make(map[string]CatalogClass, len(profile))
	for _, c := range profile {
		byName[c.Name] = c
	}
	overridden := make(map[string]bool, len(user))
	out := make([]CatalogClass, 0, len(profile)+len(user))
	for _, u := range user {
		merged, ok := byName[u.Name]
		if !ok {
			out = append(out, u)
			continue
		}
		overridden[u.Name] = true
		if u.Provisioner != "" && u.Provisioner != merged.Provisioner {
			// A different provisioner is a different class: the profile's
			// binding mode and expansion facts no longer apply.
			merged = CatalogClass{Name: u.Name, Provisioner: u.Provisioner}
		}
		if u.ReclaimPolicy != nil {
			merged.ReclaimPolicy = u.ReclaimPolicy
		}
		if u.VolumeBindingMode != nil {
			merged.VolumeBindingMode = u.VolumeBindingMode
		}
		if u.AllowVolumeExpansion != nil {
			merged.AllowVolumeExpansion = u.AllowVolumeExpansion
		}
		out = append(out, merged)
	}
	for _, c := range profile {
		if !overridden[c.Name] {
			out = append(out, c)
		}
	}
	return out
}

// Validate checks a completed config and returns every problem, each naming
// its field.
func (c Config) Validate() field.ErrorList {
	var errs field.ErrorList
	if c.APIVersion != ConfigAPIVersion {
		errs = append(errs, field.NotSupported(field.NewPath("apiVersion"), c.APIVersion, []string{ConfigAPIVersion}))
	}
	if c.Kind != ConfigKind {
		errs = append(errs, field.NotSupported(field.NewPath("kind"), c.Kind, []string{ConfigKind}))
	}
	if _, ok := Profiles[c.Profile]; !ok {
		errs = append(errs, field.NotSupported(field.NewPath("profile"), c.Profile, ProfileNames()))
	}
	errs = append(errs, validateMode(c.DefaultMode, field.NewPath("defaultMode"), false)...)
	for i, ns := range c.ExemptNamespaces {
		for _, msg := range validation.IsDNS1123Label(ns) {
			errs = append(errs, field.Invalid(field.NewPath("exemptNamespaces").Index(i), ns, msg))
		}
	}

	policiesPath := field.NewPath("policies")
	errs = append(errs, validateMode(c.Policies.HeadlessService.Mode, policiesPath.Child(string(HeadlessService), "mode"), true)...)

	scPath := policiesPath.Child(string(StorageClass))
	sc := c.Policies.StorageClass
	errs = append(errs, validateMode(sc.Mode, scPath.Child("mode"), true)...)
	for _, m := range sortedAccessModes(sc.Classes) {
		p := scPath.Child("classes").Key(string(m))
		if !slices.Contains(knownAccessModes, m) {
			errs = append(errs, field.NotSupported(p, m, accessModeNames()))
			continue
		}
		errs = append(errs, validateClassName(sc.Classes[m], p)...)
	}
	for i, name := range sc.Allowed {
		errs = append(errs, validateClassName(name, scPath.Child("allowed").Index(i))...)
	}
	if sc.DefaultSize != nil && sc.DefaultSize.Sign() <= 0 {
		errs = append(errs, field.Invalid(scPath.Child("defaultSize"), sc.DefaultSize.String(), "must be greater than zero"))
	}
	seen := map[string]bool{}
	for i, cls := range sc.Catalog {
		p := scPath.Child("catalog").Index(i)
		errs = append(errs, validateClassName(cls.Name, p.Child("name"))...)
		if seen[cls.Name] {
			errs = append(errs, field.Duplicate(p.Child("name"), cls.Name))
		}
		seen[cls.Name] = true
		if cls.Provisioner == "" {
			errs = append(errs, field.Required(p.Child("provisioner"), "the CSI driver or in-tree plugin name, e.g. disk.csi.azure.com"))
		}
	}

	ssPath := policiesPath.Child(string(SnapshotSchedule))
	ss := c.Policies.SnapshotSchedule
	errs = append(errs, validateMode(ss.Mode, ssPath.Child("mode"), true)...)
	for _, msg := range validation.IsQualifiedName(ss.LabelKey) {
		errs = append(errs, field.Invalid(ssPath.Child("labelKey"), ss.LabelKey, msg))
	}
	if len(ss.Schedules) == 0 {
		errs = append(errs, field.Required(ssPath.Child("schedules"), "name at least one schedule, e.g. [hourly, daily, weekly]"))
	}
	names := map[string]bool{}
	for i, s := range ss.Schedules {
		p := ssPath.Child("schedules").Index(i)
		if s == "" {
			errs = append(errs, field.Required(p, "a schedule name"))
			continue
		}
		for _, msg := range validation.IsValidLabelValue(s) {
			errs = append(errs, field.Invalid(p, s, "a schedule is named by a label value, not a cron string: "+msg))
		}
		if names[s] {
			errs = append(errs, field.Duplicate(p, s))
		}
		names[s] = true
	}
	return errs
}

func validateMode(m Mode, p *field.Path, optional bool) field.ErrorList {
	if m == "" && optional {
		return nil
	}
	if _, err := ParseMode(string(m)); err != nil {
		return field.ErrorList{field.NotSupported(p, m, modeNames())}
	}
	return nil
}

func validateClassName(name string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Subdomain(name) {
		errs = append(errs, field.Invalid(p, name, msg))
	}
	return errs
}

func modeNames() []string {
	out := make([]string, len(Modes))
	for i, m := range Modes {
		out[i] = string(m)
	}
	return out
}

var knownAccessModes = []corev1.PersistentVolumeAccessMode{
	corev1.ReadWriteOnce, corev1.ReadWriteOncePod, corev1.ReadWriteMany, corev1.ReadOnlyMany,
}

func accessModeNames() []string {
	out := make([]string, len(knownAccessModes))
	for i, m := range knownAccessModes {
		out[i] = string(m)
	}
	return out
}

func sortedAccessModes(m map[corev1.PersistentVolumeAccessMode]string) []corev1.PersistentVolumeAccessMode {
	out := make([]corev1.PersistentVolumeAccessMode, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// IsExempt reports whether a namespace is exempt from every policy.
func (c *Config) IsExempt(namespace string) bool {
	for _, ns := range c.ExemptNamespaces {
		if ns == namespace {
			return true
		}
	}
	return false
}

// PolicyMode returns the config's mode for a policy (its own, else the default).
func (c *Config) PolicyMode(id PolicyID) Mode {
	var m Mode
	switch id {
	case HeadlessService:
		m = c.Policies.HeadlessService.Mode
	case StorageClass:
		m = c.Policies.StorageClass.Mode
	case SnapshotSchedule:
		m = c.Policies.SnapshotSchedule.Mode
	}
	if m == "" {
		return c.DefaultMode
	}
	return m
}

// CatalogStorageClasses returns the catalog as StorageClass objects with the
// API server's defaults applied, so an offline check treats a catalog entry
// exactly like the object the cluster would hold.
func (c *Config) CatalogStorageClasses() []*storagev1.StorageClass {
	out := make([]*storagev1.StorageClass, 0, len(c.Policies.StorageClass.Catalog))
	for _, cls := range c.Policies.StorageClass.Catalog {
		sc := &storagev1.StorageClass{
			TypeMeta:             metav1.TypeMeta{APIVersion: "storage.k8s.io/v1", Kind: "StorageClass"},
			ObjectMeta:           metav1.ObjectMeta{Name: cls.Name},
			Provisioner:          cls.Provisioner,
			ReclaimPolicy:        cls.ReclaimPolicy,
			VolumeBindingMode:    cls.VolumeBindingMode,
			AllowVolumeExpansion: cls.AllowVolumeExpansion,
		}
		DefaultStorageClass(sc)
		out = append(out, sc)
	}
	return out
}

// DefaultStorageClass applies the API server's defaults to a StorageClass read
// from a manifest, in place, so offline checks see what the cluster would store.
func DefaultStorageClass(sc *storagev1.StorageClass) {
	if sc.ReclaimPolicy == nil {
		p := corev1.PersistentVolumeReclaimDelete
		sc.ReclaimPolicy = &p
	}
	if sc.VolumeBindingMode == nil {
		m := storagev1.VolumeBindingImmediate
		sc.VolumeBindingMode = &m
	}
}
