// Package e2e proves the webhook against a real kube-apiserver, driven by the
// real kubectl, with the webhook configurations rendered from the Helm chart
// (so the rules, selectors, failure policy and timeouts proven here are the
// ones the chart ships).
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/stateguard/stateguard/internal/controlplane"
	"github.com/stateguard/stateguard/test/cluster"
)

// binary is the stateguard binary under test, built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "stateguard-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "stateguard")
	build := exec.Command("go", "build", "-o", binary, "github.com/stateguard/stateguard/cmd/stateguard")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building stateguard:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// releaseNamespace is where the chart would be installed; the rendered
// namespaceSelector leaves it out.
const releaseNamespace = "stateguard-system"

// chartWebhooks renders the chart's webhook configurations with $HELM,
// passing set as --set arguments.
func chartWebhooks(t *testing.T, set ...string) envtest.WebhookInstallOptions {
	t.Helper()
	helm := os.Getenv("HELM")
	if helm == "" {
		if os.Getenv(cluster.EnvRequire) == "1" {
			t.Fatal("HELM is not set: `make test` builds helm and sets it")
		}
		t.Skip("HELM is not set: run `make test`, or `make helm` and HELM=bin/helm/<version>/helm")
	}
	opts, err := controlplane.RenderChartWebhooks(t.Context(), controlplane.ChartRender{
		Helm: helm, Chart: "../../charts/stateguard", Release: "stateguard", Namespace: releaseNamespace, Set: set,
	})
	require.NoError(t, err)
	return opts
}

// server is a running `stateguard serve` process.
type server struct {
	cmd       *exec.Cmd
	done      chan error
	log       *bytes.Buffer
	probeAddr string
	metrics   string
}

// startServer runs `stateguard serve` against the cluster on the port and
// certificate envtest registered the webhooks with, and waits until /readyz
// says ready.
func startServer(t *testing.T, c *cluster.Cluster, args ...string) *server {
	t.Helper()
	s := &server{done: make(chan error, 1), log: &bytes.Buffer{}, probeAddr: freeAddr(t), metrics: freeAddr(t)}
	full := append([]string{"serve",
		"--kubeconfig", c.Kubeconfig,
		"--cert-dir", c.Webhooks.LocalServingCertDir,
		"--port", fmt.Sprint(c.Webhooks.LocalServingPort),
		"--health-probe-bind-address", s.probeAddr,
		"--metrics-bind-address", s.metrics,
		"--log-format", "text",
		"--shutdown-delay", "0s", // nothing routes to it through endpoints here
	}, args...)
	s.cmd = exec.Command(binary, full...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	require.NoError(t, s.cmd.Start())
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			t.Logf("stateguard serve log:\n%s", tailLines(s.log.String(), 60))
		}
	})
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
		select {
		case err := <-s.done:
			s.done <- err
			return false, fmt.Errorf("stateguard serve exited: %v\n%s", err, s.log.String())
		default:
		}
		resp, err := http.Get("http://" + s.probeAddr + "/readyz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	require.NoError(t, err, "stateguard serve never became ready:\n%s", s.log.String())
	return s
}

// stop sends SIGTERM and waits for a graceful exit.
func (s *server) stop(t *testing.T) {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-s.done:
		s.done <- err
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		t.Errorf("stateguard serve did not exit within 30s of SIGINT")
	}
}

// scrape returns the metrics lines whose name starts with prefix.
func (s *server) scrape(t *testing.T, prefix string) []string {
	t.Helper()
	resp, err := http.Get("http://" + s.metrics + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	var out []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), prefix) {
			out = append(out, sc.Text())
		}
	}
	return out
}

// decisions sums stateguard_admission_decisions_total over the series whose
// labels contain match.
func (s *server) decisions(t *testing.T, match string) int {
	t.Helper()
	total := 0
	for _, line := range s.scrape(t, "stateguard_admission_decisions_total{") {
		if !strings.Contains(line, match) {
			continue
		}
		var v float64
		_, err := fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &v)
		require.NoError(t, err, line)
		total += int(v)
	}
	return total
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

func tailLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// runCheck runs `stateguard check` on a manifest and returns its exit code and output.
func runCheck(t *testing.T, manifest string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"check"}, append(args, "-")...)...)
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
