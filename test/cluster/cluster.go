// Package cluster starts a real Kubernetes control plane (etcd +
// kube-apiserver, optionally kube-controller-manager) for integration tests,
// and drives it with the real kubectl.
//
// It is a testing.TB wrapper around internal/controlplane, which also runs
// `make demo`'s control plane: failures fail (or skip) the test, everything
// is stopped and removed by the test's Cleanup, and the component logs are
// printed when the test fails.
//
// The binaries come from KUBEBUILDER_ASSETS, a directory holding etcd,
// kube-apiserver and kube-controller-manager; `make k8s-assets` builds them
// from source into bin/k8s/<version>/ (see hack/assets.mk) and the Makefile
// exports KUBEBUILDER_ASSETS for `make test`. Without them the tests skip,
// unless STATEGUARD_REQUIRE_INTEGRATION=1, in which case they fail.
//
// Typical use:
//
//	func TestSomething(t *testing.T) {
//		c := cluster.Start(t, cluster.Options{ControllerManager: true})
//		c.MustKubectl(t, manifest, "apply", "-f", "-")
//		c.Eventually(t, 30*time.Second, func() error { ... return nil when done })
//	}
//
// Kubectl and MustKubectl act as a cluster admin (system:masters); AddUser
// provisions another user and KubectlAs and MustKubectlAs act as that user,
// for tests of what RBAC or admission lets ordinary users do.
//
// There are no nodes, so pods never run; the StatefulSet controller still
// creates Pod and PersistentVolumeClaim objects.
package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/stateguard/stateguard/internal/controlplane"
)

const (
	// EnvAssets names the directory holding the control-plane binaries.
	EnvAssets = "KUBEBUILDER_ASSETS"
	// EnvRequire, when "1", turns a skip for missing assets into a failure
	// (set it in CI so integration tests cannot silently vanish).
	EnvRequire = "STATEGUARD_REQUIRE_INTEGRATION"
	// EnvKubectl overrides the kubectl binary (default: kubectl on PATH).
	EnvKubectl = "KUBECTL"

	// DefaultKubectlTimeout bounds a single Kubectl call.
	DefaultKubectlTimeout = 2 * time.Minute
)

// ControllerManagerControllers are the kube-controller-manager controllers
// Start runs when Options.ControllerManager is set; see
// controlplane.ControllerManagerControllers, whose slice this is.
var ControllerManagerControllers = controlplane.ControllerManagerControllers

// Options configures Start.
type Options struct {
	// ControllerManager also runs kube-controller-manager with
	// ControllerManagerControllers, so that StatefulSets get real PVCs.
	ControllerManager bool

	// Webhooks are webhook configurations to register, rewritten by envtest
	// to point at a local server: serve them on Cluster.Webhooks.LocalServingHost
	// and LocalServingPort with the certificate in LocalServingCertDir.
	// Mind that the configurations are live as soon as Start returns.
	Webhooks envtest.WebhookInstallOptions

	// APIServerFlags are extra kube-apiserver flags, e.g.
	// {"enable-admission-plugins": "..."}; values replace envtest's defaults.
	APIServerFlags map[string]string
}

// Cluster is a running control plane. All of it is stopped, and its
// temporary files removed, by the test's Cleanup.
type Cluster struct {
	// Config is a REST config for a cluster admin (group system:masters).
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file for the same admin,
	// usable with `kubectl --kubeconfig`, helm --kubeconfig, or $KUBECONFIG.
	Kubeconfig string
	// Webhooks is the envtest state of Options.Webhooks after installation
	// (serving host, port, certificate directory, CA).
	Webhooks *envtest.WebhookInstallOptions
	// Env is the underlying envtest environment.
	Env *envtest.Environment

	cp      *controlplane.ControlPlane
	kubectl string
}

// AssetsDir returns $KUBEBUILDER_ASSETS, and whether it holds at least etcd
// and kube-apiserver.
func AssetsDir() (string, bool) {
	dir := os.Getenv(EnvAssets)
	return dir, controlplane.CheckAssets(dir, false) == nil
}

// RequireAssets returns the assets directory, or skips the test when it is
// unusable (failing it instead when STATEGUARD_REQUIRE_INTEGRATION=1). It
// also requires kubectl.
func RequireAssets(t testing.TB) string {
	t.Helper()
	dir, ok := AssetsDir()
	if !ok {
		Missing(t, fmt.Sprintf("integration test needs %s=<dir with etcd and kube-apiserver> (have %q): `make test` builds and sets it; by hand: `make k8s-assets` and point it at bin/k8s/<version>", EnvAssets, dir))
	}
	if _, err := kubectlPath(); err != nil {
		Missing(t, "integration test needs kubectl: "+err.Error())
	}
	return dir
}

// Missing skips the test for want of msg (a binary, an environment
// variable), or fails it when EnvRequire=1: in `make test` nothing may be
// silently skipped.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("%s (%s=1)", msg, EnvRequire)
	}
	t.Skip(msg)
}

func kubectlPath() (string, error) {
	if p := os.Getenv(EnvKubectl); p != "" {
		return p, nil
	}
	return exec.LookPath("kubectl")
}

// Start starts etcd and kube-apiserver (and kube-controller-manager if
// asked), registers opts.Webhooks, and returns once the API server serves
// requests and the controller manager, if any, reports healthy. Everything is
// stopped by t.Cleanup; on failure the component logs are printed.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	assets := RequireAssets(t)
	if opts.ControllerManager {
		if err := controlplane.CheckAssets(assets, true); err != nil {
			Missing(t, fmt.Sprintf("%v (%s); run `make k8s-assets`", err, EnvAssets))
		}
	}
	kubectl, _ := kubectlPath()

	begin := time.Now()
	dir := t.TempDir()
	logDir := filepath.Join(dir, "logs")
	// Registered after TempDir, so it runs before the directory is removed,
	// and before the Stop below, so it runs after it (the logs are complete).
	t.Cleanup(func() {
		if t.Failed() {
			var b strings.Builder
			controlplane.WriteLogTails(&b, logDir, 200)
			t.Logf("component logs:\n%s", b.String())
		}
	})

	cp, err := controlplane.Start(t.Context(), controlplane.Options{
		Assets:            assets,
		Dir:               dir,
		LogDir:            logDir,
		ControllerManager: opts.ControllerManager,
		APIServerFlags:    opts.APIServerFlags,
		Webhooks:          opts.Webhooks,
	})
	if err != nil {
		t.Fatalf("starting control plane: %v", err)
	}
	t.Cleanup(func() {
		// Also removes the webhook serving certificates.
		if err := cp.Stop(); err != nil {
			t.Errorf("stopping control plane: %v", err)
		}
	})
	c := &Cluster{Config: cp.Config, Kubeconfig: cp.Kubeconfig, Webhooks: cp.Webhooks, Env: cp.Env, cp: cp, kubectl: kubectl}
	t.Logf("cluster: control plane up in %s (api %s, controller-manager %v)", time.Since(begin).Round(time.Millisecond), cp.Config.Host, opts.ControllerManager)
	return c
}

// ControllerManagerLog returns the path of kube-controller-manager's log, or
// "" if it does not run. Logs of all components are printed when the test
// fails; the files are removed with the test's temp dir.
func (c *Cluster) ControllerManagerLog() string { return c.cp.ControllerManagerLog() }

// AddUser provisions a user that authenticates with a client certificate as
// name, in groups (the API server adds system:authenticated), and returns the
// path of a kubeconfig for it, for KubectlAs. The user may do only what RBAC
// grants it (or everything, in group system:masters). The file is removed
// with the cluster.
func (c *Cluster) AddUser(t testing.TB, name string, groups ...string) (kubeconfig string) {
	t.Helper()
	kubeconfig, _, err := c.cp.AddUser(name, groups...)
	if err != nil {
		t.Fatal(err)
	}
	return kubeconfig
}

// Kubectl runs `kubectl --kubeconfig=<admin> args...` with stdin (if not
// empty) and returns its output. err is non-nil if kubectl exits non-zero or
// runs longer than DefaultKubectlTimeout; it wraps the *exec.ExitError, if
// any. Every call is logged.
func (c *Cluster) Kubectl(t testing.TB, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return c.KubectlAs(t, c.Kubeconfig, stdin, args...)
}

// KubectlAs is Kubectl as the user of kubeconfig, e.g. one from AddUser.
func (c *Cluster) KubectlAs(t testing.TB, kubeconfig, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultKubectlTimeout)
	defer cancel()
	full := append([]string{"--kubeconfig=" + kubeconfig, "--cache-dir=" + filepath.Join(c.cp.Dir, "kubectl-cache")}, args...)
	cmd := exec.CommandContext(ctx, c.kubectl, full...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("kubectl %s: timed out after %s: %w", strings.Join(args, " "), DefaultKubectlTimeout, err)
	} else if err != nil {
		err = fmt.Errorf("kubectl %s: %w", strings.Join(args, " "), err)
	}
	as := ""
	if kubeconfig != c.Kubeconfig {
		as = " (as " + strings.TrimSuffix(filepath.Base(kubeconfig), ".kubeconfig") + ")"
	}
	t.Logf("kubectl%s %s -> err=%v", as, strings.Join(args, " "), err)
	return out.String(), errb.String(), err
}

// MustKubectl is Kubectl that fails the test (showing stderr) on error and
// returns stdout.
func (c *Cluster) MustKubectl(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	return c.MustKubectlAs(t, c.Kubeconfig, stdin, args...)
}

// MustKubectlAs is MustKubectl as the user of kubeconfig.
func (c *Cluster) MustKubectlAs(t testing.TB, kubeconfig, stdin string, args ...string) string {
	t.Helper()
	stdout, stderr, err := c.KubectlAs(t, kubeconfig, stdin, args...)
	if err != nil {
		t.Fatalf("%v\nstderr: %s\nstdout: %s", err, stderr, stdout)
	}
	return stdout
}

// Eventually calls cond every 100ms until it returns nil, and fails the
// test with cond's last error if that does not happen within timeout. Use it
// instead of sleeps.
func (c *Cluster) Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	last := errors.New("condition never evaluated")
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		last = cond()
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("condition not met within %s: %v", timeout, last)
	}
}
