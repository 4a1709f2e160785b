// Package e2e proves the webhook against a real kube-apiserver, driven by the
// real kubectl, with the webhook configurations rendered from the Helm chart
// (so the rules, selectors, failure policy and timeouts proven here are the
// ones the chart ships), and the real `stateguard serve` binary behind them
// (run by test/serve).
package e2e

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/stateguard/stateguard/test/cluster"
	"github.com/stateguard/stateguard/test/serve"
)

// TestMain builds the stateguard binary under test once.
func TestMain(m *testing.M) { serve.Main(m) }

// chartWebhooks renders the chart's webhook configurations with $HELM,
// passing set as --set arguments.
func chartWebhooks(t *testing.T, set ...string) envtest.WebhookInstallOptions {
	t.Helper()
	return serve.ChartWebhooks(t, set...)
}

// server is a running `stateguard serve` (serve.Server), with the names
// this package's tests use.
type server struct {
	*serve.Server
	cmd       *exec.Cmd // only Process is set
	probeAddr string
}

// startServer runs `stateguard serve` against the cluster on the port and
// certificate envtest registered the webhooks with, and waits until /readyz
// says ready (serve.Start).
func startServer(t *testing.T, c *cluster.Cluster, args ...string) *server {
	t.Helper()
	s := serve.Start(t, c, args...)
	return &server{Server: s, cmd: &exec.Cmd{Process: s.Process()}, probeAddr: s.ProbeAddr}
}

// stop sends SIGTERM and waits for a graceful exit.
func (s *server) stop(t *testing.T) { t.Helper(); s.Stop(t) }

// scrape returns the metrics lines that start with prefix.
func (s *server) scrape(t *testing.T, prefix string) []string {
	t.Helper()
	return s.ScrapeLines(t, prefix)
}

// decisions sums stateguard_admission_decisions_total over the series whose
// labels hold match, `key="value"`.
func (s *server) decisions(t *testing.T, match string) int {
	t.Helper()
	k, v, _ := strings.Cut(match, "=")
	return int(s.Metric(t, "stateguard_admission_decisions_total", k+"="+strings.Trim(v, `"`)))
}

// runCheck runs `stateguard check` on a manifest and returns its exit code and output.
func runCheck(t *testing.T, manifest string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(serve.Binary(t), append([]string{"check"}, append(args, "-")...)...)
	cmd.Stdin = strings.NewReader(manifest)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if exit, ok := err.(*exec.ExitError); ok {
		return exit.ExitCode(), out.String()
	}
	require.NoError(t, err)
	return 0, out.String()
}
