// Package controlplane starts a local Kubernetes control plane (etcd +
// kube-apiserver through controller-runtime's envtest, and optionally
// kube-controller-manager as a child process) outside of tests, with every
// file it writes (etcd data, certificates, kubeconfigs, logs) under one
// directory the caller owns.
//
// It is what test/cluster does for tests, minus testing.TB: errors are
// returned and Stop is the caller's to call. It lives under hack/demo for now;
// moved to internal/controlplane, test/cluster could become a thin TB wrapper
// around it.
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

// ControllerManagerControllers are the kube-controller-manager controllers
// run when Options.ControllerManager is set: enough for a StatefulSet to get
// its Pods and PersistentVolumeClaims, for PVCs to be matched against PVs, for
// owned objects to be garbage-collected and for namespaces to be deleted.
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
	// ControllerManager) kube-controller-manager.
	Assets string
	// Dir must exist; Start writes everything under it: etcd/, apiserver/,
	// kcm/, logs/ and *.kubeconfig. Removing it is the caller's job, after Stop.
	Dir string
	// ControllerManager also runs kube-controller-manager with
	// ControllerManagerControllers.
	ControllerManager bool
	// APIServerFlags are extra kube-apiserver flags; values replace envtest's.
	APIServerFlags map[string]string
	// StartTimeout bounds each component's start (default 90s).
	StartTimeout time.Duration
}

// ControlPlane is a running control plane.
type ControlPlane struct {
	// Env is the envtest environment running etcd and kube-apiserver.
	Env *envtest.Environment
	// Config is a REST config for a cluster admin (group system:masters).
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file for the same admin.
	Kubeconfig string
	// Dir and LogDir (Dir/logs) hold the component files and logs.
	Dir, LogDir string

	kcm    *Process
	logs   []*os.File
	pids   []int // envtest's processes (own process groups)
	disarm func()
}

// Start starts etcd and kube-apiserver, and kube-controller-manager if asked,
// and returns once the API server serves requests and the controller manager
// reports healthy. On error, whatever was started is stopped again. ctx only
// bounds the waits of Start itself.
func Start(ctx context.Context, opts Options) (_ *ControlPlane, err error) {
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 90 * time.Second
	}
	for _, bin := range requiredBinaries(opts) {
		if !isExecutable(filepath.Join(opts.Assets, bin)) {
			return nil, fmt.Errorf("no executable %s in %s", bin, opts.Assets)
		}
	}
	c := &ControlPlane{Dir: opts.Dir, LogDir: filepath.Join(opts.Dir, "logs"), disarm: func() {}}
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
		ControlPlaneStartTimeout: opts.StartTimeout,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	api := env.ControlPlane.GetAPIServer()
	api.Out, api.Err = apiLog, apiLog
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
	c.Config = cfg
	// envtest starts its processes without a parent-death signal: if this
	// process dies without calling Stop, a watchdog kills them.
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

func requiredBinaries(opts Options) []string {
	bins := []string{"etcd", "kube-apiserver"}
	if opts.ControllerManager {
		bins = append(bins, "kube-controller-manager")
	}
	return bins
}

// AddUser provisions a user of the given groups and writes a kubeconfig for
// it to Dir/<name>.kubeconfig (":" in the name becomes "-").
func (c *ControlPlane) AddUser(name string, groups ...string) (string, *rest.Config, error) {
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
		"--v=2",
	}
	c.kcm, err = StartProcess("kube-controller-manager", filepath.Join(opts.Assets, "kube-controller-manager"), args,
		filepath.Join(c.LogDir, "kube-controller-manager.log"))
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

// Stop stops kube-controller-manager, then kube-apiserver and etcd, each
// gracefully (SIGTERM, then SIGKILL after a grace period). It leaves Dir in
// place. Safe to call more than once.
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

// Kill SIGKILLs every component at once, for when there is no time for Stop.
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

// KillChildren SIGKILLs the process groups of this program's children whose
// command line contains mark (Linux only; elsewhere a no-op). With mark the
// directory given to Start, that is every component, whether or not Start
// has returned yet.
func KillChildren(mark string) {
	if mark == "" {
		return
	}
	for _, pid := range childrenMatching(mark) {
		killGroup(pid)
	}
}
