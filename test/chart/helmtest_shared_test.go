package chart_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// probePod returns the pod the helm test's start-probe step creates (its
// `kubectl run --overrides` JSON, with $(POD_UID) replaced by uid), or nil
// when the test pod starts none.
func probePod(t testing.TB, testPod *corev1.Pod, uid string) *corev1.Pod {
	t.Helper()
	for _, c := range testPod.Spec.InitContainers {
		if c.Name != "start-probe" {
			continue
		}
		for _, a := range c.Args {
			js, ok := strings.CutPrefix(a, "--overrides=")
			if !ok {
				continue
			}
			js = strings.ReplaceAll(js, "$(POD_UID)", uid)
			var p corev1.Pod
			if err := decodeStrict([]byte(js), &p); err != nil {
				t.Fatalf("start-probe --overrides is not a Pod: %v", err)
			}
			return &p
		}
		t.Fatalf("start-probe has no --overrides")
	}
	return nil
}
