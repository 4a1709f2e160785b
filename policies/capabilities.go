package policies

import (
	corev1 "k8s.io/api/core/v1"
)

// Capability is what a provisioner's volumes can do.
type Capability struct {
	// Modes lists the access modes served, per volumeMode.
	Modes map[corev1.PersistentVolumeMode][]corev1.PersistentVolumeAccessMode
	// Zonal volumes live in one zone, so binding them before the pod is
	// scheduled (volumeBindingMode: Immediate) can strand the pod.
	Zonal bool
}

var (
	rwo  = corev1.ReadWriteOnce
	rwop = corev1.ReadWriteOncePod
	rwx  = corev1.ReadWriteMany
	rox  = corev1.ReadOnlyMany
	fs   = corev1.PersistentVolumeFilesystem
	blk  = corev1.PersistentVolumeBlock
)

// A block disk attaches to one node for writing; shared multi-attach (Azure
// shared disks, EBS io2 Multi-Attach, GCE multi-writer) exists only for raw
// block devices, because no ordinary filesystem survives two writers.
var blockDisk = Capability{
	Modes: map[corev1.PersistentVolumeMode][]corev1.PersistentVolumeAccessMode{
		fs:  {rwo, rwop},
		blk: {rwo, rwop, rwx, rox},
	},
	Zonal: true,
}

// GCE persistent disks can also be attached read-only to many nodes.
var gcePersistentDisk = Capability{
	Modes: map[corev1.PersistentVolumeMode][]corev1.PersistentVolumeAccessMode{
		fs:  {rwo, rwop, rox},
		blk: {rwo, rwop, rwx, rox},
	},
	Zonal: true,
}

// Network file shares serve every mode, but only as a filesystem.
var fileShare = Capability{
	Modes: map[corev1.PersistentVolumeMode][]corev1.PersistentVolumeAccessMode{
		fs: {rwo, rwop, rwx, rox},
	},
}

// Capabilities is the built-in table of known provisioners, CSI and in-tree names.
var Capabilities = map[string]Capability{
	"disk.csi.azure.com":           blockDisk,
	"kubernetes.io/azure-disk":     blockDisk,
	"file.csi.azure.com":           fileShare,
	"kubernetes.io/azure-file":     fileShare,
	"ebs.csi.aws.com":              blockDisk,
	"kubernetes.io/aws-ebs":        blockDisk,
	"efs.csi.aws.com":              fileShare,
	"pd.csi.storage.gke.io":        gcePersistentDisk,
	"kubernetes.io/gce-pd":         gcePersistentDisk,
	"filestore.csi.storage.gke.io": fileShare,
}

// Supports reports whether volumes of this capability serve the access mode
// with the volume mode.
func (c Capability) Supports(access corev1.PersistentVolumeAccessMode, volume corev1.PersistentVolumeMode) bool {
	for _, m := range c.Modes[volume] {
		if m == access {
			return true
		}
	}
	return false
}
