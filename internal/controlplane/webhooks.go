package controlplane

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"path"
	"strings"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// RenderChartWebhooks renders the chart's webhook configurations the way the
// e2e test does: `helm template <release> <chart> --namespace <namespace>
// --show-only templates/webhooks.yaml [--set s]...`, expecting exactly one
// MutatingWebhookConfiguration and one ValidatingWebhookConfiguration.
func RenderChartWebhooks(ctx context.Context, helm, chart, release, namespace string, set ...string) (envtest.WebhookInstallOptions, error) {
	var opts envtest.WebhookInstallOptions
	args := []string{"template", release, chart, "--namespace", namespace, "--show-only", "templates/webhooks.yaml"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, helm, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return opts, fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	for _, doc := range strings.Split(stdout.String(), "\n---") {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			return opts, fmt.Errorf("decoding helm template output: %w", err)
		}
		switch meta.Kind {
		case "MutatingWebhookConfiguration":
			obj := &admissionv1.MutatingWebhookConfiguration{}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				return opts, fmt.Errorf("decoding %s: %w", meta.Kind, err)
			}
			opts.MutatingWebhooks = append(opts.MutatingWebhooks, obj)
		case "ValidatingWebhookConfiguration":
			obj := &admissionv1.ValidatingWebhookConfiguration{}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				return opts, fmt.Errorf("decoding %s: %w", meta.Kind, err)
			}
			opts.ValidatingWebhooks = append(opts.ValidatingWebhooks, obj)
		}
	}
	if len(opts.MutatingWebhooks) != 1 || len(opts.ValidatingWebhooks) != 1 {
		return opts, fmt.Errorf("the chart rendered %d MutatingWebhookConfigurations and %d ValidatingWebhookConfigurations, want one of each",
			len(opts.MutatingWebhooks), len(opts.ValidatingWebhooks))
	}
	return opts, nil
}

// InstallWebhooks registers the configurations in opts with the API server,
// each clientConfig.service rewritten by envtest into
// https://<LocalServingHost>:<LocalServingPort><path> with caBundle
// LocalServingCAData (which must be set: this uses the caller's CA, not
// envtest's), and waits until the API server serves them.
func InstallWebhooks(cfg *rest.Config, opts *envtest.WebhookInstallOptions) error {
	if len(opts.LocalServingCAData) == 0 || opts.LocalServingPort == 0 || opts.LocalServingHost == "" {
		return fmt.Errorf("InstallWebhooks needs LocalServingCAData, LocalServingHost and LocalServingPort")
	}
	if err := opts.ModifyWebhookDefinitions(); err != nil {
		return err
	}
	// envtest joins host and path with a "/" although the path starts with
	// one; the API server cleans it, but the registered URL reads better clean.
	for _, hook := range opts.MutatingWebhooks {
		for i := range hook.Webhooks {
			cleanURL(&hook.Webhooks[i].ClientConfig)
		}
	}
	for _, hook := range opts.ValidatingWebhooks {
		for i := range hook.Webhooks {
			cleanURL(&hook.Webhooks[i].ClientConfig)
		}
	}
	if err := opts.Install(cfg); err != nil {
		return fmt.Errorf("registering the webhook configurations: %w", err)
	}
	return nil
}

func cleanURL(cc *admissionv1.WebhookClientConfig) {
	if cc.URL == nil {
		return
	}
	u, err := url.Parse(*cc.URL)
	if err != nil {
		return
	}
	u.Path = path.Clean(u.Path)
	s := u.String()
	cc.URL = &s
}
