package policies

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
)

const unset = "<unset>"

// templateClasses returns each claim template as "name=class".
func templateClasses(sts *appsv1.StatefulSet) []string {
	out := make([]string, 0, len(sts.Spec.VolumeClaimTemplates))
	for _, t := range sts.Spec.VolumeClaimTemplates {
		class := unset
		if t.Spec.StorageClassName != nil {
			class = *t.Spec.StorageClassName
		}
		out = append(out, t.Name+"="+class)
	}
	return out
}

func mutationsOf(ms []Mutation, id PolicyID) []Mutation {
	var out []Mutation
	for _, m := range ms {
		if m.Policy == id {
			out = append(out, m)
		}
	}
	return out
}

func paths(ms []Mutation) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Path)
	}
	return out
}

// toJSON returns v as generic JSON (maps, slices, strings, float64s).
func toJSON(t testing.TB, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var out any
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

// resolvePointer resolves an RFC 6901 JSON pointer in generic JSON.
func resolvePointer(doc any, pointer string) (any, bool) {
	if pointer == "" {
		return doc, true
	}
	if !strings.HasPrefix(pointer, "/") {
		return nil, false
	}
	cur := doc
	for _, tok := range strings.Split(pointer[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[tok]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) || strconv.Itoa(i) != tok {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// jsonSubset reports whether every field of want is in got with the same value.
func jsonSubset(got, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			if !jsonSubset(g[k], wv) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !jsonSubset(g[i], w[i]) {
				return false
			}
		}
		return true
	default:
		return assert.ObjectsAreEqual(want, got)
	}
}

// requireMutationsPointAtTheirValues checks that each reported mutation is a
// valid JSON pointer into the mutated object, and that the value there is the
// value reported (for whole templates: at least the fields reported).
func requireMutationsPointAtTheirValues(t *testing.T, mutated *appsv1.StatefulSet, ms []Mutation) {
	t.Helper()
	doc := toJSON(t, mutated)
	for _, m := range ms {
		got, ok := resolvePointer(doc, m.Path)
		require.Truef(t, ok, "mutation path %q does not resolve in the mutated object", m.Path)
		assert.Truef(t, jsonSubset(got, toJSON(t, m.Value)), "at %s: reported %v, object has %v", m.Path, m.Value, got)
	}
}

func TestStorageClassMutateCreate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		sts  *appsv1.StatefulSet
		// want is every template as "name=class" after mutation.
		want      []string
		wantPaths []string
	}{{
		name:      "ReadWriteOnce gets the disk class",
		sts:       mkStatefulSet(withClaimTemplate("data", corev1.ReadWriteOnce)),
		want:      []string{"data=managed-csi"},
		wantPaths: []string{"/spec/volumeClaimTemplates/0/spec/storageClassName"},
	}, {
		name:      "ReadWriteOncePod gets the disk class",
		sts:       mkStatefulSet(withClaimTemplate("data", corev1.ReadWriteOncePod)),
		want:      []string{"data=managed-csi"},
		wantPaths: []string{"/spec/volumeClaimTemplates/0/spec/storageClassName"},
	}, {
		name:      "ReadWriteMany gets the shared-file class",
		sts:       mkStatefulSet(withClaimTemplate("shared", corev1.ReadWriteMany)),
		want:      []string{"shared=azurefile-csi"},
		wantPaths: []string{"/spec/volumeClaimTemplates/0/spec/storageClassName"},
	}, {
		name:      "ReadOnlyMany gets the shared-file class",
		sts:       mkStatefulSet(withClaimTemplate("shared", corev1.ReadOnlyMany)),
		want:      []string{"shared=azurefile-csi"},
		wantPaths: []string{"/spec/volumeClaimTemplates/0/spec/storageClassName"},
	}, {
		name: "mixed modes: the shared class wins, whatever the order",
		sts: mkStatefulSet(
			withClaimTemplate("a", corev1.ReadWriteOnce, corev1.ReadWriteMany),
			withClaimTemplate("b", corev1.ReadWriteMany, corev1.ReadWriteOnce),
			withClaimTemplate("c", corev1.ReadWriteOncePod, corev1.ReadOnlyMany),
		),
		want: []string{"a=azurefile-csi", "b=azurefile-csi", "c=azurefile-csi"},
		wantPaths: []string{
			"/spec/volumeClaimTemplates/0/spec/storageClassName",
			"/spec/volumeClaimTemplates/1/spec/storageClassName",
			"/spec/volumeClaimTemplates/2/spec/storageClassName",
		},
	}, {
		name:      "no access modes counts as ReadWriteOnce",
		sts:       mkStatefulSet(withClaimTemplate("data")),
		want:      []string{"data=managed-csi"},
		wantPaths: []string{"/spec/volumeClaimTemplates/0/spec/storageClassName"},
	}, {
		name: "an access mode the config does not know gets no class",
		sts:  mkStatefulSet(withClaimTemplate("data", "ReadWriteSometimes")),
		want: []string{"data=" + unset},
	}, {
		name: `explicit "" (static binding) is never filled`,
		sts:  mkStatefulSet(withClaim("data", modes(corev1.ReadWriteOnce), withClass(""))),
		want: []string{"data="},
	}, {
		name: "explicit class is kept, even one that cannot serve the modes",
		sts: mkStatefulSet(
			withClaim("data", modes(corev1.ReadWriteOnce), withClass("managed-csi-premium")),
			withClaim("shared", modes(corev1.ReadWriteMany), withClass("managed-csi")),
		),
		want: []string{"data=managed-csi-premium", "shared=managed-csi"},
	}, {
		name: "only the template without a class is reported, at its index",
		sts: mkStatefulSet(
			withClaim("data", modes(corev1.ReadWriteOnce), withClass("managed-csi-premium")),
			withClaimTemplate("shared", corev1.ReadWriteMany),
		),
		want:      []string{"data=managed-csi-premium", "shared=azurefile-csi"},
		wantPaths: []string{"/spec/volumeClaimTemplates/1/spec/storageClassName"},
	}, {
		name:      "dangling volumeMount in a container becomes a template",
		sts:       mkStatefulSet(withMount("logs")),
		want:      []string{"logs=managed-csi"},
		wantPaths: []string{"/spec/volumeClaimTemplates/0"},
	}, {
		name:      "dangling volumeMount in an init container becomes a template",
		sts:       mkStatefulSet(withInitMount("seed")),
		want:      []string{"seed=managed-csi"},
		wantPaths: []string{"/spec/volumeClaimTemplates/0"},
	}, {
		name: "dangling mounts are appended after existing templates, init containers first, once each",
		sts: mkStatefulSet(
			withClaimTemplate("data", corev1.ReadWriteMany),
			withMount("data"), withMount("logs"), withInitMount("seed"), withInitMount("logs"),
		),
		want: []string{"data=azurefile-csi", "seed=managed-csi", "logs=managed-csi"},
		wantPaths: []string{
			"/spec/volumeClaimTemplates/1",
			"/spec/volumeClaimTemplates/2",
			"/spec/volumeClaimTemplates/0/spec/storageClassName",
		},
	}, {
		name: "a mount of a pod volume or of a template is not dangling",
		sts: mkStatefulSet(
			withClaim("data", modes(corev1.ReadWriteOnce), withClass("managed-csi")),
			withPodVolume("tmp"), withMount("tmp"), withMount("data"), withInitMount("tmp"), withInitMount("data"),
		),
		want: []string{"data=managed-csi"},
	}, {
		name:      "the config's class for ReadWriteOnce applies to dangling mounts",
		cfg:       Config{Policies: PoliciesConfig{StorageClass: StorageClassConfig{Classes: map[corev1.PersistentVolumeAccessMode]string{corev1.ReadWriteOnce: "managed-csi-premium"}}}},
		sts:       mkStatefulSet(withMount("logs"), withClaimTemplate("data", corev1.ReadWriteOncePod)),
		want:      []string{"data=managed-csi", "logs=managed-csi-premium"},
		wantPaths: []string{"/spec/volumeClaimTemplates/1", "/spec/volumeClaimTemplates/0/spec/storageClassName"},
	}, {
		name:      "eks profile: ReadWriteOnce gets gp2",
		cfg:       Config{Profile: "eks"},
		sts:       mkStatefulSet(withClaimTemplate("data", corev1.ReadWriteOnce), withMount("logs")),
		want:      []string{"data=gp2", "logs=gp2"},
		wantPaths: []string{"/spec/volumeClaimTemplates/1", "/spec/volumeClaimTemplates/0/spec/storageClassName"},
	}, {
		name:      "eks profile: ReadWriteMany gets efs-sc",
		cfg:       Config{Profile: "eks"},
		sts:       mkStatefulSet(withClaimTemplate("shared", corev1.ReadWriteMany)),
		want:      []string{"shared=efs-sc"},
		wantPaths: []string{"/spec/volumeClaimTemplates/0/spec/storageClassName"},
	}, {
		name:      "gke profile: standard-rwo and standard-rwx",
		cfg:       Config{Profile: "gke"},
		sts:       mkStatefulSet(withClaimTemplate("data", corev1.ReadWriteOnce), withClaimTemplate("shared", corev1.ReadOnlyMany)),
		want:      []string{"data=standard-rwo", "shared=standard-rwx"},
		wantPaths: []string{"/spec/volumeClaimTemplates/0/spec/storageClassName", "/spec/volumeClaimTemplates/1/spec/storageClassName"},
	}, {
		name: "user classes override the profile's one access mode at a time",
		cfg: Config{Policies: PoliciesConfig{StorageClass: StorageClassConfig{
			Classes: map[corev1.PersistentVolumeAccessMode]string{corev1.ReadWriteMany: "azurefile-csi-premium"},
		}}},
		sts:       mkStatefulSet(withClaimTemplate("data", corev1.ReadWriteOnce), withClaimTemplate("shared", corev1.ReadWriteMany)),
		want:      []string{"data=managed-csi", "shared=azurefile-csi-premium"},
		wantPaths: []string{"/spec/volumeClaimTemplates/0/spec/storageClassName", "/spec/volumeClaimTemplates/1/spec/storageClassName"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mkEngine(t, tt.cfg)
			mutated, ms, err := e.MutateStatefulSet(create(tt.sts), mkCluster())
			require.NoError(t, err)
			assert.Equal(t, tt.want, templateClasses(mutated))
			got := mutationsOf(ms, StorageClass)
			assert.Equal(t, tt.wantPaths, paths(got))
			requireMutationsPointAtTheirValues(t, mutated, ms)
		})
	}
}

func TestStorageClassDanglingMountTemplate(t *testing.T) {
	size := resource.MustParse("25Gi")
	for name, tt := range map[string]struct {
		cfg  Config
		size string
	}{
		"default size":    {Config{}, "10Gi"},
		"configured size": {Config{Policies: PoliciesConfig{StorageClass: StorageClassConfig{DefaultSize: &size}}}, "25Gi"},
	} {
		t.Run(name, func(t *testing.T) {
			e := mkEngine(t, tt.cfg)
			mutated, ms, err := e.MutateStatefulSet(create(mkStatefulSet(withMount("logs"))), mkCluster())
			require.NoError(t, err)
			require.Len(t, mutated.Spec.VolumeClaimTemplates, 1)
			tmpl := mutated.Spec.VolumeClaimTemplates[0]
			assert.Equal(t, "logs", tmpl.Name)
			assert.Equal(t, modes(corev1.ReadWriteOnce), tmpl.Spec.AccessModes)
			got := tmpl.Spec.Resources.Requests[corev1.ResourceStorage]
			assert.Equal(t, tt.size, got.String())
			require.NotNil(t, tmpl.Spec.StorageClassName)
			assert.Equal(t, "managed-csi", *tmpl.Spec.StorageClassName)

			// The reported value is the template the JSON patch adds.
			sc := mutationsOf(ms, StorageClass)
			require.Len(t, sc, 1)
			assert.Equal(t, map[string]any{
				"metadata": map[string]any{"name": "logs"},
				"spec": map[string]any{
					"accessModes":      []any{"ReadWriteOnce"},
					"resources":        map[string]any{"requests": map[string]any{"storage": tt.size}},
					"storageClassName": "managed-csi",
				},
			}, toJSON(t, sc[0].Value))

			// The template made for the mount passes validation: it fixes the
			// StatefulSet rather than trading one denial for another.
			req := create(mutated)
			result, err := e.ValidateStatefulSet(req, mkCluster())
			require.NoError(t, err)
			assert.Empty(t, result.Findings)
		})
	}
}

func TestStorageClassMutateSkipsOtherOperations(t *testing.T) {
	e := mkEngine(t, Config{})
	sts := mkStatefulSet(withClaimTemplate("data", corev1.ReadWriteOnce), withMount("logs"))
	for _, op := range []Operation{Delete, "CONNECT", ""} {
		got, ms, err := e.MutateStatefulSet(StatefulSetRequest{Operation: op, Namespace: testNamespace, Object: sts}, mkCluster())
		require.NoError(t, err)
		assert.Empty(t, ms, op)
		assert.Same(t, sts, got, op)
	}
	got, ms, err := e.MutateStatefulSet(StatefulSetRequest{Operation: Create, Namespace: testNamespace}, mkCluster())
	require.NoError(t, err)
	assert.Nil(t, got)
	assert.Empty(t, ms)

	// The policies' own mutations guard the operation too, not only the engine.
	for _, p := range Registry() {
		if p.MutateStatefulSet == nil {
			continue
		}
		copied := sts.DeepCopy()
		review := &StatefulSetReview{StatefulSetRequest: StatefulSetRequest{Operation: Delete, Namespace: testNamespace, Object: sts, OldObject: sts}, Config: e.Config(), Lookup: mkCluster()}
		assert.Empty(t, p.MutateStatefulSet(review, copied), p.ID)
		assert.Equal(t, sts, copied, p.ID)
	}
}

func TestStorageClassValidate(t *testing.T) {
	fs, blk := corev1.PersistentVolumeFilesystem, corev1.PersistentVolumeBlock
	const tmpl0 = "spec.volumeClaimTemplates[0].spec.storageClassName"
	const tmpl1 = "spec.volumeClaimTemplates[1].spec.storageClassName"
	tests := []struct {
		name    string
		cfg     Config
		sts     *appsv1.StatefulSet
		cluster *fakeLookup
		// want is the storage-class findings on CREATE as "mode field", sorted.
		want        []string
		wantMessage string
	}{{
		name:    "disk class serving ReadWriteOnce",
		sts:     mkStatefulSet(withClaim("data", modes(corev1.ReadWriteOnce), withClass("managed-csi"))),
		cluster: mkCluster(),
	}, {
		name:    "no claim templates",
		sts:     mkStatefulSet(),
		cluster: mkCluster(),
	}, {
		name:        "disk class asked for ReadWriteMany with volumeMode Filesystem",
		sts:         mkStatefulSet(withClaim("shared", modes(corev1.ReadWriteMany), withClass("managed-csi"))),
		cluster:     mkCluster(),
		want:        []string{"enforce " + tmpl0},
		wantMessage: `"managed-csi" (disk.csi.azure.com) serves no ReadWriteMany Filesystem volumes; use "azurefile-csi"`,
	}, {
		name:        "disk class asked for ReadWriteMany, volumeMode Filesystem spelt out",
		sts:         mkStatefulSet(withClaim("shared", modes(corev1.ReadWriteOnce, corev1.ReadWriteMany), withClass("managed-csi"), withVolumeMode(fs))),
		cluster:     mkCluster(),
		want:        []string{"enforce " + tmpl0},
		wantMessage: `use "azurefile-csi"`,
	}, {
		name:    "disk class asked for ReadWriteMany with volumeMode Block (shared disk)",
		sts:     mkStatefulSet(withClaim("shared", modes(corev1.ReadWriteMany), withClass("managed-csi"), withVolumeMode(blk))),
		cluster: mkCluster(),
	}, {
		name:        "in-tree EBS asked for ReadOnlyMany",
		sts:         mkStatefulSet(withClaim("data", modes(corev1.ReadOnlyMany), withClass("gp2"))),
		cluster:     mkCluster(),
		want:        []string{"enforce " + tmpl0},
		wantMessage: "kubernetes.io/aws-ebs",
	}, {
		name:    "GCE PD serves ReadOnlyMany",
		sts:     mkStatefulSet(withClaim("data", modes(corev1.ReadOnlyMany), withClass("standard-rwo"))),
		cluster: mkCluster(),
	}, {
		name:        "file share asked for volumeMode Block",
		sts:         mkStatefulSet(withClaim("data", modes(corev1.ReadWriteOnce), withClass("azurefile-csi"), withVolumeMode(blk))),
		cluster:     mkCluster(),
		want:        []string{"enforce " + tmpl0},
		wantMessage: `serves no ReadWriteOnce Block volumes; use "managed-csi"`,
	}, {
		name:        "unknown provisioner passes with a warning",
		sts:         mkStatefulSet(withClaim("shared", modes(corev1.ReadWriteMany), withClass("nfs"))),
		cluster:     mkCluster(withClasses(mkStorageClass("nfs", "nfs.csi.k8s.io"))),
		want:        []string{"warn " + tmpl0},
		wantMessage: `"nfs": unknown provisioner "nfs.csi.k8s.io", access modes not checked`,
	}, {
		name:        "class not found",
		sts:         mkStatefulSet(withClaim("data", modes(corev1.ReadWriteOnce), withClass("fast"))),
		cluster:     mkCluster(),
		want:        []string{"enforce " + tmpl0},
		wantMessage: `StorageClass "fast" not found`,
	}, {
		name:        "the mapped class not found in the cluster",
		sts:         mkStatefulSet(withClaimTemplate("data", corev1.ReadWriteOnce)),
		cluster:     &fakeLookup{services: mkCluster().services},
		want:        []string{"enforce " + tmpl0},
		wantMessage: `StorageClass "managed-csi" not found`,
	}, {
		name:        "class outside the allow-list",
		cfg:         Config{Policies: PoliciesConfig{StorageClass: StorageClassConfig{Allowed: []string{"managed-csi", "azurefile-csi"}}}},
		sts:         mkStatefulSet(withClaim("data", modes(corev1.ReadWriteOnce), withClass("standard-rwo"))),
		cluster:     mkCluster(),
		want:        []string{"enforce " + tmpl0},
		wantMessage: `"standard-rwo" is not allowed; use one of managed-csi, azurefile-csi`,
	}, {
		name:    "class on the allow-list",
		cfg:     Config{Policies: PoliciesConfig{StorageClass: StorageClassConfig{Allowed: []string{"managed-csi", "azurefile-csi"}}}},
		sts:     mkStatefulSet(withClaim("data", modes(corev1.ReadWriteOnce), withClass("managed-csi")), withClaimTemplate("shared", corev1.ReadWriteMany)),
		cluster: mkCluster(),
	}, {
		name:        `"" denied`,
		sts:         mkStatefulSet(withClaim("data", modes(corev1.ReadWriteOnce), withClass(""))),
		cluster:     mkCluster(),
		want:        []string{"enforce " + tmpl0},
		wantMessage: `name a class such as "managed-csi" or set allowStaticBinding: true`,
	}, {
		name:    `"" allowed by allowStaticBinding`,
		cfg:     Config{Policies: PoliciesConfig{StorageClass: StorageClassConfig{AllowStaticBinding: true}}},
		sts:     mkStatefulSet(withClaim("data", modes(corev1.ReadWriteOnce), withClass(""))),
		cluster: mkCluster(),
	}, {
		name:        "reclaimPolicy Delete is a warning",
		sts:         mkStatefulSet(withClaimTemplate("data", corev1.ReadWriteOnce)),
		cluster:     mkCluster(withClasses(mkStorageClass("managed-csi", "disk.csi.azure.com", withReclaim(corev1.PersistentVolumeReclaimDelete)))),
		want:        []string{"warn " + tmpl0},
		wantMessage: "reclaimPolicy Delete",
	}, {
		name:        "volumeBindingMode Immediate on a zonal disk is a warning",
		sts:         mkStatefulSet(withClaimTemplate("data", corev1.ReadWriteOnce)),
		cluster:     mkCluster(withClasses(mkStorageClass("managed-csi", "disk.csi.azure.com", withBinding(storagev1.VolumeBindingImmediate)))),
		want:        []string{"warn " + tmpl0},
		wantMessage: "WaitForFirstConsumer",
	}, {
		name:    "volumeBindingMode Immediate on a file share is fine",
		sts:     mkStatefulSet(withClaimTemplate("shared", corev1.ReadWriteMany)),
		cluster: mkCluster(withClasses(mkStorageClass("azurefile-csi", "file.csi.azure.com", withBinding(storagev1.VolumeBindingImmediate)))),
	}, {
		name:        "allowVolumeExpansion unset is a warning",
		sts:         mkStatefulSet(withClaimTemplate("data", corev1.ReadWriteOnce)),
		cluster:     mkCluster(withClasses(mkStorageClass("managed-csi", "disk.csi.azure.com", withExpansion(nil)))),
		want:        []string{"warn " + tmpl0},
		wantMessage: "does not allow volume expansion",
	}, {
		name:    "allowVolumeExpansion false is a warning",
		sts:     mkStatefulSet(withClaimTemplate("data", corev1.ReadWriteOnce)),
		cluster: mkCluster(withClasses(mkStorageClass("managed-csi", "disk.csi.azure.com", withExpansion(ptr(false))))),
		want:    []string{"warn " + tmpl0},
	}, {
		name: "class warnings come once per class, capability violations once per template",
		sts: mkStatefulSet(
			withClaim("a", modes(corev1.ReadWriteMany), withClass("managed-csi")),
			withClaim("b", modes(corev1.ReadWriteMany), withClass("managed-csi")),
		),
		cluster: mkCluster(withClasses(mkStorageClass("managed-csi", "disk.csi.azure.com",
			withReclaim(corev1.PersistentVolumeReclaimDelete), withBinding(storagev1.VolumeBindingImmediate), withExpansion(nil)))),
		want: []string{"enforce " + tmpl0, "enforce " + tmpl1, "warn " + tmpl0, "warn " + tmpl0, "warn " + tmpl0},
	}, {
		name: "the catalog defaults (reclaim Delete, Immediate) warn on a zonal class",
		sts:  mkStatefulSet(withClaim("data", modes(corev1.ReadWriteOnce), withClass("zonal"))),
		cluster: mkCluster(withClasses(func() *storagev1.StorageClass {
			cfg := Config{Policies: PoliciesConfig{StorageClass: StorageClassConfig{Catalog: []CatalogClass{{Name: "zonal", Provisioner: "ebs.csi.aws.com"}}}}}.Complete()
			for _, sc := range cfg.CatalogStorageClasses() {
				if sc.Name == "zonal" {
					return sc
				}
			}
			panic("zonal not in the catalog")
		}())),
		want: []string{"warn " + tmpl0, "warn " + tmpl0, "warn " + tmpl0},
	}, {
		name:    "a retention policy that deletes claims is a warning",
		sts:     mkStatefulSet(withRetention(appsv1.DeletePersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType)),
		cluster: mkCluster(),
		want: []string{
			"warn spec.persistentVolumeClaimRetentionPolicy.whenDeleted",
			"warn spec.persistentVolumeClaimRetentionPolicy.whenScaled",
		},
		wantMessage: "deleting the StatefulSet deletes its claims",
	}, {
		name:    "a retention policy that retains claims",
		sts:     mkStatefulSet(withRetention(appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.RetainPersistentVolumeClaimRetentionPolicyType)),
		cluster: mkCluster(),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mkEngine(t, tt.cfg)
			mutated, result := admit(t, e, create(tt.sts), tt.cluster)
			got := findingsOf(result, StorageClass)
			assert.Equal(t, tt.want, nilIfEmpty(summary(got)))
			assert.Equal(t, result.Count(Enforce) > 0, result.Denied())
			if tt.wantMessage != "" {
				require.NotEmpty(t, got)
				assert.Contains(t, got[0].Message, tt.wantMessage)
			}
			requireMessagesReadable(t, "StatefulSet", result)

			// Claim templates are immutable: on UPDATE nothing denies.
			result, err := e.ValidateStatefulSet(update(mutated, mutated), tt.cluster)
			require.NoError(t, err)
			got = findingsOf(result, StorageClass)
			assert.Len(t, got, len(tt.want))
			for _, f := range got {
				assert.Equal(t, Warn, f.Mode, "UPDATE must only warn: %s", f)
			}
		})
	}
}

func TestStorageClassSuggestions(t *testing.T) {
	block := corev1.PersistentVolumeBlock
	tests := []struct {
		name    string
		cfg     Config
		sts     *appsv1.StatefulSet
		cluster *fakeLookup
		// want is the fix the denial suggests, after "; ".
		want string
	}{{
		// Mutation maps ReadWriteMany to the file class, which cannot serve
		// Block: the denial must name a class that can, not the same one.
		name:    "mapped file class asked for Block",
		sts:     mkStatefulSet(withClaim("shared", modes(corev1.ReadWriteMany), withVolumeMode(block))),
		cluster: mkCluster(),
		want:    `use "managed-csi"`,
	}, {
		name:    "mapped class missing from the cluster",
		sts:     mkStatefulSet(withClaimTemplate("data", corev1.ReadWriteOnce)),
		cluster: &fakeLookup{services: mkCluster().services},
		want:    `create it or use "managed-csi-premium"`,
	}, {
		name:    "eks: EBS asked for ReadWriteMany",
		cfg:     Config{Profile: "eks"},
		sts:     mkStatefulSet(withClaim("shared", modes(corev1.ReadWriteMany), withClass("gp2"))),
		cluster: mkCluster(),
		want:    `use "efs-sc"`,
	}, {
		name:    "allow-list: the mapped class when allowed",
		cfg:     Config{Policies: PoliciesConfig{StorageClass: StorageClassConfig{Allowed: []string{"fast", "managed-csi"}}}},
		sts:     mkStatefulSet(withClaim("data", modes(corev1.ReadWriteOnce), withClass("fast"))),
		cluster: mkCluster(),
		want:    `create it or use "managed-csi"`,
	}, {
		name:    "allow-list without the mapped class or a capable catalog class",
		cfg:     Config{Policies: PoliciesConfig{StorageClass: StorageClassConfig{Allowed: []string{"slow", "fast", "azurefile-csi"}}}},
		sts:     mkStatefulSet(withClaim("data", modes(corev1.ReadWriteOnce), withClass("fast"), withVolumeMode(block))),
		cluster: mkCluster(),
		want:    "create it or use one of azurefile-csi, slow",
	}, {
		name:    "a catalog class with an unknown provisioner is never suggested",
		cfg:     Config{Policies: PoliciesConfig{StorageClass: StorageClassConfig{Catalog: []CatalogClass{{Name: "nfs", Provisioner: "nfs.csi.k8s.io"}}}}},
		sts:     mkStatefulSet(withClaim("shared", modes(corev1.ReadWriteMany), withVolumeMode(block))),
		cluster: mkCluster(),
		want:    `use "managed-csi"`,
	}, {
		name:    "nothing known serves the template",
		sts:     mkStatefulSet(withClaim("data", modes("ReadWriteSometimes"), withClass("fast"))),
		cluster: mkCluster(),
		want:    "create it or use another StorageClass",
	}, {
		name:    "static binding",
		cfg:     Config{Profile: "gke"},
		sts:     mkStatefulSet(withClaim("data", modes(corev1.ReadOnlyMany), withClass(""))),
		cluster: mkCluster(),
		want:    `name a class such as "standard-rwx" or set allowStaticBinding: true`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, result := admit(t, mkEngine(t, tt.cfg), create(tt.sts), tt.cluster)
			require.True(t, result.Denied())
			f := findingsOf(result, StorageClass)[0]
			_, rest, _ := strings.Cut(f.Message, "; ")
			assert.Equal(t, tt.want, rest, f.Message)
			if f.Value != "" {
				assert.NotContains(t, rest, `"`+f.Value+`"`, "the fix suggested is the class that fails")
			}
		})
	}
}

func TestStorageClassLookupError(t *testing.T) {
	e := mkEngine(t, Config{})
	cluster := mkCluster()
	cluster.classErr = errLookup
	sts := mkStatefulSet(withClaimTemplate("data", corev1.ReadWriteOnce))
	mutated, _, err := e.MutateStatefulSet(create(sts), cluster)
	require.NoError(t, err, "mutation does not look classes up")
	for _, req := range []StatefulSetRequest{create(mutated), update(mutated, mutated)} {
		_, err = e.ValidateStatefulSet(req, cluster)
		require.ErrorIs(t, err, errLookup, "%s: a failed lookup must not be taken as a missing class", req.Operation)
		assert.Contains(t, err.Error(), "storage-class")
	}
}

// roundTrip returns what the API server stores for an object: its JSON.
func roundTrip(t testing.TB, sts *appsv1.StatefulSet) *appsv1.StatefulSet {
	t.Helper()
	b, err := json.Marshal(sts)
	require.NoError(t, err)
	out := &appsv1.StatefulSet{}
	require.NoError(t, json.Unmarshal(b, out))
	return out
}

// manifests are StatefulSets as users write them, with everything the
// mutating webhook injects on CREATE left out.
func manifests() map[string]func() *appsv1.StatefulSet {
	return map[string]func() *appsv1.StatefulSet{
		"one template": func() *appsv1.StatefulSet {
			return mkStatefulSet(withClaimTemplate("data", corev1.ReadWriteOnce), withMount("data"))
		},
		"templates with and without classes and labels": func() *appsv1.StatefulSet {
			return mkStatefulSet(
				withClaim("data", modes(corev1.ReadWriteOnce), withClaimLabels(map[string]string{"app": "nginx"})),
				withClaim("shared", modes(corev1.ReadWriteMany), withClass("azurefile-csi")),
				withClaimTemplate("wal", corev1.ReadWriteOncePod),
				withMount("data"), withMount("shared"), withMount("wal"),
			)
		},
		"a template already labelled with another schedule": func() *appsv1.StatefulSet {
			return mkStatefulSet(withSchedule("daily"),
				withClaim("data", modes(corev1.ReadWriteOnce), withClaimLabels(map[string]string{scheduleKey: "hourly"})),
				withMount("data"),
			)
		},
		"dangling mounts only": func() *appsv1.StatefulSet {
			return mkStatefulSet(withMount("logs"), withInitMount("seed"))
		},
		"templates and dangling mounts": func() *appsv1.StatefulSet {
			return mkStatefulSet(
				withClaimTemplate("data", corev1.ReadWriteOnce), withClaimTemplate("shared", corev1.ReadWriteMany),
				withMount("data"), withMount("logs"), withInitMount("seed"), withPodVolume("tmp"), withMount("tmp"),
			)
		},
	}
}

// TestUpdateReappliesTheOriginalManifest is the UPDATE contract: re-applying
// the manifest that created a StatefulSet (client-side or server-side apply,
// helm upgrade, a GitOps sync), possibly with a changed replica count or
// image, must come out with claim templates identical to the live object's,
// since the API server rejects any change to them.
func TestUpdateReappliesTheOriginalManifest(t *testing.T) {
	changes := map[string]func(*appsv1.StatefulSet){
		"unchanged": func(*appsv1.StatefulSet) {},
		"scaled":    func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr(int32(5)) },
		"new image": func(s *appsv1.StatefulSet) {
			s.Spec.Template.Spec.Containers[0].Image = "registry.k8s.io/nginx-slim:0.9"
		},
	}
	for _, cfg := range []Config{{}, {Profile: "eks"}, {Profile: "gke"}} {
		e := mkEngine(t, cfg)
		for name, manifest := range manifests() {
			for change, apply := range changes {
				t.Run(cfg.Complete().Profile+"/"+name+"/"+change, func(t *testing.T) {
					created, result := admit(t, e, create(manifest()), mkCluster())
					require.False(t, result.Denied(), "%v", result.Findings)
					live := roundTrip(t, created)

					incoming := manifest()
					apply(incoming)
					before := incoming.DeepCopy()
					mutated, ms, err := e.MutateStatefulSet(update(incoming, live), mkCluster())
					require.NoError(t, err)
					assert.True(t, apiequality.Semantic.DeepEqual(live.Spec.VolumeClaimTemplates, mutated.Spec.VolumeClaimTemplates),
						"claim templates differ from the live object's:\nlive: %v\ngot:  %v", live.Spec.VolumeClaimTemplates, mutated.Spec.VolumeClaimTemplates)
					assert.Equal(t, before, incoming, "the request object was modified")
					requireMutationsPointAtTheirValues(t, mutated, ms)

					// Everything else the user sent is kept as sent.
					mutatedRest, incomingRest := mutated.DeepCopy(), incoming.DeepCopy()
					mutatedRest.Spec.VolumeClaimTemplates, incomingRest.Spec.VolumeClaimTemplates = nil, nil
					assert.Equal(t, incomingRest, mutatedRest)

					result, err = e.ValidateStatefulSet(update(mutated, live), mkCluster())
					require.NoError(t, err)
					assert.Empty(t, result.Findings)

					again, ms, err := e.MutateStatefulSet(update(mutated, live), mkCluster())
					require.NoError(t, err)
					assert.Empty(t, ms)
					assert.Same(t, mutated, again)
				})
			}
		}
	}
}

func TestUpdateNeverInjects(t *testing.T) {
	e := mkEngine(t, Config{})
	// Created while storage-class was disabled: no classes, no templates for
	// the dangling mount. Templates are immutable now, so UPDATE adds nothing.
	old := roundTrip(t, mkStatefulSet(withClaimTemplate("data", corev1.ReadWriteOnce), withMount("logs")))
	incoming := mkStatefulSet(withClaimTemplate("data", corev1.ReadWriteOnce), withMount("logs"), withMount("cache"))
	mutated, ms, err := e.MutateStatefulSet(update(incoming, old), mkCluster())
	require.NoError(t, err)
	assert.Empty(t, mutationsOf(ms, StorageClass))
	assert.Equal(t, []string{"data=" + unset}, templateClasses(mutated))

	_, ms, err = e.MutateStatefulSet(StatefulSetRequest{Operation: Update, Namespace: testNamespace, Object: incoming}, mkCluster())
	require.NoError(t, err)
	assert.Empty(t, ms, "UPDATE without the live object has nothing to restore from")
}

func TestUpdateLeavesUserChangedTemplatesAlone(t *testing.T) {
	e := mkEngine(t, Config{})
	original := func() *appsv1.StatefulSet {
		return mkStatefulSet(withClaimTemplate("data", corev1.ReadWriteOnce), withMount("data"), withMount("logs"))
	}
	created, _ := admit(t, e, create(original()), mkCluster())
	live := roundTrip(t, created)
	require.Equal(t, []string{"data=managed-csi", "logs=managed-csi"}, templateClasses(live))

	tests := []struct {
		name     string
		incoming *appsv1.StatefulSet
		want     []string
		// wantPaths are the storage-class mutations expected.
		wantPaths []string
	}{{
		name:      "explicit other class is kept",
		incoming:  mkStatefulSet(withClaim("data", modes(corev1.ReadWriteOnce), withClass("managed-csi-premium")), withMount("data"), withMount("logs")),
		want:      []string{"data=managed-csi-premium", "logs=managed-csi"},
		wantPaths: []string{"/spec/volumeClaimTemplates/1"},
	}, {
		name:      "explicit static binding is kept",
		incoming:  mkStatefulSet(withClaim("data", modes(corev1.ReadWriteOnce), withClass("")), withMount("data"), withMount("logs")),
		want:      []string{"data=", "logs=managed-csi"},
		wantPaths: []string{"/spec/volumeClaimTemplates/1"},
	}, {
		name:     "renamed template gets nothing from the old one",
		incoming: mkStatefulSet(withClaimTemplate("data2", corev1.ReadWriteOnce), withMount("data2"), withMount("logs")),
		want:     []string{"data2=" + unset},
	}, {
		name:      "injected template not restored once its mount is gone",
		incoming:  mkStatefulSet(withClaimTemplate("data", corev1.ReadWriteOnce), withMount("data")),
		want:      []string{"data=managed-csi"},
		wantPaths: []string{"/spec/volumeClaimTemplates/0/spec/storageClassName"},
	}, {
		name:      "injected template not restored when the user now declares one of that name",
		incoming:  mkStatefulSet(withClaimTemplate("data", corev1.ReadWriteOnce), withClaimTemplate("logs", corev1.ReadWriteMany), withMount("data"), withMount("logs")),
		want:      []string{"data=managed-csi", "logs=managed-csi"},
		wantPaths: []string{"/spec/volumeClaimTemplates/0/spec/storageClassName", "/spec/volumeClaimTemplates/1/spec/storageClassName"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mutated, ms, err := e.MutateStatefulSet(update(tt.incoming, live), mkCluster())
			require.NoError(t, err)
			assert.Equal(t, tt.want, templateClasses(mutated))
			assert.Equal(t, tt.wantPaths, paths(mutationsOf(ms, StorageClass)))
			requireMutationsPointAtTheirValues(t, mutated, ms)
		})
	}
}

func TestClassForAccessModes(t *testing.T) {
	aks := Config{}.Complete()
	tests := []struct {
		modes  []corev1.PersistentVolumeAccessMode
		want   string
		wantOK bool
	}{
		{nil, "managed-csi", true},
		{modes(corev1.ReadWriteOnce), "managed-csi", true},
		{modes(corev1.ReadWriteOncePod), "managed-csi", true},
		{modes(corev1.ReadWriteMany), "azurefile-csi", true},
		{modes(corev1.ReadOnlyMany), "azurefile-csi", true},
		{modes(corev1.ReadWriteOnce, corev1.ReadWriteMany), "azurefile-csi", true},
		{modes(corev1.ReadWriteOncePod, corev1.ReadOnlyMany), "azurefile-csi", true},
		{modes(corev1.ReadWriteOnce, corev1.ReadWriteOncePod), "managed-csi", true},
		{modes("ReadWriteSometimes"), "", false},
	}
	for _, tt := range tests {
		got, ok := aks.ClassForAccessModes(tt.modes)
		assert.Equal(t, tt.want, got, "%v", tt.modes)
		assert.Equal(t, tt.wantOK, ok, "%v", tt.modes)
	}

	// A mode the config maps to no class has no class, even if another would.
	partial := Config{Policies: PoliciesConfig{StorageClass: StorageClassConfig{Classes: map[corev1.PersistentVolumeAccessMode]string{corev1.ReadWriteOnce: "disk"}}}}
	got, ok := partial.ClassForAccessModes(modes(corev1.ReadWriteOnce, corev1.ReadWriteMany))
	assert.False(t, ok)
	assert.Empty(t, got)
	got, ok = partial.ClassForAccessModes(modes(corev1.ReadWriteOnce))
	assert.True(t, ok)
	assert.Equal(t, "disk", got)
}
