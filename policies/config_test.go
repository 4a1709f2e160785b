package policies

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func catalogNames(c []CatalogClass) []string {
	out := make([]string, len(c))
	for i, cls := range c {
		out[i] = cls.Name
	}
	return out
}

func catalogEntry(t *testing.T, c []CatalogClass, name string) CatalogClass {
	t.Helper()
	for _, cls := range c {
		if cls.Name == name {
			return cls
		}
	}
	require.Failf(t, "not in catalog", "%s not in %v", name, catalogNames(c))
	return CatalogClass{}
}

func TestCompleteDefaultsToAKS(t *testing.T) {
	c := Config{}.Complete()
	assert.Equal(t, ConfigAPIVersion, c.APIVersion)
	assert.Equal(t, ConfigKind, c.Kind)
	assert.Equal(t, "aks", c.Profile)
	assert.Equal(t, Enforce, c.DefaultMode)
	assert.Equal(t, []string{"kube-system", "kube-public", "kube-node-lease"}, c.ExemptNamespaces)
	assert.Equal(t, map[corev1.PersistentVolumeAccessMode]string{
		corev1.ReadWriteOnce:    "managed-csi",
		corev1.ReadWriteOncePod: "managed-csi",
		corev1.ReadWriteMany:    "azurefile-csi",
		corev1.ReadOnlyMany:     "azurefile-csi",
	}, c.Policies.StorageClass.Classes)
	assert.ElementsMatch(t, []string{"managed-csi", "managed-csi-premium", "azurefile-csi", "azurefile-csi-premium", "default"},
		catalogNames(c.Policies.StorageClass.Catalog))
	require.NotNil(t, c.Policies.StorageClass.DefaultSize)
	assert.Equal(t, "10Gi", c.Policies.StorageClass.DefaultSize.String())
	assert.False(t, c.Policies.StorageClass.AllowStaticBinding)
	assert.Empty(t, c.Policies.StorageClass.Allowed)
	assert.Equal(t, DefaultSnapshotLabelKey, c.Policies.SnapshotSchedule.LabelKey)
	assert.Equal(t, []string{"hourly", "daily", "weekly"}, c.Policies.SnapshotSchedule.Schedules)
	for _, id := range []PolicyID{HeadlessService, StorageClass, SnapshotSchedule} {
		assert.Equal(t, Enforce, c.PolicyMode(id), id)
	}
	assert.Empty(t, c.Validate())

	assert.Equal(t, c, c.Complete(), "Complete is idempotent")
}

func TestCompleteProfiles(t *testing.T) {
	for profile, want := range map[string][2]string{
		"aks": {"managed-csi", "azurefile-csi"},
		"eks": {"gp2", "efs-sc"},
		"gke": {"standard-rwo", "standard-rwx"},
	} {
		t.Run(profile, func(t *testing.T) {
			c := Config{Profile: profile}.Complete()
			require.Empty(t, c.Validate())
			disk, shared := want[0], want[1]
			assert.Equal(t, map[corev1.PersistentVolumeAccessMode]string{
				corev1.ReadWriteOnce: disk, corev1.ReadWriteOncePod: disk,
				corev1.ReadWriteMany: shared, corev1.ReadOnlyMany: shared,
			}, c.Policies.StorageClass.Classes)
			// The mapped classes are known offline, with provisioners that
			// serve what they are mapped to.
			for mode, class := range c.Policies.StorageClass.Classes {
				entry := catalogEntry(t, c.Policies.StorageClass.Catalog, class)
				capability, ok := Capabilities[entry.Provisioner]
				require.True(t, ok, "%s: provisioner %s not in the capability table", class, entry.Provisioner)
				assert.True(t, capability.Supports(mode, corev1.PersistentVolumeFilesystem), "%s cannot serve %s", class, mode)
			}
		})
	}
}

func TestCompleteKeepsWhatIsSet(t *testing.T) {
	size := resource.MustParse("1Ti")
	in := Config{
		Profile:          "eks",
		DefaultMode:      Warn,
		ExemptNamespaces: []string{},
		Policies: PoliciesConfig{
			HeadlessService: HeadlessServiceConfig{Mode: Audit},
			StorageClass: StorageClassConfig{
				Classes:            map[corev1.PersistentVolumeAccessMode]string{corev1.ReadWriteOnce: "gp3"},
				Allowed:            []string{"gp3", "efs-sc"},
				DefaultSize:        &size,
				AllowStaticBinding: true,
			},
			SnapshotSchedule: SnapshotScheduleConfig{Mode: Disabled, LabelKey: "backup/tier", Schedules: []string{"gold"}},
		},
	}
	snapshot := in
	snapshot.Policies.StorageClass.Classes = map[corev1.PersistentVolumeAccessMode]string{corev1.ReadWriteOnce: "gp3"}

	c := in.Complete()
	require.Empty(t, c.Validate())
	assert.Equal(t, "eks", c.Profile)
	assert.Equal(t, Warn, c.DefaultMode)
	assert.Empty(t, c.ExemptNamespaces, "an explicit empty list exempts nothing")
	assert.False(t, c.IsExempt("kube-system"))
	assert.Equal(t, Audit, c.PolicyMode(HeadlessService))
	assert.Equal(t, Warn, c.PolicyMode(StorageClass), "no per-policy mode: the default")
	assert.Equal(t, Disabled, c.PolicyMode(SnapshotSchedule))
	assert.Equal(t, "1Ti", c.Policies.StorageClass.DefaultSize.String())
	assert.True(t, c.Policies.StorageClass.AllowStaticBinding)
	assert.Equal(t, []string{"gp3", "efs-sc"}, c.Policies.StorageClass.Allowed)
	assert.Equal(t, "backup/tier", c.Policies.SnapshotSchedule.LabelKey)
	assert.Equal(t, []string{"gold"}, c.Policies.SnapshotSchedule.Schedules)

	// User classes override the profile's one access mode at a time.
	assert.Equal(t, map[corev1.PersistentVolumeAccessMode]string{
		corev1.ReadWriteOnce: "gp3", corev1.ReadWriteOncePod: "gp2",
		corev1.ReadWriteMany: "efs-sc", corev1.ReadOnlyMany: "efs-sc",
	}, c.Policies.StorageClass.Classes)

	assert.Equal(t, snapshot, in, "Complete must not modify its receiver's maps")
}

func TestCompleteMergesCatalogByName(t *testing.T) {
	retain := corev1.PersistentVolumeReclaimRetain
	immediate := storagev1.VolumeBindingImmediate
	c := Config{Policies: PoliciesConfig{StorageClass: StorageClassConfig{Catalog: []CatalogClass{
		{Name: "managed-csi", ReclaimPolicy: &retain},
		{Name: "azurefile-csi", Provisioner: "nfs.csi.k8s.io"},
		{Name: "nfs", Provisioner: "nfs.csi.k8s.io", VolumeBindingMode: &immediate},
		{Name: "default", Provisioner: "disk.csi.azure.com", AllowVolumeExpansion: ptr(false)},
	}}}}.Complete()
	require.Empty(t, c.Validate())
	catalog := c.Policies.StorageClass.Catalog

	assert.Equal(t, []string{"managed-csi", "azurefile-csi", "nfs", "default", "managed-csi-premium", "azurefile-csi-premium"},
		catalogNames(catalog), "user entries keep their positions, the profile's others follow, each name once")

	managed := catalogEntry(t, catalog, "managed-csi")
	assert.Equal(t, "disk.csi.azure.com", managed.Provisioner, "unset fields come from the profile")
	assert.Equal(t, retain, *managed.ReclaimPolicy, "set fields override")
	assert.Equal(t, storagev1.VolumeBindingWaitForFirstConsumer, *managed.VolumeBindingMode)
	assert.True(t, *managed.AllowVolumeExpansion)

	file := catalogEntry(t, catalog, "azurefile-csi")
	assert.Equal(t, CatalogClass{Name: "azurefile-csi", Provisioner: "nfs.csi.k8s.io"}, file,
		"another provisioner is another class: none of the profile's facts apply")

	nfs := catalogEntry(t, catalog, "nfs")
	assert.Equal(t, immediate, *nfs.VolumeBindingMode)

	def := catalogEntry(t, catalog, "default")
	assert.False(t, *def.AllowVolumeExpansion)
	assert.Equal(t, storagev1.VolumeBindingWaitForFirstConsumer, *def.VolumeBindingMode, "same provisioner: the profile's facts still apply")

	// The profile itself is never modified by a merge.
	assert.Equal(t, "file.csi.azure.com", catalogEntry(t, Profiles["aks"].Catalog, "azurefile-csi").Provisioner)
	assert.Equal(t, corev1.PersistentVolumeReclaimDelete, *catalogEntry(t, Profiles["aks"].Catalog, "managed-csi").ReclaimPolicy)
}

func TestCatalogStorageClasses(t *testing.T) {
	c := Config{Policies: PoliciesConfig{StorageClass: StorageClassConfig{Catalog: []CatalogClass{
		{Name: "bare", Provisioner: "ebs.csi.aws.com"},
	}}}}.Complete()
	classes := c.CatalogStorageClasses()
	require.Len(t, classes, len(c.Policies.StorageClass.Catalog))
	bare := classes[0]
	assert.Equal(t, "bare", bare.Name)
	assert.Equal(t, "StorageClass", bare.Kind)
	assert.Equal(t, "ebs.csi.aws.com", bare.Provisioner)
	assert.Equal(t, corev1.PersistentVolumeReclaimDelete, *bare.ReclaimPolicy, "the API server's default")
	assert.Equal(t, storagev1.VolumeBindingImmediate, *bare.VolumeBindingMode, "the API server's default")
	assert.Nil(t, bare.AllowVolumeExpansion)

	managed := classes[1]
	assert.Equal(t, "managed-csi", managed.Name)
	assert.Equal(t, storagev1.VolumeBindingWaitForFirstConsumer, *managed.VolumeBindingMode)
	assert.True(t, *managed.AllowVolumeExpansion)
}

func TestDefaultStorageClassKeepsWhatIsSet(t *testing.T) {
	sc := mkStorageClass("x", "disk.csi.azure.com")
	DefaultStorageClass(sc)
	assert.Equal(t, corev1.PersistentVolumeReclaimRetain, *sc.ReclaimPolicy)
	assert.Equal(t, storagev1.VolumeBindingWaitForFirstConsumer, *sc.VolumeBindingMode)
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		// want is every error as "type field".
		want []string
	}{{
		name: "defaults",
		edit: func(*Config) {},
	}, {
		name: "every profile and mode",
		edit: func(c *Config) {
			c.Profile = "gke"
			c.DefaultMode = Disabled
			c.Policies.HeadlessService.Mode = Warn
			c.Policies.StorageClass.Mode = Audit
			c.Policies.SnapshotSchedule.Mode = Enforce
		},
	}, {
		name: "wrong apiVersion and kind",
		edit: func(c *Config) { c.APIVersion = "stateguard.dev/v1"; c.Kind = "Config" },
		want: []string{"Unsupported value apiVersion", "Unsupported value kind"},
	}, {
		name: "unknown profile",
		edit: func(c *Config) { c.Profile = "openshift" },
		want: []string{"Unsupported value profile"},
	}, {
		name: `"off" is not a mode`,
		edit: func(c *Config) { c.DefaultMode = "off" },
		want: []string{"Unsupported value defaultMode"},
	}, {
		name: "modes are case-sensitive",
		edit: func(c *Config) { c.DefaultMode = "Enforce" },
		want: []string{"Unsupported value defaultMode"},
	}, {
		name: "the default mode is required",
		edit: func(c *Config) { c.DefaultMode = "" },
		want: []string{"Unsupported value defaultMode"},
	}, {
		name: "unknown per-policy modes",
		edit: func(c *Config) {
			c.Policies.HeadlessService.Mode = "off"
			c.Policies.StorageClass.Mode = "deny"
			c.Policies.SnapshotSchedule.Mode = "dryrun"
		},
		want: []string{
			"Unsupported value policies.headless-service.mode",
			"Unsupported value policies.storage-class.mode",
			"Unsupported value policies.snapshot-schedule.mode",
		},
	}, {
		name: "bad exempt namespace",
		edit: func(c *Config) { c.ExemptNamespaces = []string{"kube-system", "Kube_Public"} },
		want: []string{"Invalid value exemptNamespaces[1]"},
	}, {
		name: "unknown access mode key",
		edit: func(c *Config) { c.Policies.StorageClass.Classes["ReadWriteMost"] = "managed-csi" },
		want: []string{"Unsupported value policies.storage-class.classes[ReadWriteMost]"},
	}, {
		name: "bad class name",
		edit: func(c *Config) { c.Policies.StorageClass.Classes[corev1.ReadWriteMany] = "Azure_File" },
		want: []string{"Invalid value policies.storage-class.classes[ReadWriteMany]"},
	}, {
		name: "empty class name",
		edit: func(c *Config) { c.Policies.StorageClass.Classes[corev1.ReadWriteOnce] = "" },
		want: []string{"Invalid value policies.storage-class.classes[ReadWriteOnce]"},
	}, {
		name: "bad allowed class",
		edit: func(c *Config) { c.Policies.StorageClass.Allowed = []string{"managed-csi", "fast ssd"} },
		want: []string{"Invalid value policies.storage-class.allowed[1]"},
	}, {
		name: "zero defaultSize",
		edit: func(c *Config) { q := resource.MustParse("0"); c.Policies.StorageClass.DefaultSize = &q },
		want: []string{"Invalid value policies.storage-class.defaultSize"},
	}, {
		name: "negative defaultSize",
		edit: func(c *Config) { q := resource.MustParse("-1Gi"); c.Policies.StorageClass.DefaultSize = &q },
		want: []string{"Invalid value policies.storage-class.defaultSize"},
	}, {
		name: "catalog entry without provisioner",
		edit: func(c *Config) { c.Policies.StorageClass.Catalog = []CatalogClass{{Name: "nfs"}} },
		want: []string{"Required value policies.storage-class.catalog[0].provisioner"},
	}, {
		name: "catalog entry with a bad name",
		edit: func(c *Config) {
			c.Policies.StorageClass.Catalog = []CatalogClass{{Name: "managed-csi", Provisioner: "p"}, {Name: "NFS!", Provisioner: "p"}}
		},
		want: []string{"Invalid value policies.storage-class.catalog[1].name"},
	}, {
		name: "duplicate catalog entry",
		edit: func(c *Config) {
			c.Policies.StorageClass.Catalog = []CatalogClass{{Name: "nfs", Provisioner: "p"}, {Name: "nfs", Provisioner: "p"}}
		},
		want: []string{"Duplicate value policies.storage-class.catalog[1].name"},
	}, {
		name: "bad label key",
		edit: func(c *Config) { c.Policies.SnapshotSchedule.LabelKey = "stateguard.dev/snapshot schedule" },
		want: []string{"Invalid value policies.snapshot-schedule.labelKey"},
	}, {
		name: "empty label key",
		edit: func(c *Config) { c.Policies.SnapshotSchedule.LabelKey = "" },
		want: []string{"Invalid value policies.snapshot-schedule.labelKey", "Invalid value policies.snapshot-schedule.labelKey"},
	}, {
		name: "empty schedule list",
		edit: func(c *Config) { c.Policies.SnapshotSchedule.Schedules = []string{} },
		want: []string{"Required value policies.snapshot-schedule.schedules"},
	}, {
		name: "duplicate schedule",
		edit: func(c *Config) { c.Policies.SnapshotSchedule.Schedules = []string{"daily", "weekly", "daily"} },
		want: []string{"Duplicate value policies.snapshot-schedule.schedules[2]"},
	}, {
		name: "cron string schedule",
		edit: func(c *Config) { c.Policies.SnapshotSchedule.Schedules = []string{"daily", "0 3 * * *"} },
		want: []string{"Invalid value policies.snapshot-schedule.schedules[1]"},
	}, {
		name: "empty schedule name",
		edit: func(c *Config) { c.Policies.SnapshotSchedule.Schedules = []string{""} },
		want: []string{"Required value policies.snapshot-schedule.schedules[0]"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{}.Complete()
			tt.edit(&c)
			errs := c.Validate()
			assert.Equal(t, tt.want, errorSummary(errs), "%v", errs)
		})
	}
}

// errorSummary renders errors as "type field".
func errorSummary(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Type.String()+" "+e.Field)
	}
	return out
}

// The loader positions validation errors in the config file by their field
// path, so the path must name the entry as the user wrote it, not its place
// in the catalog merged with the profile's.
func TestValidateNamesTheUsersCatalogEntry(t *testing.T) {
	c := Config{Policies: PoliciesConfig{StorageClass: StorageClassConfig{Catalog: []CatalogClass{
		{Name: "managed-csi", AllowVolumeExpansion: ptr(false)},
		{Name: "nfs"},
		{Name: "nfs", Provisioner: "nfs.csi.k8s.io"},
	}}}}.Complete()
	assert.Equal(t, []string{
		"Required value policies.storage-class.catalog[1].provisioner",
		"Duplicate value policies.storage-class.catalog[2].name",
	}, errorSummary(c.Validate()))
}

func TestValidateMessages(t *testing.T) {
	c := Config{}.Complete()
	c.DefaultMode = "off"
	c.Policies.SnapshotSchedule.Schedules = []string{"0 3 * * *"}
	errs := c.Validate()
	require.Len(t, errs, 2)
	assert.Contains(t, errs[0].Error(), `"enforce", "warn", "audit", "disabled"`)
	assert.Contains(t, errs[1].Error(), "a schedule is named by a label value, not a cron string")
}

func TestNewEngineRejectsAnInvalidConfig(t *testing.T) {
	_, err := NewEngine(Config{Profile: "openshift", DefaultMode: "off"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "profile")
	assert.Contains(t, err.Error(), "defaultMode")

	e, err := NewEngine(Config{})
	require.NoError(t, err)
	assert.Equal(t, Config{}.Complete(), *e.Config(), "the engine holds the completed config")
}

func TestConfigJSONNames(t *testing.T) {
	// The config file's field names are part of the contract.
	var c Config
	require.NoError(t, json.Unmarshal([]byte(`{
		"apiVersion": "stateguard.dev/v1alpha1", "kind": "PolicyConfig",
		"profile": "gke", "defaultMode": "warn", "exemptNamespaces": ["ops"],
		"policies": {
			"headless-service": {"mode": "audit"},
			"storage-class": {"mode": "enforce", "classes": {"ReadWriteOnce": "premium-rwo"},
				"allowed": ["premium-rwo"], "defaultSize": "20Gi", "allowStaticBinding": true,
				"catalog": [{"name": "x", "provisioner": "p", "reclaimPolicy": "Retain",
					"volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": true}]},
			"snapshot-schedule": {"mode": "disabled", "labelKey": "a/b", "schedules": ["s"]}}}`), &c))
	assert.Equal(t, "gke", c.Profile)
	assert.Equal(t, Warn, c.DefaultMode)
	assert.Equal(t, []string{"ops"}, c.ExemptNamespaces)
	assert.Equal(t, Audit, c.Policies.HeadlessService.Mode)
	assert.Equal(t, "premium-rwo", c.Policies.StorageClass.Classes[corev1.ReadWriteOnce])
	assert.Equal(t, "20Gi", c.Policies.StorageClass.DefaultSize.String())
	assert.True(t, c.Policies.StorageClass.AllowStaticBinding)
	assert.Equal(t, corev1.PersistentVolumeReclaimRetain, *c.Policies.StorageClass.Catalog[0].ReclaimPolicy)
	assert.Equal(t, "a/b", c.Policies.SnapshotSchedule.LabelKey)
	assert.Equal(t, Disabled, c.Policies.SnapshotSchedule.Mode)
	assert.Empty(t, c.Complete().Validate())
}
