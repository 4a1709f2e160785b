package policies

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// Lookup answers the questions policies ask about the rest of the cluster.
// The webhook backs it with informer caches (falling back to live reads on a
// miss), the CLI with the manifest bundle.
//
// Each method returns (nil, nil) when the object does not exist; an error means
// the answer is unknown, and the engine refuses to decide on a guess. Returned
// objects are shared and must not be modified.
type Lookup interface {
	Service(namespace, name string) (*corev1.Service, error)
	StorageClass(name string) (*storagev1.StorageClass, error)
	Namespace(name string) (*corev1.Namespace, error)
	// StatefulSets returns the StatefulSets of a namespace (for the Service guard).
	StatefulSets(namespace string) ([]*appsv1.StatefulSet, error)
}
