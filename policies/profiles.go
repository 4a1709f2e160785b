package policies

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// Profile is a platform's built-in defaults: which class each access mode
// gets, and the classes the platform creates in every cluster.
type Profile struct {
	Classes map[corev1.PersistentVolumeAccessMode]string
	Catalog []CatalogClass
}

// DefaultProfile applies when the config names none.
const DefaultProfile = "aks"

// Profiles are the built-in platform profiles, by name.
var Profiles = map[string]Profile{
	"aks": {
		Classes: classMap("managed-csi", "azurefile-csi"),
		Catalog: []CatalogClass{
			builtinClass("managed-csi", "disk.csi.azure.com", storagev1.VolumeBindingWaitForFirstConsumer),
			builtinClass("managed-csi-premium", "disk.csi.azure.com", storagev1.VolumeBindingWaitForFirstConsumer),
			builtinClass("azurefile-csi", "file.csi.azure.com", storagev1.VolumeBindingImmediate),
			builtinClass("azurefile-csi-premium", "file.csi.azure.com", storagev1.VolumeBindingImmediate),
			builtinClass("default", "disk.csi.azure.com", storagev1.VolumeBindingWaitForFirstConsumer),
		},
	},
	"eks": {
		// gp2 is the class EKS creates; efs-sc is the name the EFS CSI driver's
		// documentation uses, since EKS ships no shared-file class of its own.
		Classes: classMap("gp2", "efs-sc"),
		Catalog: []CatalogClass{
			builtinClass("gp2", "kubernetes.io/aws-ebs", storagev1.VolumeBindingWaitForFirstConsumer),
			builtinClass("gp3", "ebs.csi.aws.com", storagev1.VolumeBindingWaitForFirstConsumer),
			builtinClass("efs-sc", "efs.csi.aws.com", storagev1.VolumeBindingImmediate),
		},
	},
	"gke": {
		Classes: classMap("standard-rwo", "standard-rwx"),
		Catalog: []CatalogClass{
			builtinClass("standard-rwo", "pd.csi.storage.gke.io", storagev1.VolumeBindingWaitForFirstConsumer),
			builtinClass("premium-rwo", "pd.csi.storage.gke.io", storagev1.VolumeBindingWaitForFirstConsumer),
			builtinClass("standard", "kubernetes.io/gce-pd", storagev1.VolumeBindingImmediate),
			builtinClass("standard-rwx", "filestore.csi.storage.gke.io", storagev1.VolumeBindingWaitForFirstConsumer),
			builtinClass("premium-rwx", "filestore.csi.storage.gke.io", storagev1.VolumeBindingWaitForFirstConsumer),
		},
	},
}

// ProfileNames returns the built-in profile names, sorted.
func ProfileNames() []string {
	out := make([]string, 0, len(Profiles))
	for name := range Profiles {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func classMap(disk, shared string) map[corev1.PersistentVolumeAccessMode]string {
	return map[corev1.PersistentVolumeAccessMode]string{
		corev1.ReadWriteOnce:    disk,
		corev1.ReadWriteOncePod: disk,
		corev1.ReadWriteMany:    shared,
		corev1.ReadOnlyMany:     shared,
	}
}

// builtinClass describes a class as the platform creates it: reclaim Delete
// and expansion allowed, which is what all three platforms ship.
func builtinClass(name, provisioner string, binding storagev1.VolumeBindingMode) CatalogClass {
	reclaim := corev1.PersistentVolumeReclaimDelete
	expand := true
	return CatalogClass{
		Name: name, Provisioner: provisioner,
		ReclaimPolicy: &reclaim, VolumeBindingMode: &binding, AllowVolumeExpansion: &expand,
	}
}
