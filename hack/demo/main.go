// Command demo shows stateguard at work on a local control plane: it starts
// etcd, kube-apiserver and kube-controller-manager, runs `stateguard serve`
// with a freshly generated CA and serving certificate, registers the webhook
// configurations rendered from the Helm chart, and walks through the
// manifests in examples/ with kubectl (a mutation, a denial, warnings). Then
// it waits for Ctrl-C, and stops and removes everything.
//
//	make demo
//
// runs it with the binaries the Makefile builds; by hand:
//
//	go run ./hack/demo --assets bin/k8s/<version> --helm bin/helm/<version>/helm --stateguard bin/stateguard
//
// Everything it writes (etcd data, certificates, kubeconfigs, logs) lives in
// one temporary directory, removed on exit. Children run in their own process
// groups, so a Ctrl-C reaches only the demo, which stops them in order
// (webhook, kube-controller-manager, kube-apiserver, etcd); a second Ctrl-C
// kills them at once.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/stateguard/stateguard/internal/controlplane"
)

type options struct {
	assets, helm, kubectl, stateguard, examples, chart string
	keepRunning                                        bool
}

func main() {
	var o options
	flag.StringVar(&o.assets, "assets", os.Getenv("KUBEBUILDER_ASSETS"), "directory with etcd, kube-apiserver and kube-controller-manager (`make k8s-assets`; default $KUBEBUILDER_ASSETS)")
	flag.StringVar(&o.helm, "helm", envOr("HELM", "helm"), "helm binary (`make helm`; default $HELM, else helm on PATH)")
	flag.StringVar(&o.kubectl, "kubectl", envOr("KUBECTL", "kubectl"), "kubectl binary (default $KUBECTL, else kubectl on PATH)")
	flag.StringVar(&o.stateguard, "stateguard", "bin/stateguard", "stateguard binary (`make build`)")
	flag.StringVar(&o.examples, "examples", "examples", "directory of the example manifests")
	flag.StringVar(&o.chart, "chart", "charts/stateguard", "the stateguard Helm chart, whose webhook configurations are registered")
	flag.BoolVar(&o.keepRunning, "keep-running", true, "after the walkthrough, keep the cluster running until Ctrl-C (false: stop and exit)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: %s [flags]\n\nRuns stateguard's webhooks on a local control plane and applies examples/ with kubectl.\n\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	os.Exit(run(o))
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// run returns the exit status: 0 once the walkthrough completed (also when
// stopped with Ctrl-C afterwards), 1 on failure, 2 on bad flags or missing
// binaries, 130 if interrupted before the walkthrough completed.
func run(o options) int {
	if err := o.check(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := newDemo(o, os.Stdout)

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		d.interrupted(s)
		cancel()
		<-sigs
		d.kill()
		os.Exit(130)
	}()

	err := d.run(ctx)
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "\ndemo: %v\n", err)
		d.dumpLogs(os.Stderr)
	}
	if cerr := d.cleanup(); cerr != nil {
		fmt.Fprintln(os.Stderr, "demo: cleaning up:", cerr)
		if err == nil {
			err = cerr
		}
	}
	switch {
	case err == nil:
		return 0
	case ctx.Err() != nil: // interrupted
		if d.completed {
			return 0
		}
		return 130
	default:
		return 1
	}
}

// check resolves the binaries and fails early, with what to run, when one
// is missing.
func (o *options) check() error {
	var problems []string
	if o.assets == "" {
		problems = append(problems, "--assets is not set (nor KUBEBUILDER_ASSETS): run `make demo`, or `make k8s-assets` and pass --assets bin/k8s/<version>")
	} else if err := controlplane.CheckAssets(o.assets, true); err != nil {
		problems = append(problems, fmt.Sprintf("--assets: %v: run `make k8s-assets`", err))
	}
	resolve := func(flagName string, p *string, hint string) {
		path, err := exec.LookPath(*p)
		if err != nil {
			problems = append(problems, fmt.Sprintf("--%s %s: %v (%s)", flagName, *p, err, hint))
			return
		}
		*p = path
	}
	resolve("helm", &o.helm, "`make helm` builds bin/helm/<version>/helm")
	resolve("kubectl", &o.kubectl, "install kubectl, or pass --kubectl")
	if !isExecutable(o.stateguard) {
		problems = append(problems, fmt.Sprintf("--stateguard %s is not an executable: run `make build`", o.stateguard))
	}
	if fi, err := os.Stat(filepath.Join(o.chart, "Chart.yaml")); err != nil || fi.IsDir() {
		problems = append(problems, fmt.Sprintf("--chart %s is not a Helm chart (run from the repository root)", o.chart))
	}
	for _, name := range exampleFiles {
		if _, err := os.Stat(filepath.Join(o.examples, name)); err != nil {
			problems = append(problems, fmt.Sprintf("--examples %s: %v (run from the repository root)", o.examples, err))
			break
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n  "))
	}
	return nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}
