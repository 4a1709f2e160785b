// Package reviews builds the AdmissionReview requests that the webhook's
// performance measurements send: the in-process benchmarks (webhook), the
// HTTPS load generator (hack/loadgen) and the load tests (test/load) all use
// these bytes, so their figures describe the same work.
//
// The objects are shaped the way the API server hands them to a webhook after
// `kubectl apply` of a typical stateful app: a headless Service and a
// StatefulSet with two claim templates, the snapshot-schedule label present
// and no storageClassName, defaulted by the API server, with the
// last-applied-configuration annotation and managedFields kubectl's
// client-side apply leaves. The validating webhook sees the StatefulSet as the
// mutating webhook left it (classes and template labels filled).
package reviews

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Webhook paths (the same as webhook.*Path; repeated so that this package
// does not import the webhook it measures).
const (
	MutateStatefulSetPath   = "/mutate-apps-v1-statefulset"
	ValidateStatefulSetPath = "/validate-apps-v1-statefulset"
	ValidateServicePath     = "/validate-v1-service"
)

const (
	// ScheduleLabel is the default snapshot-schedule label key.
	ScheduleLabel = "stateguard.dev/snapshot-schedule"
	// Schedule is the (known) schedule the StatefulSet names.
	Schedule = "daily"
	// DiskClass is the class the default (aks) profile maps ReadWriteOnce to.
	DiskClass = "managed-csi"
	// UnusedService is a headless Service that no StatefulSet names.
	UnusedService = "cache"
)

// Review is one AdmissionReview request and what the webhook must answer.
type Review struct {
	// Name identifies the case, e.g. "mutate-statefulset/create".
	Name string
	// Path is the webhook path the review is posted to.
	Path string
	// UID is the request UID; the response must echo it.
	UID string
	// Body is the AdmissionReview JSON.
	Body []byte
	// Allowed is the expected verdict.
	Allowed bool
	// Patch says whether the response carries a JSON patch.
	Patch bool
	// Warnings says whether the response carries admission warnings.
	Warnings bool
}

// Service returns a headless Service named name selecting app=name, as the
// API server stores it (defaulted, with managedFields).
func Service(namespace, name string) *corev1.Service {
	svc := &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: namespace,
			Labels: map[string]string{"app": name, "app.kubernetes.io/part-of": "shop"},
		},
		Spec: corev1.ServiceSpec{
			ClusterIP:                corev1.ClusterIPNone,
			Selector:                 map[string]string{"app": name},
			PublishNotReadyAddresses: true,
			Ports:                    []corev1.ServicePort{{Name: "sql", Port: 5432, TargetPort: intstr.FromString("sql")}},
		},
	}
	return svc
}

// storedService is Service as the API server returns it from storage.
func storedService(namespace, name string, lastApplied bool) *corev1.Service {
	svc := Service(namespace, name)
	applied := mustJSON(svc)
	if lastApplied {
		svc.Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": string(applied) + "\n"}
	}
	svc.UID = types.UID(fmt.Sprintf("5b2f4c1e-0000-4000-8000-%012x", len(name)))
	svc.ResourceVersion = "48213"
	svc.CreationTimestamp = metav1.Date(2025, 11, 20, 9, 30, 0, 0, timeUTC)
	svc.ManagedFields = managedFields("kubectl-client-side-apply", svc.CreationTimestamp, applied)
	policy := corev1.IPFamilyPolicySingleStack
	svc.Spec.ClusterIPs = []string{corev1.ClusterIPNone}
	svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	svc.Spec.IPFamilyPolicy = &policy
	svc.Spec.Type = corev1.ServiceTypeClusterIP
	svc.Spec.SessionAffinity = corev1.ServiceAffinityNone
	internal := corev1.ServiceInternalTrafficPolicyCluster
	svc.Spec.InternalTrafficPolicy = &internal
	svc.Spec.Ports[0].Protocol = corev1.ProtocolTCP
	return svc
}

// StatefulSet returns the StatefulSet a user applies: serviceName name, pod
// labels app=name, the snapshot-schedule label, two claim templates (data and
// wal, ReadWriteOnce) without a storageClassName.
func StatefulSet(namespace, name string) *appsv1.StatefulSet {
	replicas := int32(3)
	return &appsv1.StatefulSet{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: namespace,
			Labels: map[string]string{"app": name, "app.kubernetes.io/part-of": "shop", ScheduleLabel: Schedule},
		},
		Spec: appsv1.StatefulSetSpec{
			ServiceName: name,
			Replicas:    &replicas,
			Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name, "app.kubernetes.io/part-of": "shop"}},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name:  "postgres",
						Image: "docker.io/library/postgres:17.2",
						Ports: []corev1.ContainerPort{{Name: "sql", ContainerPort: 5432}},
						Env: []corev1.EnvVar{
							{Name: "PGDATA", Value: "/var/lib/postgresql/data/pgdata"},
							{Name: "POSTGRES_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
								LocalObjectReference: corev1.LocalObjectReference{Name: name + "-credentials"}, Key: "password",
							}}},
							{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
						},
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("1Gi")},
							Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
						},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "data", MountPath: "/var/lib/postgresql/data"},
							{Name: "wal", MountPath: "/var/lib/postgresql/wal"},
						},
						ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
							Exec: &corev1.ExecAction{Command: []string{"pg_isready", "-U", "postgres"}},
						}, PeriodSeconds: 5},
					}},
				},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{claimTemplate("data", "20Gi"), claimTemplate("wal", "5Gi")},
		},
	}
}

func claimTemplate(name, size string) corev1.PersistentVolumeClaim {
	return corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
		},
	}
}

// admittedStatefulSet is the StatefulSet as the API server hands it to the
// mutating webhook on CREATE: defaulted, annotated and with managedFields.
func admittedStatefulSet(namespace, name string, lastApplied bool) *appsv1.StatefulSet {
	sts := StatefulSet(namespace, name)
	applied := mustJSON(sts)
	if lastApplied {
		sts.Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": string(applied) + "\n"}
	}
	sts.ManagedFields = managedFields("kubectl-client-side-apply", metav1.Date(2025, 11, 20, 9, 30, 1, 0, timeUTC), applied)
	defaultStatefulSet(sts)
	return sts
}

// mutatedStatefulSet is admittedStatefulSet after stateguard's mutation, as
// the validating webhook sees it on CREATE (the API server has set the UID
// and creation timestamp by then).
func mutatedStatefulSet(namespace, name string, lastApplied bool) *appsv1.StatefulSet {
	sts := admittedStatefulSet(namespace, name, lastApplied)
	for i := range sts.Spec.VolumeClaimTemplates {
		class := DiskClass
		t := &sts.Spec.VolumeClaimTemplates[i]
		t.Spec.StorageClassName = &class
		t.Labels = map[string]string{ScheduleLabel: Schedule}
	}
	sts.UID = "0c9d3f5a-1b7e-4c2d-9a8f-2e6b4d1c7a90"
	sts.Generation = 1
	sts.CreationTimestamp = metav1.Date(2025, 11, 20, 9, 30, 1, 0, timeUTC)
	return sts
}

// storedStatefulSet is mutatedStatefulSet as stored and later read back.
func storedStatefulSet(namespace, name string, lastApplied bool) *appsv1.StatefulSet {
	sts := mutatedStatefulSet(namespace, name, lastApplied)
	sts.ResourceVersion = "48250"
	sts.Status = appsv1.StatefulSetStatus{
		ObservedGeneration: 1, Replicas: 3, ReadyReplicas: 3, CurrentReplicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3,
		CurrentRevision: name + "-7c9b6d8f4", UpdateRevision: name + "-7c9b6d8f4", CollisionCount: new(int32),
	}
	return sts
}

// defaultStatefulSet applies the API server's defaults for apps/v1
// StatefulSets, their pod templates and claim templates.
func defaultStatefulSet(sts *appsv1.StatefulSet) {
	s := &sts.Spec
	s.PodManagementPolicy = appsv1.OrderedReadyPodManagement
	s.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{
		Type:          appsv1.RollingUpdateStatefulSetStrategyType,
		RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: new(int32)},
	}
	history := int32(10)
	s.RevisionHistoryLimit = &history
	s.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
		WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
		WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
	}
	p := &s.Template.Spec
	grace := int64(30)
	p.RestartPolicy = corev1.RestartPolicyAlways
	p.TerminationGracePeriodSeconds = &grace
	p.DNSPolicy = corev1.DNSClusterFirst
	p.SecurityContext = &corev1.PodSecurityContext{}
	p.SchedulerName = corev1.DefaultSchedulerName
	for i := range p.Containers {
		c := &p.Containers[i]
		c.TerminationMessagePath = corev1.TerminationMessagePathDefault
		c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
		c.ImagePullPolicy = corev1.PullIfNotPresent
		for j := range c.Ports {
			c.Ports[j].Protocol = corev1.ProtocolTCP
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
				e.ValueFrom.FieldRef.APIVersion = "v1"
			}
		}
		if pr := c.ReadinessProbe; pr != nil {
			pr.TimeoutSeconds, pr.SuccessThreshold, pr.FailureThreshold = 1, 1, 3
			if pr.PeriodSeconds == 0 {
				pr.PeriodSeconds = 10
			}
		}
	}
	fs := corev1.PersistentVolumeFilesystem
	for i := range s.VolumeClaimTemplates {
		t := &s.VolumeClaimTemplates[i]
		t.APIVersion, t.Kind = "v1", "PersistentVolumeClaim"
		t.Spec.VolumeMode = &fs
		t.Status.Phase = corev1.ClaimPending
	}
}

var timeUTC = time.UTC

// managedFields builds the managedFields entry a manager's Update leaves:
// fieldsV1 lists every field of the applied object.
func managedFields(manager string, at metav1.Time, applied []byte) []metav1.ManagedFieldsEntry {
	var obj map[string]any
	if err := json.Unmarshal(applied, &obj); err != nil {
		panic(err)
	}
	delete(obj, "apiVersion")
	delete(obj, "kind")
	if md, ok := obj["metadata"].(map[string]any); ok {
		delete(md, "name")
		delete(md, "namespace")
		md["annotations"] = map[string]any{"kubectl.kubernetes.io/last-applied-configuration": ""}
	}
	return []metav1.ManagedFieldsEntry{{
		Manager: manager, Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "apps/v1",
		Time: &at, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: mustJSON(fieldSet(obj))},
	}}
}

// fieldSet turns an object into the fieldsV1 set notation: f:<field> for
// struct and map fields, k:{"name":...} for keyed list items.
func fieldSet(v any) map[string]any {
	out := map[string]any{}
	switch v := v.(type) {
	case map[string]any:
		for k, val := range v {
			out["f:"+k] = fieldChild(val)
		}
	}
	return out
}

func fieldChild(v any) map[string]any {
	switch v := v.(type) {
	case map[string]any:
		m := fieldSet(v)
		m["."] = map[string]any{}
		return m
	case []any:
		m := map[string]any{}
		for _, item := range v {
			obj, ok := item.(map[string]any)
			if !ok {
				return map[string]any{}
			}
			keys := make([]string, 0, len(obj))
			for k := range obj {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			key := "name"
			if _, ok := obj["name"]; !ok {
				key = keys[0]
			}
			id := map[string]any{key: obj[key]}
			if key == "containerPort" {
				id["protocol"] = "TCP"
			}
			child := fieldSet(obj)
			child["."] = map[string]any{}
			m["k:"+string(mustJSON(id))] = child
		}
		return m
	}
	return map[string]any{}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

var (
	statefulSetGVK = metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}
	statefulSetGVR = metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}
	serviceGVK     = metav1.GroupVersionKind{Version: "v1", Kind: "Service"}
	serviceGVR     = metav1.GroupVersionResource{Version: "v1", Resource: "services"}
)

func review(uid string, op admissionv1.Operation, gvk metav1.GroupVersionKind, gvr metav1.GroupVersionResource, namespace, name string, object, oldObject runtime.Object, options runtime.Object) []byte {
	dryRun := false
	req := &admissionv1.AdmissionRequest{
		UID: types.UID(uid), Kind: gvk, Resource: gvr, RequestKind: &gvk, RequestResource: &gvr,
		Name: name, Namespace: namespace, Operation: op,
		UserInfo: authenticationv1.UserInfo{
			Username: "kubernetes-admin", Groups: []string{"kubeadm:cluster-admins", "system:authenticated"},
		},
		DryRun: &dryRun,
	}
	if object != nil {
		req.Object = runtime.RawExtension{Raw: mustJSON(object)}
	}
	if oldObject != nil {
		req.OldObject = runtime.RawExtension{Raw: mustJSON(oldObject)}
	}
	if options != nil {
		req.Options = runtime.RawExtension{Raw: mustJSON(options)}
	}
	ar := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  req,
	}
	return mustJSON(ar)
}

func createOptions() *metav1.CreateOptions {
	return &metav1.CreateOptions{
		TypeMeta:     metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "CreateOptions"},
		FieldManager: "kubectl-client-side-apply", FieldValidation: "Strict",
	}
}

func updateOptions(manager string) *metav1.UpdateOptions {
	return &metav1.UpdateOptions{
		TypeMeta:     metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "UpdateOptions"},
		FieldManager: manager,
	}
}

// All returns every review for a StatefulSet and headless Service named name
// in namespace, written with `kubectl apply` (so the objects carry the
// last-applied-configuration annotation). For the Service reviews to be
// decided as expected, the cluster (or fake lookup) must hold the objects
// Cluster returns.
func All(namespace, name string) []Review { return all(namespace, name, true) }

// AllWithoutLastApplied returns All's reviews for objects written without
// client-side apply (kubectl create, server-side apply, controllers): the
// same objects without the last-applied-configuration annotation, about 30%
// smaller.
func AllWithoutLastApplied(namespace, name string) []Review { return all(namespace, name, false) }

func all(namespace, name string, lastApplied bool) []Review {
	admitted := admittedStatefulSet(namespace, name, lastApplied)
	mutated := mutatedStatefulSet(namespace, name, lastApplied)
	stored := storedStatefulSet(namespace, name, lastApplied)
	scaled := stored.DeepCopy()
	replicas := int32(5)
	scaled.Spec.Replicas = &replicas
	scaled.Generation = 2
	deleteOpts := &metav1.DeleteOptions{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "DeleteOptions"}}

	return []Review{
		{
			Name: "validate-statefulset/create", Path: ValidateStatefulSetPath, UID: "8d3c0b1e-7a4f-4e5b-9c2d-000000000001",
			Body:    review("8d3c0b1e-7a4f-4e5b-9c2d-000000000001", admissionv1.Create, statefulSetGVK, statefulSetGVR, namespace, name, admitted, nil, createOptions()),
			Allowed: true,
		},
		{
			// What the API server actually sends after the mutating webhook:
			// the class is filled, so it is looked up and its settings warned about.
			Name: "validate-statefulset/create-mutated", Path: ValidateStatefulSetPath, UID: "8d3c0b1e-7a4f-4e5b-9c2d-000000000002",
			Body:    review("8d3c0b1e-7a4f-4e5b-9c2d-000000000002", admissionv1.Create, statefulSetGVK, statefulSetGVR, namespace, name, mutated, nil, createOptions()),
			Allowed: true, Warnings: true,
		},
		{
			Name: "mutate-statefulset/create", Path: MutateStatefulSetPath, UID: "8d3c0b1e-7a4f-4e5b-9c2d-000000000003",
			Body:    review("8d3c0b1e-7a4f-4e5b-9c2d-000000000003", admissionv1.Create, statefulSetGVK, statefulSetGVR, namespace, name, admitted, nil, createOptions()),
			Allowed: true, Patch: true,
		},
		{
			// `kubectl scale`: nothing for the webhook to change.
			Name: "mutate-statefulset/update-unchanged", Path: MutateStatefulSetPath, UID: "8d3c0b1e-7a4f-4e5b-9c2d-000000000004",
			Body:    review("8d3c0b1e-7a4f-4e5b-9c2d-000000000004", admissionv1.Update, statefulSetGVK, statefulSetGVR, namespace, name, scaled, stored, updateOptions("kubectl")),
			Allowed: true,
		},
		{
			// Deleting the Service the StatefulSet names: denied.
			Name: "validate-service/delete-in-use", Path: ValidateServicePath, UID: "8d3c0b1e-7a4f-4e5b-9c2d-000000000005",
			Body:    review("8d3c0b1e-7a4f-4e5b-9c2d-000000000005", admissionv1.Delete, serviceGVK, serviceGVR, namespace, name, nil, storedService(namespace, name, lastApplied), deleteOpts),
			Allowed: false,
		},
		{
			Name: "validate-service/delete-unused", Path: ValidateServicePath, UID: "8d3c0b1e-7a4f-4e5b-9c2d-000000000006",
			Body:    review("8d3c0b1e-7a4f-4e5b-9c2d-000000000006", admissionv1.Delete, serviceGVK, serviceGVR, namespace, UnusedService, nil, storedService(namespace, UnusedService, lastApplied), deleteOpts),
			Allowed: true,
		},
	}
}

// Find returns the review named name from All, or an error listing the names.
func Find(all []Review, name string) (Review, error) {
	var names []string
	for _, r := range all {
		if r.Name == name {
			return r, nil
		}
		names = append(names, r.Name)
	}
	return Review{}, fmt.Errorf("no review %q (have %s)", name, strings.Join(names, ", "))
}

// Cluster returns the objects the reviews expect to find: the headless
// Services (name and UnusedService) and the StatefulSet name, as stored.
func Cluster(namespace, name string) (services []*corev1.Service, statefulSets []*appsv1.StatefulSet) {
	return []*corev1.Service{storedService(namespace, name, true), storedService(namespace, UnusedService, true)},
		[]*appsv1.StatefulSet{storedStatefulSet(namespace, name, true)}
}
