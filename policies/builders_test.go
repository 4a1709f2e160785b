package policies

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The objects the tests build are a realistic "web" StatefulSet in "default",
// served by the headless Service "nginx", in the shape users apply them.
const (
	testNamespace = "default"
	testName      = "web"
	testService   = "nginx"
	scheduleKey   = DefaultSnapshotLabelKey
)

var errLookup = errors.New("cache not synced")

// --- StatefulSets ---

type stsOption func(*appsv1.StatefulSet)

// mkStatefulSet returns a StatefulSet that passes every policy under the
// default config with the default fake cluster (see mkCluster): serviceName
// nginx, pod labels app=nginx, the daily snapshot schedule, one container
// "app" and no claim templates.
func mkStatefulSet(opts ...stsOption) *appsv1.StatefulSet {
	sts := &appsv1.StatefulSet{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: metav1.ObjectMeta{
			Name: testName, Namespace: testNamespace,
			Labels: map[string]string{scheduleKey: "daily"},
		},
		Spec: appsv1.StatefulSetSpec{
			ServiceName: testService,
			Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": "nginx"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "nginx"}},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/nginx-slim:0.8"}},
				},
			},
		},
	}
	for _, o := range opts {
		o(sts)
	}
	return sts
}

func withName(name string) stsOption {
	return func(s *appsv1.StatefulSet) { s.Name = name }
}

func withServiceName(name string) stsOption {
	return func(s *appsv1.StatefulSet) { s.Spec.ServiceName = name }
}

// withLabels replaces the StatefulSet's own labels.
func withLabels(labels map[string]string) stsOption {
	return func(s *appsv1.StatefulSet) { s.Labels = labels }
}

func withSchedule(value string) stsOption {
	return func(s *appsv1.StatefulSet) {
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		s.Labels[scheduleKey] = value
	}
}

func withoutLabel(key string) stsOption {
	return func(s *appsv1.StatefulSet) { delete(s.Labels, key) }
}

// withPodLabels replaces the pod template's labels.
func withPodLabels(labels map[string]string) stsOption {
	return func(s *appsv1.StatefulSet) { s.Spec.Template.Labels = labels }
}

type claimOption func(*corev1.PersistentVolumeClaim)

// withClaimTemplate adds a claim template of 1Gi asking for the access modes,
// with no storageClassName, the way most manifests leave it.
func withClaimTemplate(name string, modes ...corev1.PersistentVolumeAccessMode) stsOption {
	return withClaim(name, modes)
}

func withClaim(name string, modes []corev1.PersistentVolumeAccessMode, opts ...claimOption) stsOption {
	return func(s *appsv1.StatefulSet) {
		c := corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: modes,
				Resources: corev1.VolumeResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
				},
			},
		}
		for _, o := range opts {
			o(&c)
		}
		s.Spec.VolumeClaimTemplates = append(s.Spec.VolumeClaimTemplates, c)
	}
}

func withClass(class string) claimOption {
	return func(c *corev1.PersistentVolumeClaim) { c.Spec.StorageClassName = &class }
}

func withVolumeMode(m corev1.PersistentVolumeMode) claimOption {
	return func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeMode = &m }
}

func withClaimLabels(labels map[string]string) claimOption {
	return func(c *corev1.PersistentVolumeClaim) { c.Labels = labels }
}

// withMount mounts a volume into the first container at /<name>.
func withMount(name string) stsOption {
	return func(s *appsv1.StatefulSet) {
		c := &s.Spec.Template.Spec.Containers[0]
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: name, MountPath: "/" + name})
	}
}

// withInitMount mounts a volume into an init container "init", adding it.
func withInitMount(name string) stsOption {
	return func(s *appsv1.StatefulSet) {
		spec := &s.Spec.Template.Spec
		if len(spec.InitContainers) == 0 {
			spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox:1.36"}}
		}
		c := &spec.InitContainers[0]
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: name, MountPath: "/init/" + name})
	}
}

// withPodVolume adds an emptyDir pod volume.
func withPodVolume(name string) stsOption {
	return func(s *appsv1.StatefulSet) {
		s.Spec.Template.Spec.Volumes = append(s.Spec.Template.Spec.Volumes, corev1.Volume{
			Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}},
		})
	}
}

func withRetention(whenDeleted, whenScaled appsv1.PersistentVolumeClaimRetentionPolicyType) stsOption {
	return func(s *appsv1.StatefulSet) {
		s.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
			WhenDeleted: whenDeleted, WhenScaled: whenScaled,
		}
	}
}

// --- Services ---

type svcOption func(*corev1.Service)

// mkService returns a Service "nginx" in "default" selecting app=nginx. It
// gets a cluster IP unless headless() is given.
func mkService(opts ...svcOption) *corev1.Service {
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: testService, Namespace: testNamespace},
		Spec: corev1.ServiceSpec{
			ClusterIP: "10.0.12.7",
			Selector:  map[string]string{"app": "nginx"},
			Ports:     []corev1.ServicePort{{Name: "web", Port: 80}},
		},
	}
	for _, o := range opts {
		o(svc)
	}
	return svc
}

func headless() svcOption {
	return func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone }
}

func withClusterIP(ip string) svcOption {
	return func(s *corev1.Service) { s.Spec.ClusterIP = ip }
}

func withSelector(selector map[string]string) svcOption {
	return func(s *corev1.Service) { s.Spec.Selector = selector }
}

func publishNotReady() svcOption {
	return func(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = true }
}

func withSvcName(name string) svcOption {
	return func(s *corev1.Service) { s.Name = name }
}

// goodService is the Service every policy is happy with.
func goodService() *corev1.Service { return mkService(headless(), publishNotReady()) }

// --- StorageClasses ---

type classOption func(*storagev1.StorageClass)

// mkStorageClass returns a class as a careful admin writes it: reclaim Retain,
// WaitForFirstConsumer, expansion allowed; so that only the option under test
// produces a warning.
func mkStorageClass(name, provisioner string, opts ...classOption) *storagev1.StorageClass {
	retain := corev1.PersistentVolumeReclaimRetain
	wait := storagev1.VolumeBindingWaitForFirstConsumer
	expand := true
	sc := &storagev1.StorageClass{
		TypeMeta:             metav1.TypeMeta{APIVersion: "storage.k8s.io/v1", Kind: "StorageClass"},
		ObjectMeta:           metav1.ObjectMeta{Name: name},
		Provisioner:          provisioner,
		ReclaimPolicy:        &retain,
		VolumeBindingMode:    &wait,
		AllowVolumeExpansion: &expand,
	}
	for _, o := range opts {
		o(sc)
	}
	return sc
}

func withReclaim(p corev1.PersistentVolumeReclaimPolicy) classOption {
	return func(sc *storagev1.StorageClass) { sc.ReclaimPolicy = &p }
}

func withBinding(m storagev1.VolumeBindingMode) classOption {
	return func(sc *storagev1.StorageClass) { sc.VolumeBindingMode = &m }
}

func withExpansion(allow *bool) classOption {
	return func(sc *storagev1.StorageClass) { sc.AllowVolumeExpansion = allow }
}

// --- Namespaces ---

func mkNamespace(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
	}
}

// --- the fake cluster ---

// fakeLookup is a map-backed Lookup. err, when set, is what every method
// returns; the *Err fields fail one method only.
type fakeLookup struct {
	services     map[string]*corev1.Service // by namespace/name
	classes      map[string]*storagev1.StorageClass
	namespaces   map[string]*corev1.Namespace
	statefulSets map[string][]*appsv1.StatefulSet // by namespace
	err          error

	serviceErr, classErr, namespaceErr, statefulSetsErr error
}

var _ Lookup = (*fakeLookup)(nil)

func (f *fakeLookup) Service(namespace, name string) (*corev1.Service, error) {
	if err := firstErr(f.err, f.serviceErr); err != nil {
		return nil, err
	}
	return f.services[namespace+"/"+name], nil
}

func (f *fakeLookup) StorageClass(name string) (*storagev1.StorageClass, error) {
	if err := firstErr(f.err, f.classErr); err != nil {
		return nil, err
	}
	return f.classes[name], nil
}

func (f *fakeLookup) Namespace(name string) (*corev1.Namespace, error) {
	if err := firstErr(f.err, f.namespaceErr); err != nil {
		return nil, err
	}
	return f.namespaces[name], nil
}

func (f *fakeLookup) StatefulSets(namespace string) ([]*appsv1.StatefulSet, error) {
	if err := firstErr(f.err, f.statefulSetsErr); err != nil {
		return nil, err
	}
	return f.statefulSets[namespace], nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

type lookupOption func(*fakeLookup)

// mkCluster returns a fake cluster holding the namespace "default" (no
// labels), the headless Service nginx (publishing not-ready addresses) and a
// careful copy of each class the aks, eks and gke profiles map to, so that
// a default StatefulSet passes with no findings at all.
func mkCluster(opts ...lookupOption) *fakeLookup {
	f := &fakeLookup{
		services:     map[string]*corev1.Service{},
		classes:      map[string]*storagev1.StorageClass{},
		namespaces:   map[string]*corev1.Namespace{},
		statefulSets: map[string][]*appsv1.StatefulSet{},
	}
	withNamespaces(mkNamespace(testNamespace, nil))(f)
	withServices(goodService())(f)
	withClasses(
		mkStorageClass("managed-csi", "disk.csi.azure.com"),
		mkStorageClass("azurefile-csi", "file.csi.azure.com"),
		mkStorageClass("gp2", "kubernetes.io/aws-ebs"),
		mkStorageClass("efs-sc", "efs.csi.aws.com"),
		mkStorageClass("standard-rwo", "pd.csi.storage.gke.io"),
		mkStorageClass("standard-rwx", "filestore.csi.storage.gke.io"),
	)(f)
	for _, o := range opts {
		o(f)
	}
	return f
}

func withServices(svcs ...*corev1.Service) lookupOption {
	return func(f *fakeLookup) {
		for _, s := range svcs {
			f.services[s.Namespace+"/"+s.Name] = s
		}
	}
}

func withoutService(namespace, name string) lookupOption {
	return func(f *fakeLookup) { delete(f.services, namespace+"/"+name) }
}

func withClasses(classes ...*storagev1.StorageClass) lookupOption {
	return func(f *fakeLookup) {
		for _, c := range classes {
			f.classes[c.Name] = c
		}
	}
}

func withNamespaces(nss ...*corev1.Namespace) lookupOption {
	return func(f *fakeLookup) {
		for _, ns := range nss {
			f.namespaces[ns.Name] = ns
		}
	}
}

func withStatefulSets(stss ...*appsv1.StatefulSet) lookupOption {
	return func(f *fakeLookup) {
		for _, s := range stss {
			f.statefulSets[s.Namespace] = append(f.statefulSets[s.Namespace], s)
		}
	}
}

// --- engine and results ---

func mkEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	e, err := NewEngine(cfg)
	require.NoError(t, err)
	return e
}

func create(sts *appsv1.StatefulSet) StatefulSetRequest {
	return StatefulSetRequest{Operation: Create, Namespace: sts.Namespace, Object: sts}
}

func update(sts, old *appsv1.StatefulSet) StatefulSetRequest {
	return StatefulSetRequest{Operation: Update, Namespace: sts.Namespace, Object: sts, OldObject: old}
}

// admit runs what the cluster runs, mutation then validation, and returns the
// mutated object and the result.
func admit(t testing.TB, e *Engine, req StatefulSetRequest, lookup Lookup) (*appsv1.StatefulSet, Result) {
	t.Helper()
	mutated, _, err := e.MutateStatefulSet(req, lookup)
	require.NoError(t, err)
	req.Object = mutated
	result, err := e.ValidateStatefulSet(req, lookup)
	require.NoError(t, err)
	return mutated, result
}

// findingsOf returns the findings of one policy.
func findingsOf(r Result, id PolicyID) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Policy == id {
			out = append(out, f)
		}
	}
	return out
}

// summary renders findings as "mode field" lines, sorted, for comparing the
// shape of a result without its wording.
func summary(findings []Finding) []string {
	out := make([]string, 0, len(findings))
	for _, f := range findings {
		out = append(out, fmt.Sprintf("%s %s", f.Mode, f.Field))
	}
	sort.Strings(out)
	return out
}

// denial renders a finding the way the webhook's denial names the object.
func denial(namespace, name string, f Finding) string {
	return fmt.Sprintf("StatefulSet %s/%s: %s", namespace, name, f.String())
}

// requireMessagesReadable checks the contract on every finding: one line, and
// at most 200 characters once the object is named.
func requireMessagesReadable(t *testing.T, kind string, r Result) {
	t.Helper()
	for _, f := range r.Findings {
		line := fmt.Sprintf("%s %s/%s: %s", kind, testNamespace, testName, f.String())
		if kind == "StatefulSet" {
			line = denial(testNamespace, testName, f)
		}
		require.NotContains(t, f.Message, "\n", "finding message must be one line: %q", f.Message)
		require.LessOrEqualf(t, len(line), 200, "%d chars: %s", len(line), line)
		require.NotEmpty(t, strings.TrimSpace(f.Message))
	}
}

func modes(m ...corev1.PersistentVolumeAccessMode) []corev1.PersistentVolumeAccessMode { return m }

func ptr[T any](v T) *T { return &v }
