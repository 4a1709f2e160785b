package policies

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

func TestParseMode(t *testing.T) {
	for _, m := range []string{"enforce", "warn", "audit", "disabled"} {
		got, err := ParseMode(m)
		require.NoError(t, err)
		assert.Equal(t, Mode(m), got)
	}
	for _, m := range []string{"off", "Off", "false", "Enforce", "", "none", "dry-run"} {
		_, err := ParseMode(m)
		assert.Error(t, err, "%q must not parse", m)
	}
}

func TestResolveMode(t *testing.T) {
	perPolicy := ModeLabelPrefix + string(StorageClass)
	tests := []struct {
		name        string
		cfg         Config
		labels      map[string]string
		want        Mode
		wantWarning string
	}{{
		name: "nothing set: enforce",
		want: Enforce,
	}, {
		name: "config default",
		cfg:  Config{DefaultMode: Audit},
		want: Audit,
	}, {
		name: "config per-policy beats config default",
		cfg:  Config{DefaultMode: Audit, Policies: PoliciesConfig{StorageClass: StorageClassConfig{Mode: Warn}}},
		want: Warn,
	}, {
		name: "another policy's config mode does not apply",
		cfg:  Config{DefaultMode: Audit, Policies: PoliciesConfig{HeadlessService: HeadlessServiceConfig{Mode: Disabled}}},
		want: Audit,
	}, {
		name:   "namespace-wide label beats config per-policy",
		cfg:    Config{Policies: PoliciesConfig{StorageClass: StorageClassConfig{Mode: Warn}}},
		labels: map[string]string{ModeLabel: "audit"},
		want:   Audit,
	}, {
		name:   "namespace per-policy label beats namespace-wide label",
		cfg:    Config{Policies: PoliciesConfig{StorageClass: StorageClassConfig{Mode: Warn}}},
		labels: map[string]string{ModeLabel: "audit", perPolicy: "disabled"},
		want:   Disabled,
	}, {
		name:   "namespace label can tighten the config",
		cfg:    Config{DefaultMode: Disabled},
		labels: map[string]string{perPolicy: "enforce"},
		want:   Enforce,
	}, {
		name:   "another policy's namespace label does not apply",
		cfg:    Config{DefaultMode: Audit},
		labels: map[string]string{ModeLabelPrefix + string(HeadlessService): "disabled"},
		want:   Audit,
	}, {
		name:        `unknown per-policy value fails closed, even when the namespace-wide label is valid`,
		cfg:         Config{DefaultMode: Disabled},
		labels:      map[string]string{perPolicy: "off", ModeLabel: "warn"},
		want:        Enforce,
		wantWarning: `namespace label stateguard.dev/mode.storage-class="off" is not a mode (want one of enforce, warn, audit, disabled); enforcing`,
	}, {
		name:        "unknown namespace-wide value fails closed",
		cfg:         Config{DefaultMode: Audit},
		labels:      map[string]string{ModeLabel: "Warn"},
		want:        Enforce,
		wantWarning: `namespace label stateguard.dev/mode="Warn" is not a mode`,
	}, {
		name:        "empty value is unknown",
		cfg:         Config{DefaultMode: Audit},
		labels:      map[string]string{ModeLabel: ""},
		want:        Enforce,
		wantWarning: `stateguard.dev/mode=""`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg.Complete()
			got, warning := cfg.ResolveMode(StorageClass, tt.labels)
			assert.Equal(t, tt.want, got)
			if tt.wantWarning == "" {
				assert.Empty(t, warning)
			} else {
				assert.Contains(t, warning, tt.wantWarning)
			}
		})
	}
}

// labelled returns the fake cluster with the default namespace labelled.
func labelled(labels map[string]string) *fakeLookup {
	return mkCluster(withNamespaces(mkNamespace(testNamespace, labels)))
}

// troubled is a StatefulSet every policy has something to say about: an
// unknown schedule (violation), a disk class asked for RWX (violation), a
// retention policy that deletes (advisory), a Service lacking
// publishNotReadyAddresses (advisory, with troubledCluster), and a template
// without a class plus a dangling mount (mutations).
func troubled() *appsv1.StatefulSet {
	return mkStatefulSet(withSchedule("monthly"),
		withClaim("shared", modes(corev1.ReadWriteMany), withClass("managed-csi")),
		withClaimTemplate("data", corev1.ReadWriteOnce), withMount("logs"),
		withRetention(appsv1.DeletePersistentVolumeClaimRetentionPolicyType, appsv1.RetainPersistentVolumeClaimRetentionPolicyType),
	)
}

func troubledCluster(labels map[string]string) *fakeLookup {
	c := labelled(labels)
	withServices(mkService(headless()))(c)
	return c
}

func TestModesResolveFindings(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		labels map[string]string
		// want maps each policy to the modes of its findings, sorted.
		want       map[PolicyID][]Mode
		wantDenied bool
	}{{
		name: "enforce: violations deny, advisories only warn",
		want: map[PolicyID][]Mode{
			HeadlessService:  {Warn},
			StorageClass:     {Enforce, Warn},
			SnapshotSchedule: {Enforce},
		},
		wantDenied: true,
	}, {
		name:   "warn from the namespace",
		labels: map[string]string{ModeLabel: "warn"},
		want: map[PolicyID][]Mode{
			HeadlessService:  {Warn},
			StorageClass:     {Warn, Warn},
			SnapshotSchedule: {Warn},
		},
	}, {
		name:   "audit from the namespace: advisories are audited too",
		labels: map[string]string{ModeLabel: "audit"},
		want: map[PolicyID][]Mode{
			HeadlessService:  {Audit},
			StorageClass:     {Audit, Audit},
			SnapshotSchedule: {Audit},
		},
	}, {
		name:   "one policy audited by its own label, the rest enforced",
		labels: map[string]string{ModeLabelPrefix + string(SnapshotSchedule): "audit"},
		want: map[PolicyID][]Mode{
			HeadlessService:  {Warn},
			StorageClass:     {Enforce, Warn},
			SnapshotSchedule: {Audit},
		},
		wantDenied: true,
	}, {
		name: "config modes per policy",
		cfg: Config{DefaultMode: Audit, Policies: PoliciesConfig{
			StorageClass: StorageClassConfig{Mode: Warn}, SnapshotSchedule: SnapshotScheduleConfig{Mode: Disabled},
		}},
		want: map[PolicyID][]Mode{
			HeadlessService: {Audit},
			StorageClass:    {Warn, Warn},
		},
	}, {
		name:   "disabled in the namespace",
		cfg:    Config{DefaultMode: Enforce},
		labels: map[string]string{ModeLabel: "disabled"},
		want:   map[PolicyID][]Mode{},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mkEngine(t, tt.cfg)
			_, result := admit(t, e, create(troubled()), troubledCluster(tt.labels))
			got := map[PolicyID][]Mode{}
			for _, f := range result.Findings {
				got[f.Policy] = append(got[f.Policy], f.Mode)
			}
			for id := range got {
				sortModes(got[id])
			}
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.wantDenied, result.Denied())
			assert.Empty(t, result.Warnings)
			assert.False(t, result.Exempt)
			for _, f := range result.Findings {
				assert.NotEqual(t, Disabled, f.Mode)
			}
		})
	}
}

func sortModes(m []Mode) {
	for i := 1; i < len(m); i++ {
		for j := i; j > 0 && m[j] < m[j-1]; j-- {
			m[j], m[j-1] = m[j-1], m[j]
		}
	}
}

func TestUnknownModeLabelFailsClosedWithAWarning(t *testing.T) {
	e := mkEngine(t, Config{DefaultMode: Disabled})
	cluster := labelled(map[string]string{ModeLabelPrefix + string(SnapshotSchedule): "Off"})
	_, result := admit(t, e, create(mkStatefulSet(withoutLabel(scheduleKey))), cluster)
	assert.Equal(t, []string{"enforce metadata.labels"}, summary(result.Findings), "only snapshot-schedule runs, enforced")
	assert.True(t, result.Denied())
	require.Len(t, result.Warnings, 1)
	assert.Contains(t, result.Warnings[0], `stateguard.dev/mode.snapshot-schedule="Off" is not a mode`)

	svcResult, err := e.ValidateService(ServiceRequest{Operation: Delete, Namespace: testNamespace, OldObject: goodService()}, cluster)
	require.NoError(t, err)
	assert.Equal(t, result.Warnings, svcResult.Warnings, "Service reviews report the namespace's bad label too")
}

func TestDisabledPolicyNeitherFindsNorMutates(t *testing.T) {
	for _, id := range []PolicyID{HeadlessService, StorageClass, SnapshotSchedule} {
		t.Run(string(id), func(t *testing.T) {
			e := mkEngine(t, Config{})
			cluster := troubledCluster(map[string]string{ModeLabelPrefix + string(id): "disabled"})
			mutated, ms, err := e.MutateStatefulSet(create(troubled()), cluster)
			require.NoError(t, err)
			assert.Empty(t, mutationsOf(ms, id))
			for _, other := range []PolicyID{StorageClass, SnapshotSchedule} {
				if other != id {
					assert.NotEmpty(t, mutationsOf(ms, other), "%s still mutates", other)
				}
			}
			result, err := e.ValidateStatefulSet(create(mutated), cluster)
			require.NoError(t, err)
			assert.Empty(t, findingsOf(result, id))
			assert.NotEmpty(t, result.Findings, "the other policies still run")
		})
	}

	t.Run("storage-class disabled leaves classes and dangling mounts", func(t *testing.T) {
		e := mkEngine(t, Config{Policies: PoliciesConfig{StorageClass: StorageClassConfig{Mode: Disabled}}})
		mutated, _, err := e.MutateStatefulSet(create(troubled()), troubledCluster(nil))
		require.NoError(t, err)
		assert.Equal(t, []string{"shared=managed-csi", "data=" + unset}, templateClasses(mutated))
	})
	t.Run("snapshot-schedule disabled copies no label", func(t *testing.T) {
		e := mkEngine(t, Config{Policies: PoliciesConfig{SnapshotSchedule: SnapshotScheduleConfig{Mode: Disabled}}})
		mutated, _, err := e.MutateStatefulSet(create(troubled()), troubledCluster(nil))
		require.NoError(t, err)
		for _, tmpl := range mutated.Spec.VolumeClaimTemplates {
			assert.NotContains(t, tmpl.Labels, scheduleKey)
		}
	})
	t.Run("all disabled: the object comes back untouched", func(t *testing.T) {
		e := mkEngine(t, Config{DefaultMode: Disabled})
		sts := troubled()
		mutated, ms, err := e.MutateStatefulSet(create(sts), troubledCluster(nil))
		require.NoError(t, err)
		assert.Empty(t, ms)
		assert.Same(t, sts, mutated)
		result, err := e.ValidateStatefulSet(create(sts), troubledCluster(nil))
		require.NoError(t, err)
		assert.Empty(t, result.Findings)
	})
}

func TestWarnAndAuditModesMutateAsEnforceDoes(t *testing.T) {
	var want []Mutation
	for _, mode := range []Mode{Enforce, Warn, Audit} {
		_, ms, err := mkEngine(t, Config{DefaultMode: mode}).MutateStatefulSet(create(troubled()), troubledCluster(nil))
		require.NoError(t, err)
		require.NotEmpty(t, ms)
		if want == nil {
			want = ms
		}
		assert.Equal(t, want, ms, mode)
	}
}

func TestExemptNamespaces(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		namespace string
		exempt    bool
	}{
		{"kube-system by default", Config{}, "kube-system", true},
		{"kube-public by default", Config{}, "kube-public", true},
		{"kube-node-lease by default", Config{}, "kube-node-lease", true},
		{"default is not", Config{}, "default", false},
		{"configured list", Config{ExemptNamespaces: []string{"stateguard", "legacy"}}, "legacy", true},
		{"a configured list replaces the defaults", Config{ExemptNamespaces: []string{"legacy"}}, "kube-system", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mkEngine(t, tt.cfg)
			sts := troubled()
			sts.Namespace = tt.namespace
			cluster := troubledCluster(nil)
			withNamespaces(mkNamespace(tt.namespace, nil))(cluster)
			withServices(mkService(headless(), func(s *corev1.Service) { s.Namespace = tt.namespace }))(cluster)

			mutated, ms, err := e.MutateStatefulSet(create(sts), cluster)
			require.NoError(t, err)
			result, err := e.ValidateStatefulSet(create(sts), cluster)
			require.NoError(t, err)
			svc, err := e.ValidateService(ServiceRequest{Operation: Delete, Namespace: tt.namespace, OldObject: goodService()},
				mkCluster(withStatefulSets(sts)))
			require.NoError(t, err)

			assert.Equal(t, tt.exempt, result.Exempt)
			assert.Equal(t, tt.exempt, svc.Exempt)
			if tt.exempt {
				assert.Empty(t, ms)
				assert.Same(t, sts, mutated)
				assert.Empty(t, result.Findings)
				assert.False(t, result.Denied())
				assert.Empty(t, svc.Findings)
			} else {
				assert.NotEmpty(t, ms)
				assert.True(t, result.Denied())
			}
		})
	}

	t.Run("an exempt namespace is never looked up", func(t *testing.T) {
		e := mkEngine(t, Config{})
		sts := troubled()
		sts.Namespace = "kube-system"
		broken := &fakeLookup{err: errLookup}
		_, _, err := e.MutateStatefulSet(create(sts), broken)
		require.NoError(t, err)
		result, err := e.ValidateStatefulSet(create(sts), broken)
		require.NoError(t, err)
		assert.True(t, result.Exempt)
	})
}

// Whoever can edit a workload must not be able to exempt it: neither labels
// nor annotations on the object itself change the mode.
func TestNoPerObjectExemption(t *testing.T) {
	e := mkEngine(t, Config{})
	sts := troubled()
	sts.Labels[ModeLabel] = "disabled"
	sts.Labels[ModeLabelPrefix+string(SnapshotSchedule)] = "disabled"
	sts.Annotations = map[string]string{
		ModeLabel: "disabled", "stateguard.dev/exempt": "true", ModeLabelPrefix + string(StorageClass): "disabled",
	}
	sts.Spec.Template.Labels[ModeLabel] = "disabled"
	_, result := admit(t, e, create(sts), troubledCluster(nil))
	assert.True(t, result.Denied())
	assert.NotEmpty(t, findingsOf(result, SnapshotSchedule))
	assert.NotEmpty(t, findingsOf(result, StorageClass))
}

func TestNamespaceLookup(t *testing.T) {
	e := mkEngine(t, Config{})
	t.Run("error propagates", func(t *testing.T) {
		cluster := mkCluster()
		cluster.namespaceErr = errLookup
		_, _, err := e.MutateStatefulSet(create(troubled()), cluster)
		require.ErrorIs(t, err, errLookup)
		_, err = e.ValidateStatefulSet(create(troubled()), cluster)
		require.ErrorIs(t, err, errLookup)
	})
	t.Run("a namespace not found has no labels: the config's modes apply", func(t *testing.T) {
		e := mkEngine(t, Config{DefaultMode: Warn})
		cluster := troubledCluster(nil)
		delete(cluster.namespaces, testNamespace)
		_, result := admit(t, e, create(troubled()), cluster)
		assert.NotEmpty(t, result.Findings)
		assert.Zero(t, result.Count(Enforce))
		assert.Equal(t, len(result.Findings), result.Count(Warn))
	})
}
