package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/stateguard/stateguard/internal/controlplane"
)

// As the chart's install would be: release stateguard in stateguard-system.
const (
	release          = "stateguard"
	releaseNamespace = "stateguard-system"
)

type demo struct {
	o   options
	out io.Writer

	mu         sync.Mutex // guards the fields below against the signal handler
	dir        string
	cp         *controlplane.ControlPlane
	server     *controlplane.Process
	completed  bool
	kubeconfig string
	metrics    string
}

func newDemo(o options, out io.Writer) *demo {
	// envtest logs through controller-runtime's logger; unset, it complains
	// on stderr.
	ctrllog.SetLogger(logr.Discard())
	return &demo{o: o, out: out}
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "==> "+format+"\n", args...)
}

func (d *demo) detail(format string, args ...any) {
	fmt.Fprintf(d.out, "    "+format+"\n", args...)
}

// run brings everything up, walks through the examples and, with
// --keep-running, waits for ctx to end. Stopping is cleanup's job.
func (d *demo) run(ctx context.Context) error {
	fmt.Fprintln(d.out, "stateguard demo: the admission webhooks on a local control plane, tried with kubectl")
	fmt.Fprintln(d.out)

	dir, err := os.MkdirTemp("", "stateguard-demo-")
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.dir = dir
	d.mu.Unlock()

	d.say("Rendering the chart's webhook configurations")
	render := controlplane.ChartRender{Helm: d.o.helm, Chart: d.o.chart, Release: release, Namespace: releaseNamespace}
	d.detail("helm %s", strings.Join(render.Args(), " "))
	hooks, err := controlplane.RenderChartWebhooks(ctx, render)
	if err != nil {
		return err
	}

	d.say("Starting etcd, kube-apiserver and kube-controller-manager from %s", d.o.assets)
	begin := time.Now()
	cp, err := controlplane.Start(ctx, controlplane.Options{Assets: d.o.assets, Dir: dir, ControllerManager: true})
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.cp, d.kubeconfig = cp, cp.Kubeconfig
	d.mu.Unlock()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	d.detail("ready in %s: API server %s", time.Since(begin).Round(100*time.Millisecond), cp.Config.Host)

	certDir := filepath.Join(dir, "webhook-certs")
	d.say("Generating a CA and a serving certificate for 127.0.0.1 (standard library, ECDSA P-256, valid 24h)")
	caPEM, err := writeWebhookCerts(certDir, []net.IP{net.IPv4(127, 0, 0, 1)}, []string{"localhost"})
	if err != nil {
		return fmt.Errorf("generating certificates: %w", err)
	}
	d.detail("%s/{ca.crt,tls.crt,tls.key}", certDir)

	port, err := controlplane.FreePort()
	if err != nil {
		return err
	}
	if err := d.startServer(ctx, certDir, port); err != nil {
		return err
	}

	d.say("Registering the webhooks: the chart's configurations, clientConfig pointed at https://127.0.0.1:%d with the demo CA as caBundle", port)
	hooks.LocalServingHost, hooks.LocalServingPort = "127.0.0.1", port
	hooks.LocalServingCertDir, hooks.LocalServingCAData = certDir, caPEM
	if err := controlplane.InstallWebhooks(cp.Config, &hooks); err != nil {
		return err
	}
	for _, h := range hooks.MutatingWebhooks {
		d.detail("MutatingWebhookConfiguration %s", h.Name)
		for _, w := range h.Webhooks {
			d.detail("  %-38s %s  (failurePolicy %s)", w.Name, deref(w.ClientConfig.URL), deref((*string)(w.FailurePolicy)))
		}
	}
	for _, h := range hooks.ValidatingWebhooks {
		d.detail("ValidatingWebhookConfiguration %s", h.Name)
		for _, w := range h.Webhooks {
			d.detail("  %-38s %s  (failurePolicy %s)", w.Name, deref(w.ClientConfig.URL), deref((*string)(w.FailurePolicy)))
		}
	}
	fmt.Fprintln(d.out)

	if err := d.walkthrough(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	d.completed = true
	d.mu.Unlock()

	if !d.o.keepRunning {
		d.say("Walkthrough done (--keep-running=false)")
		return nil
	}
	d.tryIt()
	select {
	case <-ctx.Done():
		return nil
	case <-d.server.Done():
		return fmt.Errorf("stateguard serve exited: %v (log: %s)", d.server.Err(), d.server.LogPath)
	}
}

// startServer runs `stateguard serve` as the chart would, but against the
// local API server, and waits for /readyz.
func (d *demo) startServer(ctx context.Context, certDir string, port int) error {
	probePort, err := controlplane.FreePort()
	if err != nil {
		return err
	}
	metricsPort, err := controlplane.FreePort()
	if err != nil {
		return err
	}
	probe := fmt.Sprintf("127.0.0.1:%d", probePort)
	metrics := fmt.Sprintf("127.0.0.1:%d", metricsPort)
	args := []string{"serve",
		"--kubeconfig", d.kubeconfig,
		"--cert-dir", certDir,
		"--port", fmt.Sprint(port),
		"--health-probe-bind-address", probe,
		"--metrics-bind-address", metrics,
		"--log-format", "text",
		// No endpoints to drain here: stop at once on Ctrl-C.
		"--shutdown-delay", "0s",
		"--shutdown-grace", "5s",
	}
	d.say("Starting the webhook")
	d.detail("%s %s", d.o.stateguard, strings.Join(args, " "))
	begin := time.Now()
	srv, err := controlplane.StartProcess("stateguard serve", d.o.stateguard, args, filepath.Join(d.dir, "logs", "stateguard.log"))
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.server, d.metrics = srv, metrics
	d.mu.Unlock()
	hc := &http.Client{Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	if err := srv.WaitHealthy(ctx, hc, "http://"+probe+"/readyz", 60*time.Second); err != nil {
		return err
	}
	d.detail("ready in %s (/readyz: TLS served, caches synced)", time.Since(begin).Round(100*time.Millisecond))
	return nil
}

// tryIt tells how to go on with kubectl while the cluster runs.
func (d *demo) tryIt() {
	kc := "KUBECONFIG=" + d.kubeconfig
	good := filepath.Join(d.o.examples, "01-good.yaml")
	lines := [][2]string{
		{"export " + kc, ""},
		{"kubectl get statefulsets,pvc -A -L " + scheduleLabel, ""},
		{"kubectl label statefulset db " + scheduleLabel + "-", "denied: removing the schedule"},
		{"kubectl delete service db", "denied: StatefulSet db needs it"},
		{"kubectl apply -f " + good, "re-applying is fine"},
		{"curl -s http://" + d.metrics + "/metrics | grep ^stateguard_", ""},
	}
	width := 0
	for _, l := range lines {
		if l[1] != "" {
			width = max(width, len(l[0]))
		}
	}
	fmt.Fprintln(d.out, "==> The cluster keeps running. Try it yourself, from another terminal:")
	fmt.Fprintln(d.out)
	for _, l := range lines {
		if l[1] == "" {
			fmt.Fprintf(d.out, "    %s\n", l[0])
		} else {
			fmt.Fprintf(d.out, "    %-*s  # %s\n", width, l[0], l[1])
		}
	}
	fmt.Fprintf(d.out, `
    or in one line:
    %s kubectl get statefulsets -A

    Offline, the same verdicts:
    %s check %s
    %s mutate --diff %s

    Logs: %s (stateguard.log, kube-apiserver.log, ...)

==> Press Ctrl-C to stop the webhook and the control plane and remove %s
`, kc, d.o.stateguard, dirArg(d.o.examples), d.o.stateguard, good, filepath.Join(d.dir, "logs"), d.dir)
}

// interrupted is called on the first SIGINT/SIGTERM/SIGHUP.
func (d *demo) interrupted(s os.Signal) {
	fmt.Fprintf(d.out, "\n==> Got %s: stopping (again to kill everything at once)\n", s)
}

// cleanup stops the webhook, kube-controller-manager, kube-apiserver and
// etcd, in that order, and removes the demo's directory.
func (d *demo) cleanup() error {
	d.mu.Lock()
	dir, cp, srv := d.dir, d.cp, d.server
	d.mu.Unlock()
	if dir == "" {
		return nil
	}
	begin := time.Now()
	d.say("Stopping stateguard serve, kube-controller-manager, kube-apiserver and etcd")
	var errs []error
	if srv != nil {
		errs = append(errs, srv.Stop(30*time.Second))
	}
	if cp != nil {
		errs = append(errs, cp.Stop())
	}
	// Anything Start had begun when interrupted.
	controlplane.KillChildren(dir)
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, err)
	}
	d.say("Stopped in %s; removed %s", time.Since(begin).Round(100*time.Millisecond), dir)
	return errors.Join(errs...)
}

// kill is the second Ctrl-C: SIGKILL everything and remove the directory.
func (d *demo) kill() {
	d.mu.Lock()
	dir, cp, srv := d.dir, d.cp, d.server
	d.mu.Unlock()
	if srv != nil {
		srv.Kill()
	}
	if cp != nil {
		cp.Kill()
	}
	controlplane.KillChildren(dir)
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
	fmt.Fprintf(d.out, "==> Killed; removed %s\n", dir)
}

// dumpLogs prints the end of each component's log, after a failure (the
// directory is removed on exit).
func (d *demo) dumpLogs(w io.Writer) {
	d.mu.Lock()
	dir := d.dir
	d.mu.Unlock()
	if dir == "" {
		return
	}
	controlplane.WriteLogTails(w, filepath.Join(dir, "logs"), 30)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
