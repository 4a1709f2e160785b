// Package load measures the webhook under load against a real control plane
// (envtest's kube-apiserver and etcd, test/cluster) and the real
// `stateguard serve` binary, with the chart's webhook configurations:
//
//   - TestLoadHTTPS: reviews/s and latency over HTTPS with keep-alive,
//     hack/loadgen against `stateguard serve`, at max rate and at 500/s;
//   - TestAPIServerCreateLatency: StatefulSet creates through the API server
//     with both webhooks registered vs. with none, in one run;
//   - TestWebhookMemory: the webhook's RSS once its caches hold 10,000
//     Services and 200 StorageClasses.
//
// They run only with STATEGUARD_LOAD=1 (so `make test` skips them); `make
// load` and `make perf-apiserver` (hack/perf.mk) set it, with
// KUBEBUILDER_ASSETS and HELM. Each test logs a figures table with the load
// average; a missed target fails the test.
package load

import (
	"os"
	"testing"

	"github.com/stateguard/stateguard/test/serve"
)

// EnvLoad gates the tests of this package.
const EnvLoad = "STATEGUARD_LOAD"

func TestMain(m *testing.M) {
	if os.Getenv(EnvLoad) != "1" {
		os.Exit(m.Run()) // every test skips; nothing to build
	}
	serve.Main(m, serve.LoadgenPkg)
}

// requireLoad skips the test unless EnvLoad=1.
func requireLoad(t *testing.T) {
	t.Helper()
	if os.Getenv(EnvLoad) != "1" {
		t.Skipf("load test: set %s=1 (make load, make perf-apiserver)", EnvLoad)
	}
}
