package webhook

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// cachedObjects are the kinds the policies read, each with a transform that
// keeps only the fields they read: with 10,000 Services in a cluster, the
// annotations and managedFields would otherwise be most of the webhook's memory.
func cachedObjects() map[client.Object]cache.ByObject {
	return map[client.Object]cache.ByObject{
		&corev1.Service{}:         {Transform: keep(slimService)},
		&storagev1.StorageClass{}: {Transform: keep(slimStorageClass)},
		&corev1.Namespace{}:       {Transform: keep(slimNamespace)},
		&appsv1.StatefulSet{}:     {Transform: keep(slimStatefulSet)},
	}
}

// keep wraps a slimming function as an informer transform. Tombstones and
// unexpected types pass through untouched.
func keep[T any](slim func(*T) *T) toolscache.TransformFunc {
	return func(obj any) (any, error) {
		if t, ok := obj.(*T); ok {
			return slim(t), nil
		}
		if _, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			return obj, nil
		}
		return nil, fmt.Errorf("unexpected %T in a cache transform", obj)
	}
}

// slimMeta keeps what identifies an object and what the cache needs to index
// and update it; labels only where a policy reads them.
func slimMeta(m metav1.ObjectMeta, withLabels bool) metav1.ObjectMeta {
	out := metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
	}
	if withLabels {
		out.Labels = m.Labels
	}
	return out
}

func slimService(s *corev1.Service) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   s.TypeMeta,
		ObjectMeta: slimMeta(s.ObjectMeta, false),
		Spec: corev1.ServiceSpec{
			ClusterIP:                s.Spec.ClusterIP,
			Selector:                 s.Spec.Selector,
			PublishNotReadyAddresses: s.Spec.PublishNotReadyAddresses,
		},
	}
}

func slimStorageClass(s *storagev1.StorageClass) *storagev1.StorageClass {
	return &storagev1.StorageClass{
		TypeMeta:             s.TypeMeta,
		ObjectMeta:           slimMeta(s.ObjectMeta, false),
		Provisioner:          s.Provisioner,
		ReclaimPolicy:        s.ReclaimPolicy,
		VolumeBindingMode:    s.VolumeBindingMode,
		AllowVolumeExpansion: s.AllowVolumeExpansion,
	}
}

func slimNamespace(n *corev1.Namespace) *corev1.Namespace {
	return &corev1.Namespace{TypeMeta: n.TypeMeta, ObjectMeta: slimMeta(n.ObjectMeta, true)}
}

func slimStatefulSet(s *appsv1.StatefulSet) *appsv1.StatefulSet {
	out := &appsv1.StatefulSet{TypeMeta: s.TypeMeta, ObjectMeta: slimMeta(s.ObjectMeta, false)}
	out.Spec.ServiceName = s.Spec.ServiceName
	out.Spec.Template.Labels = s.Spec.Template.Labels
	return out
}
