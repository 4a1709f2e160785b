package policies

import (
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

// An error from the Lookup means the answer is unknown: the engine returns it
// rather than deciding on a guess (a Service "missing" because a cache is
// cold must never deny, nor a failing class lookup admit).
func TestLookupErrorsAreNeverDecisions(t *testing.T) {
	e := mkEngine(t, Config{})
	sts := mkStatefulSet(withClaim("data", modes(corev1.ReadWriteOnce), withClass("managed-csi")))
	failing := map[string]func(*fakeLookup){
		"Namespace":    func(f *fakeLookup) { f.namespaceErr = errLookup },
		"Service":      func(f *fakeLookup) { f.serviceErr = errLookup },
		"StorageClass": func(f *fakeLookup) { f.classErr = errLookup },
		"every method": func(f *fakeLookup) { f.err = errLookup },
	}
	for name, fail := range failing {
		t.Run(name, func(t *testing.T) {
			cluster := mkCluster()
			fail(cluster)
			for _, req := range []StatefulSetRequest{create(sts), update(sts, sts)} {
				result, err := e.ValidateStatefulSet(req, cluster)
				require.ErrorIs(t, err, errLookup, string(req.Operation))
				require.Empty(t, result.Findings)
			}
		})
	}
	t.Run("StatefulSets", func(t *testing.T) {
		cluster := mkCluster()
		cluster.statefulSetsErr = errLookup
		_, err := e.ValidateService(ServiceRequest{Operation: Delete, Namespace: testNamespace, OldObject: goodService()}, cluster)
		require.ErrorIs(t, err, errLookup)
	})
}
