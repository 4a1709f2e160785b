package serve

import (
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/stateguard/stateguard/internal/controlplane"
	"github.com/stateguard/stateguard/test/cluster"
)

const (
	// EnvHelm names the helm binary the chart is rendered with.
	EnvHelm = "HELM"
	// Release and ReleaseNamespace are what the chart is rendered for, as
	// `helm install stateguard -n stateguard-system` would: the rendered
	// namespaceSelector leaves the release namespace out.
	Release          = "stateguard"
	ReleaseNamespace = "stateguard-system"
)

// ChartWebhooks renders the chart's webhook configurations with $HELM
// (controlplane.RenderChartWebhooks), passing set as --set arguments, so
// that the rules, selectors, failure policy and timeouts a test proves are
// the ones the chart ships. Without HELM the test skips (fails with
// STATEGUARD_REQUIRE_INTEGRATION=1).
func ChartWebhooks(t testing.TB, set ...string) envtest.WebhookInstallOptions {
	t.Helper()
	helm := os.Getenv(EnvHelm)
	if helm == "" {
		cluster.Missing(t, "HELM is not set: `make test` builds helm and sets it; by hand: `make helm` and HELM=bin/helm/<version>/helm")
	}
	opts, err := controlplane.RenderChartWebhooks(t.Context(), controlplane.ChartRender{
		Helm: helm, Chart: filepath.Join(RepoRoot(t), "charts", "stateguard"),
		Release: Release, Namespace: ReleaseNamespace, Set: set,
	})
	if err != nil {
		t.Fatal(err)
	}
	return opts
}

// RepoRoot returns the module's root directory: the nearest directory above
// the working directory (a test's package directory) holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod above %s", dir)
		}
	}
}
