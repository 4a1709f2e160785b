package policies

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

func TestRegistry(t *testing.T) {
	ids := map[PolicyID]bool{}
	for _, p := range Registry() {
		ids[p.ID] = true
	}
	assert.Equal(t, map[PolicyID]bool{"headless-service": true, "storage-class": true, "snapshot-schedule": true}, ids)
	require.NoError(t, validateRegistry(Registry()))

	e := mkEngine(t, Config{})
	policies := e.Policies()
	require.Len(t, policies, 3)
	assert.Less(t, indexOf(policies, StorageClass), indexOf(policies, SnapshotSchedule),
		"storage-class adds templates for dangling mounts that snapshot-schedule then labels")
}

func indexOf(ids []PolicyID, id PolicyID) int {
	for i, x := range ids {
		if x == id {
			return i
		}
	}
	return -1
}

func TestValidateRegistry(t *testing.T) {
	tests := []struct {
		name    string
		reg     []Policy
		wantErr string
	}{
		{"empty", nil, ""},
		{"unique", []Policy{{ID: "a"}, {ID: "b"}}, ""},
		{"duplicate", []Policy{{ID: "a"}, {ID: "b"}, {ID: "a"}}, `policy "a" is registered twice`},
		{"duplicate of a built-in", append(Registry(), Policy{ID: StorageClass}), `policy "storage-class" is registered twice`},
		{"empty ID", []Policy{{ID: "a"}, {}}, "policy 1 has no ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateRegistry(tt.reg)
			if tt.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			assert.EqualError(t, err, tt.wantErr)
			_, err = newEngine(Config{}, tt.reg)
			assert.EqualError(t, err, tt.wantErr, "the engine refuses a bad registry")
		})
	}
}

func TestEngineIgnoresWhatItDoesNotReview(t *testing.T) {
	e := mkEngine(t, Config{})
	sts := troubled()
	for _, op := range []Operation{Delete, "CONNECT"} {
		result, err := e.ValidateStatefulSet(StatefulSetRequest{Operation: op, Namespace: testNamespace, Object: sts, OldObject: sts}, troubledCluster(nil))
		require.NoError(t, err)
		assert.Empty(t, result.Findings, op)
	}
	result, err := e.ValidateStatefulSet(StatefulSetRequest{Operation: Create, Namespace: testNamespace}, troubledCluster(nil))
	require.NoError(t, err)
	assert.Empty(t, result.Findings)
}

// engineCase is one request for the table-driven purity, idempotence and
// message tests: everything the engine reads.
type engineCase struct {
	name    string
	cfg     Config
	req     StatefulSetRequest
	cluster func() *fakeLookup
}

func engineCases(t testing.TB) []engineCase {
	created := func(cfg Config, sts *appsv1.StatefulSet) *appsv1.StatefulSet {
		mutated, _, err := mkEngine(t, cfg).MutateStatefulSet(create(sts), mkCluster())
		require.NoError(t, err)
		return roundTrip(t, mutated)
	}
	var cases []engineCase
	add := func(name string, cfg Config, req StatefulSetRequest, cluster func() *fakeLookup) {
		cases = append(cases, engineCase{name, cfg, req, cluster})
	}
	plain := func() *fakeLookup { return mkCluster() }
	for name, manifest := range manifests() {
		add("create/"+name, Config{}, create(manifest()), plain)
		add("create eks/"+name, Config{Profile: "eks"}, create(manifest()), plain)
		add("update re-apply/"+name, Config{}, update(manifest(), created(Config{}, manifest())), plain)
		add("update idempotent/"+name, Config{}, update(created(Config{}, manifest()), created(Config{}, manifest())), plain)
	}
	add("create troubled", Config{}, create(troubled()), func() *fakeLookup { return troubledCluster(nil) })
	add("create troubled, warn", Config{DefaultMode: Warn}, create(troubled()), func() *fakeLookup { return troubledCluster(nil) })
	add("update troubled", Config{}, update(troubled(), troubled()), func() *fakeLookup { return troubledCluster(nil) })
	add("update switching schedule", Config{}, update(mkStatefulSet(withSchedule("weekly"), withClaimTemplate("data")), created(Config{}, mkStatefulSet(withClaimTemplate("data")))), plain)
	add("update without old object", Config{}, StatefulSetRequest{Operation: Update, Namespace: testNamespace, Object: troubled()}, plain)
	add("update from an old object with more templates", Config{}, update(
		mkStatefulSet(withClaimTemplate("data"), withMount("a"), withMount("b")),
		roundTrip(t, mkStatefulSet(withClaimTemplate("data"), withClaimTemplate("a"), withClaimTemplate("b"), withClaimTemplate("c")))), plain)
	add("create with template labels and empty schedule", Config{}, create(mkStatefulSet(withSchedule(""),
		withClaim("data", nil, withClaimLabels(map[string]string{"x": "y"})), withInitMount("data"))), plain)
	add("create, custom label key", Config{Policies: PoliciesConfig{SnapshotSchedule: SnapshotScheduleConfig{LabelKey: "backup.example.com/tier"}}},
		create(mkStatefulSet(withLabels(map[string]string{"backup.example.com/tier": "daily"}), withClaimTemplate("data"), withMount("logs"))), plain)
	add("create, nothing to do", Config{}, create(mkStatefulSet()), plain)
	add("create in an exempt namespace", Config{}, StatefulSetRequest{Operation: Create, Namespace: "kube-system", Object: troubled()}, plain)
	return cases
}

func TestMutateIsPureAndIdempotent(t *testing.T) {
	for _, tt := range engineCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			e := mkEngine(t, tt.cfg)
			cluster := tt.cluster()
			clusterBefore := deepCopyCluster(cluster)
			obj, old := tt.req.Object.DeepCopy(), tt.req.OldObject.DeepCopy()

			mutated, ms, err := e.MutateStatefulSet(tt.req, cluster)
			require.NoError(t, err)
			assert.Equal(t, obj, tt.req.Object, "the request object was modified")
			assert.Equal(t, old, tt.req.OldObject, "the old object was modified")
			assert.Equal(t, clusterBefore, deepCopyCluster(cluster), "the lookup's objects were modified")
			if len(ms) == 0 {
				assert.Same(t, tt.req.Object, mutated, "no mutations: the object itself comes back")
			} else {
				assert.NotSame(t, tt.req.Object, mutated)
				requireMutationsPointAtTheirValues(t, mutated, ms)
			}

			again := tt.req
			again.Object = mutated
			twice, ms2, err := e.MutateStatefulSet(again, cluster)
			require.NoError(t, err)
			assert.Empty(t, ms2, "mutation is not idempotent")
			assert.Same(t, mutated, twice)

			// The same request gives the same answer.
			_, ms3, err := e.MutateStatefulSet(tt.req, cluster)
			require.NoError(t, err)
			assert.Equal(t, ms, ms3)
		})
	}
}

func TestValidateIsPure(t *testing.T) {
	for _, tt := range engineCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			e := mkEngine(t, tt.cfg)
			cluster := tt.cluster()
			clusterBefore := deepCopyCluster(cluster)
			obj, old := tt.req.Object.DeepCopy(), tt.req.OldObject.DeepCopy()

			first, err := e.ValidateStatefulSet(tt.req, cluster)
			require.NoError(t, err)
			assert.Equal(t, obj, tt.req.Object, "the request object was modified")
			assert.Equal(t, old, tt.req.OldObject, "the old object was modified")
			assert.Equal(t, clusterBefore, deepCopyCluster(cluster), "the lookup's objects were modified")

			second, err := e.ValidateStatefulSet(tt.req, cluster)
			require.NoError(t, err)
			assert.Equal(t, first, second, "validation is deterministic")
		})
	}

	t.Run("Service guard", func(t *testing.T) {
		e := mkEngine(t, Config{})
		cluster := mkCluster(withStatefulSets(mkStatefulSet()))
		clusterBefore := deepCopyCluster(cluster)
		oldSvc, newSvc := goodService(), mkService(headless(), withSelector(map[string]string{"app": "v2"}))
		oldCopy, newCopy := oldSvc.DeepCopy(), newSvc.DeepCopy()
		result, err := e.ValidateService(ServiceRequest{Operation: Update, Namespace: testNamespace, Object: newSvc, OldObject: oldSvc}, cluster)
		require.NoError(t, err)
		require.True(t, result.Denied())
		assert.Equal(t, oldCopy, oldSvc)
		assert.Equal(t, newCopy, newSvc)
		assert.Equal(t, clusterBefore, deepCopyCluster(cluster))
	})
}

func deepCopyCluster(f *fakeLookup) *fakeLookup {
	out := &fakeLookup{
		services:     map[string]*corev1.Service{},
		classes:      map[string]*storagev1.StorageClass{},
		namespaces:   map[string]*corev1.Namespace{},
		statefulSets: map[string][]*appsv1.StatefulSet{},
	}
	for k, v := range f.services {
		out.services[k] = v.DeepCopy()
	}
	for k, v := range f.classes {
		out.classes[k] = v.DeepCopy()
	}
	for k, v := range f.namespaces {
		out.namespaces[k] = v.DeepCopy()
	}
	for k, list := range f.statefulSets {
		for _, v := range list {
			out.statefulSets[k] = append(out.statefulSets[k], v.DeepCopy())
		}
	}
	return out
}

// TestMessagesFitOneLine provokes every finding the policies report, under
// realistic names, and checks the contract on denials and warnings: one line,
// at most 200 characters with the object named.
func TestMessagesFitOneLine(t *testing.T) {
	type check struct {
		cfg     Config
		req     StatefulSetRequest
		cluster *fakeLookup
	}
	longClass := mkStorageClass("azurefile-csi-premium", "file.csi.azure.com",
		withReclaim(corev1.PersistentVolumeReclaimDelete), withExpansion(nil))
	zonal := mkStorageClass("managed-csi-premium", "disk.csi.azure.com",
		withReclaim(corev1.PersistentVolumeReclaimDelete), withBinding(storagev1.VolumeBindingImmediate), withExpansion(ptr(false)))
	unknown := mkStorageClass("rook-ceph-block", "rook-ceph.rbd.csi.ceph.com")
	allowList := Config{Policies: PoliciesConfig{StorageClass: StorageClassConfig{Allowed: []string{"managed-csi", "managed-csi-premium", "azurefile-csi"}}}}
	everyClassProblem := mkStatefulSet(
		withClaim("data", modes(corev1.ReadWriteMany), withClass("managed-csi-premium")),
		withClaim("shared", modes(corev1.ReadWriteOncePod), withClass("azurefile-csi-premium"), withVolumeMode(corev1.PersistentVolumeBlock)),
		withClaim("static", modes(corev1.ReadWriteOnce), withClass("")),
		withClaim("missing", modes(corev1.ReadWriteOnce), withClass("fast-ssd")),
		withClaim("ceph", modes(corev1.ReadWriteOnce), withClass("rook-ceph-block")),
		withRetention(appsv1.DeletePersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType),
	)
	classCluster := func() *fakeLookup {
		return mkCluster(withClasses(longClass, zonal, unknown))
	}
	checks := []check{
		{Config{}, create(mkStatefulSet(withServiceName(""), withoutLabel(scheduleKey))), mkCluster()},
		{Config{}, create(mkStatefulSet(withSchedule("0 * * * *"))), mkCluster(withoutService(testNamespace, testService))},
		{Config{}, create(mkStatefulSet(withSchedule("monthly"))), mkCluster(withServices(mkService(withSelector(map[string]string{"app.kubernetes.io/name": "nginx", "app.kubernetes.io/instance": "web"}))))},
		{Config{}, create(mkStatefulSet()), mkCluster(withServices(mkService(withClusterIP(""), withSelector(nil))))},
		{Config{}, create(everyClassProblem), classCluster()},
		{allowList, create(everyClassProblem), classCluster()},
		{Config{}, update(everyClassProblem, everyClassProblem), classCluster()},
		{Config{}, update(mkStatefulSet(withoutLabel(scheduleKey)), mkStatefulSet()), mkCluster()},
		{Config{}, update(mkStatefulSet(withSchedule("hourly")), mkStatefulSet(withSchedule("weekly"))), mkCluster()},
		{Config{}, update(mkStatefulSet(withoutLabel(scheduleKey)), mkStatefulSet(withoutLabel(scheduleKey))), mkCluster()},
		{Config{}, update(mkStatefulSet(withServiceName("")), mkStatefulSet(withServiceName(""))), mkCluster()},
	}
	seen := map[string]bool{}
	for i, c := range checks {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			_, result := admit(t, mkEngine(t, c.cfg), c.req, c.cluster)
			require.NotEmpty(t, result.Findings)
			requireMessagesReadable(t, "StatefulSet", result)
			for _, f := range result.Findings {
				seen[f.Message] = true
			}
		})
	}
	// The Service guard, with several StatefulSets named.
	e := mkEngine(t, Config{})
	stss := withStatefulSets(mkStatefulSet(), mkStatefulSet(withName("postgres")), mkStatefulSet(withName("redis-cluster")))
	for _, req := range []ServiceRequest{
		{Operation: Delete, Namespace: testNamespace, OldObject: goodService()},
		{Operation: Update, Namespace: testNamespace, OldObject: goodService(), Object: mkService(headless(), withSelector(map[string]string{"app": "nginx-v2"}))},
	} {
		result, err := e.ValidateService(req, mkCluster(stss))
		require.NoError(t, err)
		require.Len(t, result.Findings, 1)
		line := fmt.Sprintf("Service %s/%s: %s", testNamespace, testService, result.Findings[0].String())
		assert.NotContains(t, line, "\n")
		assert.LessOrEqual(t, len(line), 200, line)
		seen[result.Findings[0].Message] = true
	}
	assert.GreaterOrEqual(t, len(seen), 25, "every kind of message is provoked: %v", seen)
}
