// Package cluster starts a real Kubernetes control plane (etcd +
// kube-apiserver, optionally kube-controller-manager) for integration tests,
// and drives it with the real kubectl.
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
// There are no nodes, so pods never run; the StatefulSet controller still
// creates Pod and PersistentVolumeClaim objects.
package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
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
// Start runs when Options.ControllerManager is set: enough for a StatefulSet
// to get its Pods and PersistentVolumeClaims, for PVCs to be matched against
// PVs, for owned objects to be garbage-collected and for namespaces to be
// deleted. Pods never run: there are no nodes or schedulers.
var ControllerManagerControllers = []string{
	"statefulset-controller",
	"persistentvolume-binder-controller",
	"persistentvolume-protection-controller",
	"persistentvolumeclaim-protection-controller",
	"garbage-collector-controller",
	"namespace-controller", // deleted namespaces go away instead of staying Terminating
}

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

	dir      string // per-cluster temp dir: logs, kubectl cache, kubeconfigs
	kubectl  string
	kcmLog   string
	kcmCmd   *exec.Cmd
	kcmDone  chan struct{}
	kcmError error
}

// AssetsDir returns $KUBEBUILDER_ASSETS, and whether it holds at least etcd
// and kube-apiserver.
func AssetsDir() (string, bool) {
	dir := os.Getenv(EnvAssets)
	if dir == "" {
		return "", false
	}
	return dir, isExecutable(filepath.Join(dir, "kube-apiserver")) && isExecutable(filepath.Join(dir, "etcd"))
}

// RequireAssets returns the assets directory, or skips the test when it is
// unusable (failing it instead when STATEGUARD_REQUIRE_INTEGRATION=1). It
// also requires kubectl.
func RequireAssets(t testing.TB) string {
	t.Helper()
	dir, ok := AssetsDir()
	if !ok {
		missing(t, fmt.Sprintf("integration test needs %s=<dir with etcd and kube-apiserver> (have %q): `make test` builds and sets it; by hand: `make k8s-assets` and point it at bin/k8s/<version>", EnvAssets, dir))
	}
	if _, err := kubectlPath(); err != nil {
		missing(t, "integration test needs kubectl: "+err.Error())
	}
	return dir
}

func missing(t testing.TB, msg string) {
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
	if opts.ControllerManager && !isExecutable(filepath.Join(assets, "kube-controller-manager")) {
		missing(t, fmt.Sprintf("no kube-controller-manager in %s=%s; run `make k8s-assets`", EnvAssets, assets))
	}
	kubectl, _ := kubectlPath()

	begin := time.Now()
	c := &Cluster{dir: t.TempDir(), kubectl: kubectl}
	// Registered after TempDir, so it runs before the directory is removed.
	t.Cleanup(func() { c.dumpLogsOnFailure(t) })

	apiLog := c.logFile(t, "kube-apiserver.log")
	etcdLog := c.logFile(t, "etcd.log")
	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		WebhookInstallOptions:    opts.Webhooks,
		ControlPlaneStartTimeout: 60 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	api := env.ControlPlane.GetAPIServer()
	api.Out, api.Err = apiLog, apiLog
	env.ControlPlane.Etcd = &envtest.Etcd{Out: etcdLog, Err: etcdLog}
	for k, v := range opts.APIServerFlags {
		api.Configure().Set(k, v)
	}

	cfg, err := env.Start()
	if err != nil {
		// envtest may have started part of the control plane.
		_ = env.Stop()
		t.Fatalf("starting control plane: %v", err)
	}
	c.Env, c.Config, c.Webhooks = env, cfg, &env.WebhookInstallOptions
	disarm := startReaper("--cert-dir="+api.CertDir, "--data-dir="+env.ControlPlane.Etcd.DataDir)
	t.Cleanup(func() {
		// Also removes the webhook serving certificates.
		if err := env.Stop(); err != nil {
			t.Errorf("stopping control plane: %v", err)
		}
		disarm()
	})

	admin, err := env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatalf("adding admin user: %v", err)
	}
	c.Kubeconfig = c.writeKubeconfig(t, "admin.kubeconfig", admin)

	if opts.ControllerManager {
		c.startControllerManager(t, assets, env)
	}
	t.Logf("cluster: control plane up in %s (api %s, controller-manager %v)", time.Since(begin).Round(time.Millisecond), cfg.Host, opts.ControllerManager)
	return c
}

func (c *Cluster) logFile(t testing.TB, name string) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(c.dir, name))
	if err != nil {
		t.Fatalf("creating log file: %v", err)
	}
	// Closed after the processes stopped (cleanups run last-in first-out).
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func (c *Cluster) writeKubeconfig(t testing.TB, name string, u *envtest.AuthenticatedUser) string {
	t.Helper()
	data, err := u.KubeConfig()
	if err != nil {
		t.Fatalf("building kubeconfig: %v", err)
	}
	path := filepath.Join(c.dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("writing kubeconfig: %v", err)
	}
	return path
}

// startControllerManager runs kube-controller-manager as a child process,
// authenticated as a system:masters user, and waits for its /healthz.
func (c *Cluster) startControllerManager(t testing.TB, assets string, env *envtest.Environment) {
	t.Helper()
	user, err := env.AddUser(envtest.User{Name: "system:kube-controller-manager", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatalf("adding controller-manager user: %v", err)
	}
	kubeconfig := c.writeKubeconfig(t, "kube-controller-manager.kubeconfig", user)
	port, err := freePort()
	if err != nil {
		t.Fatalf("picking a port for kube-controller-manager: %v", err)
	}
	certDir := filepath.Join(c.dir, "kcm-certs")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		t.Fatal(err)
	}
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		// envtest's apiserver publishes no request-header CA; looking it up
		// only fills the log with errors.
		"--authentication-skip-lookup=true",
		"--controllers=" + strings.Join(ControllerManagerControllers, ","),
		"--leader-elect=false",
		"--use-service-account-credentials=false",
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + certDir,
		"--kube-api-qps=200",
		"--kube-api-burst=400",
		"--concurrent-statefulset-syncs=10",
		"--v=2",
	}
	logf := c.logFile(t, "kube-controller-manager.log")
	c.kcmLog = logf.Name()
	cmd := exec.Command(filepath.Join(assets, "kube-controller-manager"), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting kube-controller-manager: %v", err)
	}
	c.kcmCmd, c.kcmDone = cmd, make(chan struct{})
	go func() {
		c.kcmError = cmd.Wait()
		close(c.kcmDone)
	}()
	t.Cleanup(c.stopControllerManager)

	// Its serving certificate is self-signed and healthz needs no
	// credentials; this only checks that it is up.
	hc := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // local health check
	}
	defer hc.CloseIdleConnections()
	url := fmt.Sprintf("https://127.0.0.1:%d/healthz", port)
	err = c.poll(60*time.Second, func(ctx context.Context) (bool, error) {
		select {
		case <-c.kcmDone:
			return false, fmt.Errorf("kube-controller-manager exited: %v", c.kcmError)
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("waiting for kube-controller-manager healthz: %v", err)
	}
}

func (c *Cluster) stopControllerManager() {
	if c.kcmCmd == nil || c.kcmCmd.Process == nil {
		return
	}
	select {
	case <-c.kcmDone:
		return
	default:
	}
	_ = c.kcmCmd.Process.Signal(os.Interrupt)
	select {
	case <-c.kcmDone:
	case <-time.After(10 * time.Second):
		_ = c.kcmCmd.Process.Kill()
		<-c.kcmDone
	}
}

// ControllerManagerLog returns the path of kube-controller-manager's log, or
// "" if it does not run. Logs of all components are printed when the test
// fails; the files are removed with the test's temp dir.
func (c *Cluster) ControllerManagerLog() string { return c.kcmLog }

func (c *Cluster) dumpLogsOnFailure(t testing.TB) {
	if !t.Failed() {
		return
	}
	for _, name := range []string{"kube-controller-manager.log", "kube-apiserver.log", "etcd.log"} {
		data, err := os.ReadFile(filepath.Join(c.dir, name))
		if err != nil || len(data) == 0 {
			continue
		}
		t.Logf("---- %s (last 200 lines) ----\n%s", name, tail(data, 200))
	}
}

func tail(data []byte, n int) string {
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// Kubectl runs `kubectl --kubeconfig=<admin> args...` with stdin (if not
// empty) and returns its output. err is non-nil if kubectl exits non-zero or
// runs longer than DefaultKubectlTimeout. Every call is logged.
func (c *Cluster) Kubectl(t testing.TB, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultKubectlTimeout)
	defer cancel()
	full := append([]string{"--kubeconfig=" + c.Kubeconfig, "--cache-dir=" + filepath.Join(c.dir, "kubectl-cache")}, args...)
	cmd := exec.CommandContext(ctx, c.kubectl, full...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig)
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
	t.Logf("kubectl %s -> err=%v", strings.Join(args, " "), err)
	return out.String(), errb.String(), err
}

// MustKubectl is Kubectl that fails the test (showing stderr) on error and
// returns stdout.
func (c *Cluster) MustKubectl(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	stdout, stderr, err := c.Kubectl(t, stdin, args...)
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
	err := c.poll(timeout, func(context.Context) (bool, error) {
		last = cond()
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("condition not met within %s: %v", timeout, last)
	}
}

func (c *Cluster) poll(timeout time.Duration, cond wait.ConditionWithContextFunc) error {
	return wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, cond)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
