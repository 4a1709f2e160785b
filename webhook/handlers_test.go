package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"

	"github.com/stateguard/stateguard/policies"
)

// mapLookup is a fake cluster for handler tests.
type mapLookup struct {
	services     map[string]*corev1.Service
	classes      map[string]*storagev1.StorageClass
	namespaces   map[string]*corev1.Namespace
	statefulSets []*appsv1.StatefulSet
}

var _ policies.Lookup = (*mapLookup)(nil)

func (m *mapLookup) Service(ns, name string) (*corev1.Service, error) {
	return m.services[ns+"/"+name], nil
}
func (m *mapLookup) StorageClass(name string) (*storagev1.StorageClass, error) {
	return m.classes[name], nil
}
func (m *mapLookup) Namespace(name string) (*corev1.Namespace, error) { return m.namespaces[name], nil }
func (m *mapLookup) StatefulSets(ns string) ([]*appsv1.StatefulSet, error) {
	var out []*appsv1.StatefulSet
	for _, s := range m.statefulSets {
		if s.Namespace == ns {
			out = append(out, s)
		}
	}
	return out, nil
}

// countingRecorder keeps what the handlers recorded.
type countingRecorder struct {
	mu        sync.Mutex
	decisions []string
	mutations []string
	panics    int
}

func (c *countingRecorder) Decision(p policies.PolicyID, m policies.Mode, decision, op string, dry bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.decisions = append(c.decisions, strings.Join([]string{string(p), string(m), decision, op, map[bool]string{true: "dry", false: "real"}[dry]}, " "))
}
func (c *countingRecorder) Mutation(p policies.PolicyID) {
	c.mutations = append(c.mutations, string(p))
}
func (c *countingRecorder) Duration(string, time.Duration) {}
func (c *countingRecorder) Panic(string)                   { c.panics++ }

const serviceYAML = `apiVersion: v1
kind: Service
metadata: {name: db, namespace: prod}
spec: {clusterIP: None, publishNotReadyAddresses: true, selector: {app: db}}
`

const statefulSetYAML = `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
  namespace: prod
  labels: {stateguard.dev/snapshot-schedule: daily}
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: postgres:17, volumeMounts: [{name: data, mountPath: /data}]}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
`

func mustObject[T any](t testing.TB, y string) *T {
	t.Helper()
	obj := new(T)
	require.NoError(t, yaml.UnmarshalStrict([]byte(y), obj))
	return obj
}

func newHandlers(t testing.TB, cfg policies.Config, lookup *mapLookup) (*Handlers, *countingRecorder) {
	t.Helper()
	engine, err := policies.NewEngine(cfg)
	require.NoError(t, err)
	rec := &countingRecorder{}
	return &Handlers{Engine: engine, Recorder: rec, Lookup: func(context.Context) policies.Lookup { return lookup }}, rec
}

func retainClass(name, provisioner string) *storagev1.StorageClass {
	reclaim := corev1.PersistentVolumeReclaimRetain
	binding := storagev1.VolumeBindingWaitForFirstConsumer
	expand := true
	return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: provisioner,
		ReclaimPolicy: &reclaim, VolumeBindingMode: &binding, AllowVolumeExpansion: &expand}
}

func goodCluster(t testing.TB) *mapLookup {
	return &mapLookup{
		services: map[string]*corev1.Service{"prod/db": mustObject[corev1.Service](t, serviceYAML)},
		classes: map[string]*storagev1.StorageClass{
			"managed-csi":   retainClass("managed-csi", "disk.csi.azure.com"),
			"azurefile-csi": retainClass("azurefile-csi", "file.csi.azure.com"),
		},
		namespaces: map[string]*corev1.Namespace{"prod": {ObjectMeta: metav1.ObjectMeta{Name: "prod"}}},
	}
}

func review(t testing.TB, op admissionv1.Operation, kind metav1.GroupVersionKind, obj, old runtime.Object) admission.Request {
	t.Helper()
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "uid-1", Kind: kind, Operation: op, Namespace: "prod", Name: "db",
	}}
	if kind.Kind == "Service" {
		req.Resource = metav1.GroupVersionResource{Version: "v1", Resource: "services"}
	} else {
		req.Resource = metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}
	}
	if obj != nil {
		raw, err := json.Marshal(obj)
		require.NoError(t, err)
		req.Object.Raw = raw
	}
	if old != nil {
		raw, err := json.Marshal(old)
		require.NoError(t, err)
		req.OldObject.Raw = raw
	}
	return req
}

var (
	stsKind = metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}
	svcKind = metav1.GroupVersionKind{Version: "v1", Kind: "Service"}
)

func TestMutateStatefulSetPatchesOnCreateOnly(t *testing.T) {
	h, rec := newHandlers(t, policies.Config{}, goodCluster(t))
	sts := mustObject[appsv1.StatefulSet](t, statefulSetYAML)
	resp := h.ForPath()[MutateStatefulSetPath].Handle(context.Background(), review(t, admissionv1.Create, stsKind, sts, nil))
	require.True(t, resp.Allowed)
	var paths []string
	for _, p := range resp.Patches {
		paths = append(paths, p.Operation+" "+p.Path)
	}
	assert.Contains(t, paths, "add /spec/volumeClaimTemplates/0/spec/storageClassName")
	assert.Contains(t, paths, "add /spec/volumeClaimTemplates/0/metadata/labels")
	assert.ElementsMatch(t, []string{"storage-class", "snapshot-schedule"}, rec.mutations)

	// The same manifest re-applied over the mutated live object: the
	// injected values come back from the old object, nothing new is added.
	live := sts.DeepCopy()
	class := "managed-csi"
	live.Spec.VolumeClaimTemplates[0].Spec.StorageClassName = &class
	live.Spec.VolumeClaimTemplates[0].Labels = map[string]string{"stateguard.dev/snapshot-schedule": "daily"}
	resp = h.ForPath()[MutateStatefulSetPath].Handle(context.Background(), review(t, admissionv1.Update, stsKind, sts, live))
	require.True(t, resp.Allowed)
	require.NotEmpty(t, resp.Patches, "restores what CREATE injected")

	resp = h.ForPath()[MutateStatefulSetPath].Handle(context.Background(), review(t, admissionv1.Update, stsKind, live, live))
	require.True(t, resp.Allowed)
	assert.Empty(t, resp.Patches, "idempotent: nothing to change on the mutated object")
}

func TestValidateStatefulSetModes(t *testing.T) {
	bad := mustObject[appsv1.StatefulSet](t, strings.Replace(statefulSetYAML, "  labels: {stateguard.dev/snapshot-schedule: daily}\n", "", 1))
	tests := []struct {
		name      string
		nsLabels  map[string]string
		allowed   bool
		warnings  int
		audit     bool
		decisions []string
	}{
		{name: "enforce denies", allowed: false, decisions: []string{"snapshot-schedule enforce deny CREATE real"}},
		{name: "warn admits with a warning", nsLabels: map[string]string{"stateguard.dev/mode": "warn"}, allowed: true, warnings: 1,
			decisions: []string{"snapshot-schedule warn warn CREATE real"}},
		{name: "audit admits with an audit annotation", nsLabels: map[string]string{"stateguard.dev/mode": "audit"}, allowed: true, audit: true,
			decisions: []string{"snapshot-schedule audit audit CREATE real"}},
		{name: "disabled admits silently", nsLabels: map[string]string{"stateguard.dev/mode.snapshot-schedule": "disabled"}, allowed: true,
			decisions: []string{"snapshot-schedule disabled allow CREATE real"}},
		{name: "unknown mode fails closed and says so", nsLabels: map[string]string{"stateguard.dev/mode": "off"}, allowed: false, warnings: 1,
			decisions: []string{"snapshot-schedule enforce deny CREATE real"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cluster := goodCluster(t)
			cluster.namespaces["prod"].Labels = tt.nsLabels
			h, rec := newHandlers(t, policies.Config{}, cluster)
			resp := h.ForPath()[ValidateStatefulSetPath].Handle(context.Background(), review(t, admissionv1.Create, stsKind, bad, nil))
			assert.Equal(t, tt.allowed, resp.Allowed)
			assert.Len(t, resp.Warnings, tt.warnings)
			for _, w := range resp.Warnings {
				assert.NotContains(t, w, "Warning:", "kubectl adds the prefix itself")
			}
			assert.Equal(t, tt.audit, resp.AuditAnnotations["snapshot-schedule"] != "")
			for _, d := range tt.decisions {
				assert.Contains(t, rec.decisions, d)
			}
			assert.Len(t, rec.decisions, 3, "one decision per policy per request")
			if !tt.allowed {
				require.NotNil(t, resp.Result)
				assert.Equal(t, int32(http.StatusUnprocessableEntity), resp.Result.Code)
				require.NotNil(t, resp.Result.Details)
				require.NotEmpty(t, resp.Result.Details.Causes)
				assert.Equal(t, "metadata.labels", resp.Result.Details.Causes[0].Field)
				assert.LessOrEqual(t, len(resp.Result.Message), 200, resp.Result.Message)
				assert.NotContains(t, resp.Result.Message, "\n")
			}
		})
	}
}

func TestServiceGuard(t *testing.T) {
	cluster := goodCluster(t)
	cluster.statefulSets = []*appsv1.StatefulSet{mustObject[appsv1.StatefulSet](t, statefulSetYAML)}
	h, _ := newHandlers(t, policies.Config{}, cluster)
	svc := mustObject[corev1.Service](t, serviceYAML)

	resp := h.ForPath()[ValidateServicePath].Handle(context.Background(), review(t, admissionv1.Delete, svcKind, nil, svc))
	require.False(t, resp.Allowed)
	assert.Equal(t, int32(http.StatusForbidden), resp.Result.Code)
	assert.Contains(t, resp.Result.Message, `services "db" is forbidden`)
	assert.Contains(t, resp.Result.Message, "db")

	moved := svc.DeepCopy()
	moved.Spec.Selector = map[string]string{"app": "other"}
	resp = h.ForPath()[ValidateServicePath].Handle(context.Background(), review(t, admissionv1.Update, svcKind, moved, svc))
	assert.False(t, resp.Allowed)

	cluster.statefulSets = nil
	resp = h.ForPath()[ValidateServicePath].Handle(context.Background(), review(t, admissionv1.Delete, svcKind, nil, svc))
	assert.True(t, resp.Allowed, "no StatefulSet names it")
}

func TestHostileRequests(t *testing.T) {
	h, _ := newHandlers(t, policies.Config{}, goodCluster(t))
	tests := []struct {
		name string
		path string
		req  admission.Request
	}{
		{name: "wrong kind for the path", path: ValidateStatefulSetPath, req: review(t, admissionv1.Create, svcKind, mustObject[corev1.Service](t, serviceYAML), nil)},
		{name: "service path given a StatefulSet", path: ValidateServicePath, req: review(t, admissionv1.Update, stsKind, mustObject[appsv1.StatefulSet](t, statefulSetYAML), nil)},
		{name: "object is not JSON", path: MutateStatefulSetPath, req: func() admission.Request {
			r := review(t, admissionv1.Create, stsKind, nil, nil)
			r.Object.Raw = []byte("{not json")
			return r
		}()},
		{name: "object of the wrong shape", path: ValidateStatefulSetPath, req: func() admission.Request {
			r := review(t, admissionv1.Create, stsKind, nil, nil)
			r.Object.Raw = []byte(`{"spec": {"replicas": "three"}}`)
			return r
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := h.ForPath()[tt.path].Handle(context.Background(), tt.req)
			assert.False(t, resp.Allowed)
			require.NotNil(t, resp.Result)
			assert.Equal(t, int32(http.StatusBadRequest), resp.Result.Code)
		})
	}
	// A StatefulSet DELETE or a null object is not ours to judge.
	resp := h.ForPath()[ValidateStatefulSetPath].Handle(context.Background(), review(t, admissionv1.Delete, stsKind, nil, nil))
	assert.True(t, resp.Allowed)
}

// panicLookup panics on every call, standing in for a bug in a policy.
type panicLookup struct{ mapLookup }

func (*panicLookup) Namespace(string) (*corev1.Namespace, error) { panic("boom") }

func TestPanicBecomesInternalErrorDenial(t *testing.T) {
	h, rec := newHandlers(t, policies.Config{}, nil)
	h.Lookup = func(context.Context) policies.Lookup { return &panicLookup{} }
	resp := h.ForPath()[ValidateStatefulSetPath].Handle(context.Background(), review(t, admissionv1.Create, stsKind, mustObject[appsv1.StatefulSet](t, statefulSetYAML), nil))
	assert.False(t, resp.Allowed)
	assert.Equal(t, int32(http.StatusInternalServerError), resp.Result.Code)
	assert.Contains(t, resp.Result.Message, "internal error")
	assert.Equal(t, 1, rec.panics)
}

func TestDryRunIsLabelled(t *testing.T) {
	h, rec := newHandlers(t, policies.Config{}, goodCluster(t))
	req := review(t, admissionv1.Create, stsKind, mustObject[appsv1.StatefulSet](t, statefulSetYAML), nil)
	dry := true
	req.DryRun = &dry
	resp := h.ForPath()[ValidateStatefulSetPath].Handle(context.Background(), req)
	assert.True(t, resp.Allowed, "%v", resp.Result)
	assert.Contains(t, rec.decisions, "headless-service enforce allow CREATE dry")
}
