package policies

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

func TestProfileNames(t *testing.T) {
	assert.Equal(t, []string{"aks", "eks", "gke"}, ProfileNames())
	assert.Equal(t, "aks", DefaultProfile)
}

// Every profile must be usable as it stands: each access mode mapped, each
// mapped class in the catalog, each catalog provisioner in the capability
// table, and the catalog valid.
func TestProfilesAreConsistent(t *testing.T) {
	for name, p := range Profiles {
		t.Run(name, func(t *testing.T) {
			require.Len(t, p.Classes, 4)
			names := map[string]bool{}
			for _, c := range p.Catalog {
				assert.False(t, names[c.Name], "duplicate catalog entry %s", c.Name)
				names[c.Name] = true
				_, known := Capabilities[c.Provisioner]
				assert.True(t, known, "%s: provisioner %s", c.Name, c.Provisioner)
				require.NotNil(t, c.ReclaimPolicy)
				require.NotNil(t, c.VolumeBindingMode)
				require.NotNil(t, c.AllowVolumeExpansion)
				if Capabilities[c.Provisioner].Zonal && !strings.HasPrefix(c.Provisioner, "kubernetes.io/") {
					assert.NotEqual(t, storagev1.VolumeBindingImmediate, *c.VolumeBindingMode,
						"%s: the platforms' zonal CSI classes bind WaitForFirstConsumer", c.Name)
				}
			}
			for _, m := range knownAccessModes {
				class, ok := p.Classes[m]
				require.True(t, ok, "%s unmapped", m)
				assert.True(t, names[class], "%s maps %s to %s, which is not in its catalog", name, m, class)
			}
			assert.Empty(t, Config{Profile: name}.Complete().Validate())
		})
	}
}

// The in-tree kubernetes.io/gce-pd "standard" class on GKE is Immediate; it is
// the one zonal class the profiles list that way, and it must warn.
func TestGKEStandardClassWarns(t *testing.T) {
	e := mkEngine(t, Config{Profile: "gke"})
	cluster := mkCluster()
	var standard *storagev1.StorageClass
	for _, sc := range e.Config().CatalogStorageClasses() {
		if sc.Name == "standard" {
			standard = sc
		}
	}
	require.NotNil(t, standard)
	withClasses(standard)(cluster)
	_, result := admit(t, e, create(mkStatefulSet(withClaim("data", modes(corev1.ReadWriteOnce), withClass("standard")))), cluster)
	assert.Equal(t, []string{
		"warn spec.volumeClaimTemplates[0].spec.storageClassName",
		"warn spec.volumeClaimTemplates[0].spec.storageClassName",
	}, summary(result.Findings), "reclaim Delete and Immediate binding; expansion is allowed")
}
