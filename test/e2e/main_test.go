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

	"github.com/stateguard/stateguard/test/serve"
)

// TestMain builds the stateguard binary under test once.
func TestMain(m *testing.M) { serve.Main(m) }

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
