package webhook

import (
	"context"
	"fmt"
	"reflect"

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
	// seen holds what this review has looked up, found (the object) or not
	// (nil): one read per object per review, however many claim templates
	// name the same StorageClass. Without it, a StatefulSet whose thousands
	// of templates name a class the cache lacks would cost as many live reads.
	seen map[lookupKey]client.Object
	// liveReads counts the live reads of this review, up to maxLiveReads.
	liveReads int
}

// maxLiveReads bounds the live reads of one review. A real StatefulSet
// needs a few (its Service, a class or two created just before it); past the
// bound a cache miss is taken as the answer, so a StatefulSet naming
// thousands of distinct missing classes cannot make each review a burst of
// thousands of GETs against the API server.
const maxLiveReads = 16

type lookupKey struct {
	kind reflect.Type
	key  client.ObjectKey
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
	seenKey := lookupKey{reflect.TypeFor[T](), key}
	if seen, ok := l.seen[seenKey]; ok {
		if seen == nil {
			return zero, nil
		}
		return seen.(T), nil
	}
	if l.seen == nil {
		l.seen = map[lookupKey]client.Object{}
	}
	err := l.cache.Get(l.ctx, key, obj)
	if apierrors.IsNotFound(err) && l.live != nil && l.liveReads < maxLiveReads {
		l.liveReads++
		err = l.live.Get(l.ctx, key, obj)
	}
	switch {
	case apierrors.IsNotFound(err):
		l.seen[seenKey] = nil
		return zero, nil
	case err != nil:
		return zero, fmt.Errorf("reading %s: %w", key, err)
	}
	l.seen[seenKey] = obj
	return obj, nil
}
