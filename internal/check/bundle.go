package check

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"

	"github.com/stateguard/stateguard/policies"
)

// bundle is the cluster as the input describes it: every Service,
// StorageClass and Namespace found anywhere in it, indexed once
// so lookups cost the same however large the input is.
type bundle struct {
	services   map[string]*corev1.Service // namespace + "/" + name
	classes    map[string]*storagev1.StorageClass
	namespaces map[string]*corev1.Namespace
}

var _ policies.Lookup = (*bundle)(nil)

func newBundle(catalog []*storagev1.StorageClass) *bundle {
	b := &bundle{
		services:   map[string]*corev1.Service{},
		classes:    map[string]*storagev1.StorageClass{},
		namespaces: map[string]*corev1.Namespace{},
	}
	// The catalog describes classes a real cluster would have; a class in
	// the input replaces the catalog's entry of that name.
	for _, sc := range catalog {
		b.classes[sc.Name] = sc
	}
	return b
}

func (b *bundle) Service(namespace, name string) (*corev1.Service, error) {
	return b.services[namespace+"/"+name], nil
}

func (b *bundle) StorageClass(name string) (*storagev1.StorageClass, error) {
	return b.classes[name], nil
}

func (b *bundle) Namespace(name string) (*corev1.Namespace, error) {
	return b.namespaces[name], nil
}

// StatefulSets serves only the Service guard, which judges DELETE and
// UPDATE of live Services: there are none offline, so nothing is indexed.
func (b *bundle) StatefulSets(string) ([]*appsv1.StatefulSet, error) {
	return nil, nil
}
