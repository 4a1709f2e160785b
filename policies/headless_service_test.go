package policies

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

func TestHeadlessServiceStatefulSet(t *testing.T) {
	tests := []struct {
		name    string
		sts     *appsv1.StatefulSet
		cluster *fakeLookup
		// want is the headless-service findings as "mode field", sorted.
		want []string
		// wantMessage is a substring of the first finding's message.
		wantMessage string
	}{{
		name:    "headless Service selecting the pods and publishing not-ready addresses",
		sts:     mkStatefulSet(),
		cluster: mkCluster(),
	}, {
		name:    "a selector that is a subset of the pod labels selects them",
		sts:     mkStatefulSet(withPodLabels(map[string]string{"app": "nginx", "tier": "db"})),
		cluster: mkCluster(),
	}, {
		name:        "empty serviceName",
		sts:         mkStatefulSet(withServiceName("")),
		cluster:     mkCluster(),
		want:        []string{"enforce spec.serviceName"},
		wantMessage: "is empty; name a headless Service",
	}, {
		name:        "Service missing",
		sts:         mkStatefulSet(),
		cluster:     mkCluster(withoutService(testNamespace, testService)),
		want:        []string{"enforce spec.serviceName"},
		wantMessage: `Service "nginx" not found in namespace default`,
	}, {
		name:        "Service of that name only in another namespace",
		sts:         mkStatefulSet(),
		cluster:     mkCluster(withoutService(testNamespace, testService), withServices(mkService(headless(), publishNotReady(), func(s *corev1.Service) { s.Namespace = "other" }))),
		want:        []string{"enforce spec.serviceName"},
		wantMessage: "not found",
	}, {
		name:        "Service with a cluster IP",
		sts:         mkStatefulSet(),
		cluster:     mkCluster(withServices(mkService(publishNotReady()))),
		want:        []string{"enforce spec.serviceName"},
		wantMessage: "is not headless (clusterIP: 10.0.12.7)",
	}, {
		name:        "Service with clusterIP unset",
		sts:         mkStatefulSet(),
		cluster:     mkCluster(withServices(mkService(withClusterIP(""), publishNotReady()))),
		want:        []string{"enforce spec.serviceName"},
		wantMessage: "is not headless (clusterIP: unset",
	}, {
		name:        "Service with empty selector",
		sts:         mkStatefulSet(),
		cluster:     mkCluster(withServices(mkService(headless(), publishNotReady(), withSelector(nil)))),
		want:        []string{"enforce spec.serviceName"},
		wantMessage: "has no selector",
	}, {
		name:        "selector value differs from the pod label",
		sts:         mkStatefulSet(),
		cluster:     mkCluster(withServices(mkService(headless(), publishNotReady(), withSelector(map[string]string{"app": "redis"})))),
		want:        []string{"enforce spec.template.metadata.labels"},
		wantMessage: `lack app=redis, which Service "nginx" selects; add them`,
	}, {
		name:        "selector key missing from the pod labels",
		sts:         mkStatefulSet(),
		cluster:     mkCluster(withServices(mkService(headless(), publishNotReady(), withSelector(map[string]string{"app": "nginx", "tier": "db"})))),
		want:        []string{"enforce spec.template.metadata.labels"},
		wantMessage: "lack tier=db, which",
	}, {
		name:        "pods without labels",
		sts:         mkStatefulSet(withPodLabels(nil)),
		cluster:     mkCluster(),
		want:        []string{"enforce spec.template.metadata.labels"},
		wantMessage: `lack app=nginx, which Service "nginx" selects`,
	}, {
		name:        "publishNotReadyAddresses missing is a warning only",
		sts:         mkStatefulSet(),
		cluster:     mkCluster(withServices(mkService(headless()))),
		want:        []string{"warn spec.serviceName"},
		wantMessage: "lacks publishNotReadyAddresses: true",
	}, {
		name:    "every problem at once",
		sts:     mkStatefulSet(),
		cluster: mkCluster(withServices(mkService(withSelector(map[string]string{"app": "redis"})))),
		want:    []string{"enforce spec.serviceName", "enforce spec.template.metadata.labels", "warn spec.serviceName"},
	}}
	e := mkEngine(t, Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			result, err := e.ValidateStatefulSet(create(tt.sts), tt.cluster)
			require.NoError(t, err)
			got := findingsOf(result, HeadlessService)
			assert.Equal(t, tt.want, nilIfEmpty(summary(got)))
			assert.Equal(t, slices.Contains(summary(got), "enforce spec.serviceName") || slices.Contains(summary(got), "enforce spec.template.metadata.labels"), result.Denied())
			if tt.wantMessage != "" {
				require.NotEmpty(t, got)
				assert.Contains(t, got[0].Message, tt.wantMessage)
			}
			requireMessagesReadable(t, "StatefulSet", result)

			// serviceName is immutable: on UPDATE the same problems never deny.
			result, err = e.ValidateStatefulSet(update(tt.sts, tt.sts), tt.cluster)
			require.NoError(t, err)
			got = findingsOf(result, HeadlessService)
			assert.Len(t, got, len(tt.want))
			for _, f := range got {
				assert.Equal(t, Warn, f.Mode, "UPDATE must only warn: %s", f)
			}
			assert.False(t, result.Denied())
		})
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestHeadlessServiceLookupErrors(t *testing.T) {
	e := mkEngine(t, Config{})
	for _, op := range []Operation{Create, Update} {
		cluster := mkCluster()
		cluster.serviceErr = errLookup
		sts := mkStatefulSet()
		_, err := e.ValidateStatefulSet(StatefulSetRequest{Operation: op, Namespace: testNamespace, Object: sts, OldObject: sts}, cluster)
		require.ErrorIs(t, err, errLookup, "%s: a failed lookup must not be taken as a missing Service", op)
		assert.Contains(t, err.Error(), "headless-service")
	}
}

func TestHeadlessServiceGuard(t *testing.T) {
	web := mkStatefulSet()
	db := mkStatefulSet(withName("db"))
	otherService := mkStatefulSet(withName("cache"), withServiceName("redis"))
	elsewhere := mkStatefulSet(func(s *appsv1.StatefulSet) { s.Namespace = "other" })
	alreadyUnselected := mkStatefulSet(withName("legacy"), withPodLabels(map[string]string{"app": "legacy"}))

	tests := []struct {
		name    string
		op      Operation
		obj     *corev1.Service
		old     *corev1.Service
		cluster *fakeLookup
		// wantDenied, when set, is what the single denial must say.
		wantDenied []string
		wantField  string
	}{{
		name:       "delete of a headless Service a StatefulSet names",
		op:         Delete,
		old:        goodService(),
		cluster:    mkCluster(withStatefulSets(web, otherService)),
		wantDenied: []string{`deleting headless Service "nginx" breaks pod DNS of StatefulSet web; delete them first`},
	}, {
		name:       "delete names every StatefulSet that needs the Service, sorted",
		op:         Delete,
		old:        goodService(),
		cluster:    mkCluster(withStatefulSets(web, db, otherService)),
		wantDenied: []string{"StatefulSet db, web;"},
	}, {
		name:       "delete is denied even when the StatefulSet's pods are no longer selected",
		op:         Delete,
		old:        goodService(),
		cluster:    mkCluster(withStatefulSets(alreadyUnselected)),
		wantDenied: []string{"legacy"},
	}, {
		name:    "delete when no StatefulSet names it",
		op:      Delete,
		old:     goodService(),
		cluster: mkCluster(withStatefulSets(otherService)),
	}, {
		name:    "delete when only a StatefulSet in another namespace names it",
		op:      Delete,
		old:     goodService(),
		cluster: mkCluster(withStatefulSets(elsewhere)),
	}, {
		name:    "delete of a Service with a cluster IP",
		op:      Delete,
		old:     mkService(),
		cluster: mkCluster(withStatefulSets(web)),
	}, {
		name:       "selector update that stops selecting the pods",
		op:         Update,
		old:        goodService(),
		obj:        mkService(headless(), publishNotReady(), withSelector(map[string]string{"app": "nginx-v2"})),
		cluster:    mkCluster(withStatefulSets(web, db)),
		wantDenied: []string{"no longer selects the pods of StatefulSet db, web, breaking their DNS"},
		wantField:  "spec.selector",
	}, {
		name:       "selector update to an empty selector",
		op:         Update,
		old:        goodService(),
		obj:        mkService(headless(), publishNotReady(), withSelector(nil)),
		cluster:    mkCluster(withStatefulSets(web)),
		wantDenied: []string{"web"},
		wantField:  "spec.selector",
	}, {
		name:    "selector update that still selects the pods",
		op:      Update,
		old:     mkService(headless(), withSelector(map[string]string{"app": "nginx", "tier": "db"})),
		obj:     goodService(),
		cluster: mkCluster(withStatefulSets(mkStatefulSet(withPodLabels(map[string]string{"app": "nginx", "tier": "db"})))),
	}, {
		name:    "update that leaves the selector alone",
		op:      Update,
		old:     mkService(headless()),
		obj:     goodService(),
		cluster: mkCluster(withStatefulSets(web)),
	}, {
		name:    "selector update for pods the old selector did not select either",
		op:      Update,
		old:     goodService(),
		obj:     mkService(headless(), withSelector(map[string]string{"app": "other"})),
		cluster: mkCluster(withStatefulSets(alreadyUnselected)),
	}, {
		name:    "selector update of a Service with a cluster IP",
		op:      Update,
		old:     mkService(),
		obj:     mkService(withSelector(map[string]string{"app": "other"})),
		cluster: mkCluster(withStatefulSets(web)),
	}, {
		name:    "create of a Service",
		op:      Create,
		obj:     goodService(),
		cluster: mkCluster(withStatefulSets(web)),
	}}
	e := mkEngine(t, Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := ServiceRequest{Operation: tt.op, Namespace: testNamespace, Object: tt.obj, OldObject: tt.old}
			result, err := e.ValidateService(req, tt.cluster)
			require.NoError(t, err)
			if tt.wantDenied == nil {
				assert.Empty(t, result.Findings)
				assert.False(t, result.Denied())
				return
			}
			require.Len(t, result.Findings, 1)
			f := result.Findings[0]
			assert.True(t, result.Denied())
			assert.Equal(t, HeadlessService, f.Policy)
			assert.Equal(t, Enforce, f.Mode)
			assert.Equal(t, tt.wantField, f.Field)
			for _, s := range tt.wantDenied {
				assert.Contains(t, f.Message, s)
			}
			line := "Service default/nginx: " + f.String()
			assert.NotContains(t, line, "\n")
			assert.LessOrEqual(t, len(line), 200, line)
		})
	}
}

func TestHeadlessServiceGuardModes(t *testing.T) {
	req := ServiceRequest{Operation: Delete, Namespace: testNamespace, OldObject: goodService()}
	for _, tt := range []struct {
		mode Mode
		want []string
	}{
		{Enforce, []string{"enforce "}},
		{Warn, []string{"warn "}},
		{Audit, []string{"audit "}},
		{Disabled, nil},
	} {
		t.Run(string(tt.mode), func(t *testing.T) {
			cluster := mkCluster(withStatefulSets(mkStatefulSet()),
				withNamespaces(mkNamespace(testNamespace, map[string]string{ModeLabelPrefix + string(HeadlessService): string(tt.mode)})))
			result, err := mkEngine(t, Config{}).ValidateService(req, cluster)
			require.NoError(t, err)
			assert.Equal(t, tt.want, nilIfEmpty(summary(result.Findings)))
			assert.Equal(t, tt.mode == Enforce, result.Denied())
		})
	}
}

func TestHeadlessServiceGuardLookupErrors(t *testing.T) {
	e := mkEngine(t, Config{})
	for name, cluster := range map[string]*fakeLookup{
		"StatefulSets": {statefulSetsErr: errLookup},
		"Namespace":    {namespaceErr: errLookup},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.ValidateService(ServiceRequest{Operation: Delete, Namespace: testNamespace, OldObject: goodService()}, cluster)
			require.ErrorIs(t, err, errLookup, "a failed lookup must not let the delete through")
		})
	}
}
