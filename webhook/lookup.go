package webhook

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/policies"
)

// clusterLookup answers the policies' lookups from informer caches. A miss for
// a Service or StorageClass falls back to a live read: `kubectl apply -f` of a
// Service and its StatefulSet sends them back to back, faster than the watch
// delivers the Service, and a missing-Service denial would then be false.
type clusterLookup struct {
	ctx   context.Context
	cache client.Reader
	live  client.Reader
}

var _ policies.Lookup = (*clusterLookup)(nil)

func (l *clusterLookup) Service(namespace, name string) (*corev1.Service, error) {
	svc := &corev1.Service{}
	return getWithFallback(l, client.ObjectKey{Namespace: namespace, Name: name}, svc)
}

func (l *clusterLookup) StorageClass(name string) (*storagev1.StorageClass, error) {
	sc := &storagev1.StorageClass{}
	return getWithFallback(l, client.ObjectKey{Name: name}, sc)
}

func (l *clusterLookup) Namespace(name string) (*corev1.Namespace, error) {
	ns := &corev1.Namespace{}
	// Namespaces exist long before anything is created in them, so the cache
	// is authoritative enough; a miss still reads live rather than guess the mode.
	return getWithFallback(l, client.ObjectKey{Name: name}, ns)
}

func (l *clusterLookup) StatefulSets(namespace string) ([]*appsv1.StatefulSet, error) {
	list := &appsv1.StatefulSetList{}
	if err := l.cache.List(l.ctx, list, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	out := make([]*appsv1.StatefulSet, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}

func getWithFallback[T client.Object](l *clusterLookup, key client.ObjectKey, obj T) (T, error) {
	var zero T
	err := l.cache.Get(l.ctx, key, obj)
	if apierrors.IsNotFound(err) && l.live != nil {
		err = l.live.Get(l.ctx, key, obj)
	}
	switch {
	case apierrors.IsNotFound(err):
		return zero, nil
	case err != nil:
		return zero, fmt.Errorf("reading %s: %w", key, err)
	}
	return obj, nil
}
