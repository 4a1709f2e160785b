package policies

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
)

// fuzzConfigs are the configs FuzzEngine picks from, so the fuzzer reaches
// every branch that depends on the config.
func fuzzConfigs() []Config {
	size := resource.MustParse("1Mi")
	return []Config{
		{},
		{Profile: "eks", DefaultMode: Warn},
		{Profile: "gke", Policies: PoliciesConfig{StorageClass: StorageClassConfig{
			Allowed: []string{"standard-rwo", "premium-rwx"}, AllowStaticBinding: true, DefaultSize: &size,
		}}},
		{DefaultMode: Audit, Policies: PoliciesConfig{SnapshotSchedule: SnapshotScheduleConfig{
			Mode: Enforce, LabelKey: "backup.example.com/tier", Schedules: []string{"gold", "silver"},
		}}},
		{Policies: PoliciesConfig{StorageClass: StorageClassConfig{Mode: Disabled}, HeadlessService: HeadlessServiceConfig{Mode: Warn}}},
	}
}

var fuzzOperations = []Operation{Create, Update, Delete, ""}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// fuzzReader turns fuzz bytes into choices, so that most inputs the fuzzer
// tries are StatefulSets the policies have something to say about (arbitrary
// JSON mostly fails to decode, or decodes to objects without templates).
type fuzzReader struct{ data []byte }

func (r *fuzzReader) pick(n int) int {
	if len(r.data) == 0 {
		return 0
	}
	v := int(r.data[0])
	r.data = r.data[1:]
	return v % n
}

var (
	fuzzNames     = []string{"data", "logs", "seed", "", "a/b", "x~y", "wal"}
	fuzzClasses   = []*string{nil, ptr(""), ptr("managed-csi"), ptr("azurefile-csi"), ptr("fast"), ptr("gp2"), ptr("standard-rwo"), ptr("efs-sc")}
	fuzzAccess    = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce, corev1.ReadWriteOncePod, corev1.ReadWriteMany, corev1.ReadOnlyMany, "Bogus"}
	fuzzVolume    = []*corev1.PersistentVolumeMode{nil, ptr(corev1.PersistentVolumeFilesystem), ptr(corev1.PersistentVolumeBlock), ptr(corev1.PersistentVolumeMode("Bogus"))}
	fuzzSchedules = []string{"daily", "hourly", "", "monthly", "gold", "0 * * * *"}
	fuzzKeys      = []string{scheduleKey, "backup.example.com/tier"}
)

// fuzzStatefulSet decodes a StatefulSet: JSON if data is a JSON object, else
// a StatefulSet built from the choices data makes. ok is false for JSON that
// does not decode.
func fuzzStatefulSet(data []byte) (sts *appsv1.StatefulSet, ok bool) {
	if len(data) > 0 && data[0] == '{' {
		sts = &appsv1.StatefulSet{}
		return sts, json.Unmarshal(data, sts) == nil
	}
	r := &fuzzReader{data}
	sts = mkStatefulSet(withLabels(nil))
	for n := r.pick(3); n > 0; n-- {
		withLabels(map[string]string{fuzzKeys[r.pick(len(fuzzKeys))]: fuzzSchedules[r.pick(len(fuzzSchedules))]})(sts)
	}
	sts.Spec.ServiceName = []string{testService, "", "other"}[r.pick(3)]
	if r.pick(4) == 0 {
		sts.Spec.Template.Labels = map[string]string{"app": "other"}
	}
	for n := r.pick(5); n > 0; n-- {
		var accessModes []corev1.PersistentVolumeAccessMode
		for m := r.pick(3); m > 0; m-- {
			accessModes = append(accessModes, fuzzAccess[r.pick(len(fuzzAccess))])
		}
		opts := []claimOption{func(c *corev1.PersistentVolumeClaim) {
			c.Spec.StorageClassName = fuzzClasses[r.pick(len(fuzzClasses))]
			c.Spec.VolumeMode = fuzzVolume[r.pick(len(fuzzVolume))]
		}}
		if r.pick(3) == 0 {
			opts = append(opts, withClaimLabels(map[string]string{fuzzKeys[r.pick(len(fuzzKeys))]: fuzzSchedules[r.pick(len(fuzzSchedules))]}))
		}
		withClaim(fuzzNames[r.pick(len(fuzzNames))], accessModes, opts...)(sts)
	}
	for n := r.pick(5); n > 0; n-- {
		name := fuzzNames[r.pick(len(fuzzNames))]
		switch r.pick(3) {
		case 0:
			withMount(name)(sts)
		case 1:
			withInitMount(name)(sts)
		default:
			withPodVolume(name)(sts)
		}
	}
	if r.pick(3) == 0 {
		policies := []appsv1.PersistentVolumeClaimRetentionPolicyType{appsv1.DeletePersistentVolumeClaimRetentionPolicyType, appsv1.RetainPersistentVolumeClaimRetentionPolicyType}
		withRetention(policies[r.pick(2)], policies[r.pick(2)])(sts)
	}
	return sts, true
}

// FuzzEngine throws arbitrary StatefulSets (and old objects, Services,
// operations, configs and namespace mode labels) at the engine. It must never
// panic, never modify its inputs, and mutation must be idempotent. In the
// re-apply scenario the old object is what CREATE made of the same manifest,
// and UPDATE must give back exactly the live claim templates.
func FuzzEngine(f *testing.F) {
	svc := mustJSON(f, goodService())
	for i, c := range engineCases(f) {
		old := []byte("null")
		if c.req.OldObject != nil {
			old = mustJSON(f, c.req.OldObject)
		}
		op := uint8(0)
		if c.req.Operation == Update {
			op = 1
		}
		f.Add(mustJSON(f, c.req.Object), old, svc, op, uint8(i), uint8(i), "", "nginx")
	}
	f.Add(mustJSON(f, troubled()), []byte("{}"), mustJSON(f, mkService()), uint8(1), uint8(3), uint8(2), "warn", "")
	f.Add(mustJSON(f, troubled()), mustJSON(f, troubled()), []byte("{}"), uint8(2), uint8(1), uint8(0), "off", "x")
	f.Add([]byte(`{"metadata":{"labels":{"stateguard.dev/snapshot-schedule":"daily"}},"spec":{"volumeClaimTemplates":[{"spec":{"storageClassName":""}},{"metadata":{"name":"a"}}],"template":{"spec":{"initContainers":[{"volumeMounts":[{"name":"a"},{"name":"b"},{"name":""}]}],"containers":[{"volumeMounts":[{"name":"b"}]}]}}}}`),
		[]byte(`{"spec":{"volumeClaimTemplates":[{"metadata":{"name":"x"}},{"metadata":{"name":"a","labels":{"stateguard.dev/snapshot-schedule":""}},"spec":{"storageClassName":"c"}},{"metadata":{"name":"b"}}]}}`),
		[]byte(`{"spec":{"clusterIP":"None"}}`), uint8(1), uint8(0), uint8(0), "", "")
	f.Add([]byte{1, 0, 1, 0, 3, 1, 2, 0, 0, 0, 1, 1, 0, 3, 0, 1, 4, 0, 1, 0, 2}, []byte{2, 1, 1, 0, 2, 0, 0, 1, 2, 1}, svc, uint8(1), uint8(0), uint8(2), "", "")
	f.Add([]byte{2, 0, 0, 0, 0, 4, 2, 0, 1, 0, 0, 0, 0, 2, 1, 3, 0, 0}, []byte{}, svc, uint8(0), uint8(3), uint8(1), "", "")

	configs := fuzzConfigs()
	engines := make([]*Engine, len(configs))
	for i, cfg := range configs {
		engines[i] = mkEngine(f, cfg)
	}

	f.Fuzz(func(t *testing.T, stsData, oldData, svcJSON []byte, opByte, cfgByte, scenario uint8, nsMode, selectorValue string) {
		sts, ok := fuzzStatefulSet(stsData)
		if !ok {
			return
		}
		e := engines[int(cfgByte)%len(engines)]
		op := fuzzOperations[int(opByte)%len(fuzzOperations)]

		svc := &corev1.Service{}
		if json.Unmarshal(svcJSON, svc) != nil {
			svc = nil
		}
		cluster := mkCluster(withStatefulSets(sts))
		nsLabels := map[string]string{}
		if nsMode != "" {
			nsLabels[ModeLabel] = nsMode
		}
		withNamespaces(mkNamespace(sts.Namespace, nsLabels))(cluster)
		if svc != nil {
			if svc.Name == "" {
				svc.Name, svc.Namespace = sts.Spec.ServiceName, sts.Namespace
			}
			withServices(svc)(cluster)
		}

		var old *appsv1.StatefulSet
		reapply := false
		switch scenario % 3 {
		case 0:
			if o, ok := fuzzStatefulSet(oldData); ok && len(oldData) > 0 {
				old = o
			}
		case 2:
			created, _, err := e.MutateStatefulSet(StatefulSetRequest{Operation: Create, Namespace: sts.Namespace, Object: sts.DeepCopy()}, cluster)
			require.NoError(t, err)
			old, op, reapply = roundTrip(t, created), Update, true
		}

		clusterBefore := deepCopyCluster(cluster)
		objBefore, oldBefore := sts.DeepCopy(), old.DeepCopy()

		req := StatefulSetRequest{Operation: op, Namespace: sts.Namespace, Object: sts, OldObject: old}
		mutated, ms, err := e.MutateStatefulSet(req, cluster)
		require.NoError(t, err)
		require.Equal(t, objBefore, sts, "MutateStatefulSet modified its input")
		require.Equal(t, oldBefore, old, "MutateStatefulSet modified the old object")
		if len(ms) == 0 {
			require.Same(t, sts, mutated)
		} else {
			requireMutationsPointAtTheirValues(t, mutated, ms)
		}
		if reapply {
			require.True(t, apiequality.Semantic.DeepEqual(old.Spec.VolumeClaimTemplates, mutated.Spec.VolumeClaimTemplates),
				"re-applied manifest's claim templates differ from the live object's:\nlive: %v\ngot:  %v", old.Spec.VolumeClaimTemplates, mutated.Spec.VolumeClaimTemplates)
		}

		again := req
		again.Object = mutated
		mutatedBefore := mutated.DeepCopy()
		twice, ms2, err := e.MutateStatefulSet(again, cluster)
		require.NoError(t, err)
		require.Empty(t, ms2, "mutation is not idempotent; first run: %v", ms)
		require.Same(t, mutated, twice)
		require.Equal(t, mutatedBefore, mutated)

		for _, r := range []StatefulSetRequest{req, again} {
			result, err := e.ValidateStatefulSet(r, cluster)
			require.NoError(t, err)
			for _, f := range result.Findings {
				assert.NotEqual(t, Disabled, f.Mode)
				assert.NotEmpty(t, f.Message)
			}
		}
		require.Equal(t, objBefore, sts, "ValidateStatefulSet modified its input")
		require.Equal(t, oldBefore, old, "ValidateStatefulSet modified the old object")

		if svc != nil {
			changed := svc.DeepCopy()
			changed.Spec.Selector = map[string]string{"app": selectorValue}
			svcBefore := svc.DeepCopy()
			for _, sr := range []ServiceRequest{
				{Operation: op, Namespace: svc.Namespace, Object: changed, OldObject: svc},
				{Operation: Delete, Namespace: svc.Namespace, OldObject: svc},
				{Operation: Create, Namespace: svc.Namespace, Object: svc},
			} {
				_, err := e.ValidateService(sr, cluster)
				require.NoError(t, err)
			}
			require.Equal(t, svcBefore, svc, "ValidateService modified its input")
		}
		require.Equal(t, clusterBefore, deepCopyCluster(cluster), "the lookup's objects were modified")
	})
}
