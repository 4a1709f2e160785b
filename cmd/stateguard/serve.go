package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/stateguard/stateguard/internal/config"
	"github.com/stateguard/stateguard/webhook"
)

func newServeCommand() *cobra.Command {
	var (
		configPath, certDir, metricsAddr, probeAddr, kubeconfig, logFormat string
		port                                                               int
		grace, delay                                                       time.Duration
	)
	c := &cobra.Command{
		Use:   "serve",
		Short: "Serve the mutating and validating admission webhooks",
		Long: `Serve runs the admission webhooks the API server calls on every StatefulSet
write (mutate, then validate) and on Service updates and deletes (the guard
that keeps StatefulSets' headless Services in place):

  /mutate-apps-v1-statefulset   /validate-apps-v1-statefulset   /validate-v1-service

TLS comes from --cert-dir (tls.crt, tls.key), reloaded when the files change,
so cert-manager can rotate them without a restart. Lookups come from informer
caches of Services, StorageClasses, Namespaces and StatefulSets; /readyz turns
ready once TLS is served and those caches are synced. On SIGTERM it turns
unready, keeps serving for --shutdown-delay while endpoints drop the pod, lets
in-flight reviews finish (up to --shutdown-grace) and exits.

It speaks HTTP/1.1 over TLS 1.2 or later only. A review's body may be 7 MiB
and must arrive within 30s of its headers (the longest timeout the API server
allows a webhook); slower ones are denied. See docs/security.md for the rest
of the threat model.`,
		Example: `  # In a cluster (the Helm chart runs it this way)
  stateguard serve --config /etc/stateguard/config.yaml --cert-dir /certs

  # Locally, against the cluster in ~/.kube/config
  stateguard serve --kubeconfig ~/.kube/config --cert-dir ./certs --port 9443`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			logger, err := newLogger(logFormat)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			ctrl.SetLogger(logger)
			engine, err := config.Load(config.Options{Path: configPath})
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			restConfig, err := restConfig(kubeconfig)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			return webhook.Run(ctrl.SetupSignalHandler(), webhook.Options{
				Engine: engine, RestConfig: restConfig, CertDir: certDir, Port: port,
				MetricsAddr: metricsAddr, ProbeAddr: probeAddr, ShutdownGrace: grace, ShutdownDelay: delay,
			})
		},
	}
	f := c.Flags()
	f.StringVar(&configPath, "config", "", "PolicyConfig file (default: the built-in aks profile)")
	f.StringVar(&certDir, "cert-dir", "/tmp/k8s-webhook-server/serving-certs", "directory with tls.crt and tls.key")
	f.IntVar(&port, "port", 9443, "HTTPS port of the webhooks")
	f.StringVar(&metricsAddr, "metrics-bind-address", ":8080", `address of /metrics ("0" disables it)`)
	f.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster config, else $KUBECONFIG or ~/.kube/config)")
	f.DurationVar(&delay, "shutdown-delay", 5*time.Second, "how long to keep serving, unready, after SIGTERM, so endpoints drop the pod first")
	f.DurationVar(&grace, "shutdown-grace", 20*time.Second, "how long in-flight reviews may take to finish on shutdown")
	f.StringVar(&logFormat, "log-format", "json", "log format: json or text")
	return c
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	return ctrl.GetConfig()
}

func newLogger(format string) (logr.Logger, error) {
	switch format {
	case "json":
		return logr.FromSlogHandler(slog.NewJSONHandler(os.Stderr, nil)), nil
	case "text":
		return logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, nil)), nil
	}
	return logr.Logger{}, fmt.Errorf("--log-format %q: use json or text", format)
}
