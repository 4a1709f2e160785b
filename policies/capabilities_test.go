package policies

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

func TestCapabilitySupports(t *testing.T) {
	const (
		RWO, RWOP, RWX, ROX = corev1.ReadWriteOnce, corev1.ReadWriteOncePod, corev1.ReadWriteMany, corev1.ReadOnlyMany
		FS, Block           = corev1.PersistentVolumeFilesystem, corev1.PersistentVolumeBlock
	)
	type want struct {
		access corev1.PersistentVolumeAccessMode
		volume corev1.PersistentVolumeMode
		ok     bool
	}
	disk := []want{
		{RWO, FS, true}, {RWOP, FS, true}, {RWX, FS, false}, {ROX, FS, false},
		{RWO, Block, true}, {RWOP, Block, true}, {RWX, Block, true}, {ROX, Block, true},
	}
	gcePD := []want{
		{RWO, FS, true}, {RWOP, FS, true}, {RWX, FS, false}, {ROX, FS, true},
		{RWO, Block, true}, {RWOP, Block, true}, {RWX, Block, true}, {ROX, Block, true},
	}
	share := []want{
		{RWO, FS, true}, {RWOP, FS, true}, {RWX, FS, true}, {ROX, FS, true},
		{RWO, Block, false}, {RWOP, Block, false}, {RWX, Block, false}, {ROX, Block, false},
	}
	tests := map[string][]want{
		"disk.csi.azure.com":           disk,
		"kubernetes.io/azure-disk":     disk,
		"ebs.csi.aws.com":              disk,
		"kubernetes.io/aws-ebs":        disk,
		"pd.csi.storage.gke.io":        gcePD,
		"kubernetes.io/gce-pd":         gcePD,
		"file.csi.azure.com":           share,
		"kubernetes.io/azure-file":     share,
		"efs.csi.aws.com":              share,
		"filestore.csi.storage.gke.io": share,
	}
	require.Len(t, Capabilities, len(tests), "every provisioner in the table is tested")
	for provisioner, wants := range tests {
		capability, ok := Capabilities[provisioner]
		require.True(t, ok, provisioner)
		for _, w := range wants {
			assert.Equal(t, w.ok, capability.Supports(w.access, w.volume), "%s %s %s", provisioner, w.access, w.volume)
		}
		assert.False(t, capability.Supports(RWO, ""), "%s: an unset volumeMode is the caller's to default", provisioner)
		assert.False(t, capability.Supports("ReadWriteSometimes", FS), provisioner)
	}
}

func TestCapabilityZonal(t *testing.T) {
	for provisioner, zonal := range map[string]bool{
		"disk.csi.azure.com": true, "ebs.csi.aws.com": true, "pd.csi.storage.gke.io": true, "kubernetes.io/gce-pd": true,
		"file.csi.azure.com": false, "efs.csi.aws.com": false, "filestore.csi.storage.gke.io": false,
	} {
		assert.Equal(t, zonal, Capabilities[provisioner].Zonal, provisioner)
	}
}

func TestUnknownCapabilitySupportsNothing(t *testing.T) {
	assert.False(t, Capability{}.Supports(corev1.ReadWriteOnce, corev1.PersistentVolumeFilesystem))
}
