// Package controlplane starts a local Kubernetes control plane: etcd and
// kube-apiserver through controller-runtime's envtest, and optionally
// kube-controller-manager as a child process, with the files it writes (etcd
// data, certificates, kubeconfigs, logs) under one directory the caller owns.
// The exception is envtest's webhook serving certificate, which envtest
// always puts in a directory of its own under $TMPDIR (removed by Stop).
//
// It is shared by the integration tests (test/cluster wraps it for
// testing.TB) and by `make demo` (hack/demo), so both run the control plane
// the same way. It never calls into testing: errors are returned, and Stop is
// the caller's to call.
//
// Children must not outlive the program that started them, however it ends:
// kube-controller-manager, and processes started with StartProcess, run in
// their own process group and, on Linux, get SIGKILL from the kernel when
// this program dies; etcd and kube-apiserver, which envtest starts without
// such a signal, are covered by a watchdog process (Linux only).
//
// There are no nodes, so pods never run; with the controller manager the
// StatefulSet controller still creates Pod and PersistentVolumeClaim objects.
package controlplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// DefaultStartTimeout bounds each component's start when
// Options.StartTimeout is zero.
const DefaultStartTimeout = 90 * time.Second

// ControllerManagerControllers are the kube-controller-manager controllers
// run when Options.ControllerManager is set: enough for a StatefulSet to get
// its Pods and PersistentVolumeClaims, for PVCs to be matched against PVs, for
// owned objects to be garbage-collected and for namespaces to be deleted
// (instead of staying Terminating). Anything more only costs start-up time
// and CPU: without nodes or a scheduler, most controllers have nothing to do.
var ControllerManagerControllers = []string{
	"statefulset-controller",
	"persistentvolume-binder-controller",
	"persistentvolume-protection-controller",
	"persistentvolumeclaim-protection-controller",
	"garbage-collector-controller",
	"namespace-controller",
}

// Options configures Start.
type Options struct {
	// Assets is the directory holding etcd, kube-apiserver and (with
	// ControllerManager) kube-controller-manager. See CheckAssets.
	Assets string
	// Dir must exist; Start writes everything under it: etcd/, apiserver/,
	// kcm/, *.kubeconfig and (by default) logs/. Removing it is the caller's
	// job, after Stop: Stop leaves it in place so that logs can be read.
	// Its path also marks this control plane's processes (see KillChildren),
	// so it should be unique, as os.MkdirTemp and testing's TempDir are.
	Dir string
	// LogDir receives etcd.log, kube-apiserver.log and
	// kube-controller-manager.log; it is created if need be. Default Dir/logs.
	LogDir string
	// ControllerManager also runs kube-controller-manager with
	// ControllerManagerControllers.
	ControllerManager bool
	// APIServerFlags are extra kube-apiserver flags, e.g.
	// {"enable-admission-plugins": "..."}; values replace envtest's.
	APIServerFlags map[string]string
	// Webhooks are webhook configurations for envtest to register during
	// Start, pointed at a local server with a CA and serving certificate of
	// envtest's (see ControlPlane.Webhooks). They are live, with their
	// failure policies, as soon as Start returns. To register them later,
	// or with a CA of your own, use InstallWebhooks instead.
	Webhooks envtest.WebhookInstallOptions
	// StartTimeout bounds each component's start (default
	// DefaultStartTimeout).
	StartTimeout time.Duration
}

// ControlPlane is a running control plane.
type ControlPlane struct {
	// Env is the envtest environment running etcd and kube-apiserver.
	Env *envtest.Environment
	// Config is a REST config for a cluster admin (group system:masters).
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file for the same admin, usable
	// with kubectl, helm or $KUBECONFIG.
	Kubeconfig string
	// Webhooks is envtest's state of Options.Webhooks after registration:
	// serve them on LocalServingHost:LocalServingPort with the certificate
	// in LocalServingCertDir (tls.crt, tls.key), which Stop removes. Never
	// nil; without Options.Webhooks there is just nothing registered.
	Webhooks *envtest.WebhookInstallOptions
	// Dir is Options.Dir; LogDir holds the component logs.
	Dir, LogDir string

	kcm    *Process
	logs   []*os.File
	pids   []int // envtest's processes (each leads its own process group)
	disarm func()
}

// Start starts etcd and kube-apiserver, registers Options.Webhooks, starts
// kube-controller-manager if asked, and returns once the API server serves
// requests and the controller manager reports healthy. On error, whatever was
// started is stopped again (Dir, with the logs, stays). ctx bounds the waits
// of Start itself; envtest's own start is bounded by StartTimeout only.
func Start(ctx context.Context, opts Options) (_ *ControlPlane, err error) {
	if opts.Dir == "" {
		return nil, errors.New("controlplane: Options.Dir is required")
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	if opts.LogDir == "" {
		opts.LogDir = filepath.Join(opts.Dir, "logs")
	}
	if err := CheckAssets(opts.Assets, opts.ControllerManager); err != nil {
		return nil, err
	}
	c := &ControlPlane{Dir: opts.Dir, LogDir: opts.LogDir, disarm: func() {}}
	defer func() {
		if err != nil {
			_ = c.Stop()
		}
	}()
	for _, d := range []string{c.LogDir, filepath.Join(opts.Dir, "etcd"), filepath.Join(opts.Dir, "apiserver")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	apiLog, err := c.logFile("kube-apiserver.log")
	if err != nil {
		return nil, err
	}
	etcdLog, err := c.logFile("etcd.log")
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    opts.Assets,
		WebhookInstallOptions:    opts.Webhooks,
		ControlPlaneStartTimeout: opts.StartTimeout,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	api := env.ControlPlane.GetAPIServer()
	api.Out, api.Err = apiLog, apiLog
	// Under Dir rather than envtest's own temp dirs: the path then marks the
	// processes for the watchdog and KillChildren, and nothing is left in
	// $TMPDIR if this program is killed.
	api.CertDir = filepath.Join(opts.Dir, "apiserver")
	env.ControlPlane.Etcd = &envtest.Etcd{Out: etcdLog, Err: etcdLog, DataDir: filepath.Join(opts.Dir, "etcd")}
	for k, v := range opts.APIServerFlags {
		api.Configure().Set(k, v)
	}
	cfg, err := env.Start()
	c.Env = env // envtest may have started part of the control plane even on error
	if err != nil {
		return nil, fmt.Errorf("starting etcd and kube-apiserver (logs in %s): %w", c.LogDir, err)
	}
	c.Config, c.Webhooks = cfg, &env.WebhookInstallOptions
	// envtest starts its processes without a parent-death signal: if this
	// program dies without calling Stop, a watchdog kills them.
	c.pids = childrenMatching(opts.Dir)
	c.disarm = startReaper(c.pids)

	if c.Kubeconfig, _, err = c.AddUser("admin", "system:masters"); err != nil {
		return nil, err
	}
	if opts.ControllerManager {
		if err := c.startControllerManager(ctx, opts); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// CheckAssets reports an error naming the first binary Start needs that is
// not an executable file in dir: etcd and kube-apiserver, and
// kube-controller-manager if controllerManager is set.
func CheckAssets(dir string, controllerManager bool) error {
	if dir == "" {
		return errors.New("no directory of control-plane binaries given")
	}
	bins := []string{"etcd", "kube-apiserver"}
	if controllerManager {
		bins = append(bins, "kube-controller-manager")
	}
	for _, bin := range bins {
		if !isExecutable(filepath.Join(dir, bin)) {
			return fmt.Errorf("no executable %s in %s", bin, dir)
		}
	}
	return nil
}

// AddUser provisions a user of the given groups and writes a kubeconfig for
// it to Dir/<name>.kubeconfig (":" in the name becomes "-"), returning its
// path and a REST config for the same user.
func (c *ControlPlane) AddUser(name string, groups ...string) (kubeconfig string, cfg *rest.Config, err error) {
	u, err := c.Env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return "", nil, fmt.Errorf("adding user %s: %w", name, err)
	}
	data, err := u.KubeConfig()
	if err != nil {
		return "", nil, fmt.Errorf("building kubeconfig for %s: %w", name, err)
	}
	path := filepath.Join(c.Dir, strings.ReplaceAll(name, ":", "-")+".kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", nil, err
	}
	return path, u.Config(), nil
}

// ControllerManagerLog returns the path of kube-controller-manager's log, or
// "" if it does not run.
func (c *ControlPlane) ControllerManagerLog() string {
	if c.kcm == nil {
		return ""
	}
	return c.kcm.LogPath
}

// startControllerManager runs kube-controller-manager as a system:masters
// user and waits for its /healthz.
func (c *ControlPlane) startControllerManager(ctx context.Context, opts Options) error {
	kubeconfig, _, err := c.AddUser("system:kube-controller-manager", "system:masters")
	if err != nil {
		return err
	}
	port, err := FreePort()
	if err != nil {
		return fmt.Errorf("picking a port for kube-controller-manager: %w", err)
	}
	certDir := filepath.Join(c.Dir, "kcm")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return err
	}
	c.kcm, err = StartProcess("kube-controller-manager", filepath.Join(opts.Assets, "kube-controller-manager"),
		controllerManagerArgs(kubeconfig, certDir, port), filepath.Join(c.LogDir, "kube-controller-manager.log"))
	if err != nil {
		return err
	}
	// Its serving certificate is self-signed and /healthz needs no
	// credentials; this only checks that it is up.
	hc := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // local health check
	}
	defer hc.CloseIdleConnections()
	return c.kcm.WaitHealthy(ctx, hc, fmt.Sprintf("https://127.0.0.1:%d/healthz", port), opts.StartTimeout)
}

// controllerManagerArgs are kube-controller-manager's flags: authenticated
// with kubeconfig for everything, serving /healthz on 127.0.0.1:port with a
// self-signed certificate written to certDir.
func controllerManagerArgs(kubeconfig, certDir string, port int) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		// envtest's apiserver publishes no request-header CA; looking it up
		// only fills the log with errors.
		"--authentication-skip-lookup=true",
		"--controllers=" + strings.Join(ControllerManagerControllers, ","),
		// One instance: waiting for a lease would only delay the start.
		"--leader-elect=false",
		// Controllers act with the kubeconfig's system:masters credentials
		// rather than per-controller service-account tokens: nothing here
		// needs that separation, and it is one less thing to set up.
		"--use-service-account-credentials=false",
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + certDir,
		// The client-side defaults (20 qps) throttle a controller manager
		// that tests drive with bursts of objects.
		"--kube-api-qps=200",
		"--kube-api-burst=400",
		// Twice the default workers, for tests that create several
		// StatefulSets at once.
		"--concurrent-statefulset-syncs=10",
		"--v=2",
	}
}

// Stop stops kube-controller-manager, then kube-apiserver and etcd, each
// gracefully (SIGTERM, then SIGKILL after a grace period), and removes
// envtest's webhook serving certificates. It leaves Dir in place. The error
// tells of anything that had to be killed or failed to stop. Safe to call
// more than once, not concurrently with itself.
func (c *ControlPlane) Stop() error {
	var errs []error
	if c.kcm != nil {
		errs = append(errs, c.kcm.Stop(10*time.Second))
	}
	if c.Env != nil {
		errs = append(errs, c.Env.Stop())
	}
	c.disarm()
	c.disarm = func() {}
	for _, f := range c.logs {
		_ = f.Close()
	}
	c.logs = nil
	return errors.Join(errs...)
}

// Kill SIGKILLs every component at once, for when there is no time for Stop
// (a second Ctrl-C). It may be called while Stop runs in another goroutine.
func (c *ControlPlane) Kill() {
	if c.kcm != nil {
		c.kcm.Kill()
	}
	for _, pid := range c.pids {
		killGroup(pid)
	}
}

func (c *ControlPlane) logFile(name string) (*os.File, error) {
	f, err := os.Create(filepath.Join(c.LogDir, name))
	if err != nil {
		return nil, err
	}
	c.logs = append(c.logs, f)
	return f, nil
}

// KillChildren SIGKILLs the process groups of this program's children whose
// command line contains mark (Linux only; elsewhere a no-op). With mark the
// Dir given to Start, that is every component, whether or not Start has
// returned yet: it is how an interrupted Start is cleaned up.
func KillChildren(mark string) {
	if mark == "" {
		return
	}
	for _, pid := range childrenMatching(mark) {
		killGroup(pid)
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func poll(ctx context.Context, timeout time.Duration, cond wait.ConditionWithContextFunc) error {
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, cond)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}
