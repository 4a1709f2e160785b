package controlplane

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os/exec"
	"path"
	"strings"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// ChartWebhooksTemplate is the chart template holding the webhook
// configurations, and nothing else (so the tests and the demo register
// exactly what the chart installs).
const ChartWebhooksTemplate = "templates/webhooks.yaml"

// ChartRender says how to render the chart's webhook configurations.
type ChartRender struct {
	// Helm is the helm binary.
	Helm string
	// Chart is the chart's directory (charts/stateguard).
	Chart string
	// Release and Namespace are the release name and namespace the chart is
	// rendered for, as `helm install <Release> -n <Namespace>` would.
	Release, Namespace string
	// Set are --set arguments, passed in order.
	Set []string
}

// Args returns helm's arguments: `template <Release> <Chart> --namespace
// <Namespace> --show-only templates/webhooks.yaml [--set s]...`.
func (r ChartRender) Args() []string {
	args := []string{"template", r.Release, r.Chart, "--namespace", r.Namespace, "--show-only", ChartWebhooksTemplate}
	for _, s := range r.Set {
		args = append(args, "--set", s)
	}
	return args
}

// RenderChartWebhooks runs `helm` with r.Args() and decodes its output with
// DecodeChartWebhooks. helm's stderr (warnings) is kept out of the decoding
// and shown in the error if helm fails.
func RenderChartWebhooks(ctx context.Context, r ChartRender) (envtest.WebhookInstallOptions, error) {
	if r.Helm == "" || r.Chart == "" || r.Release == "" || r.Namespace == "" {
		return envtest.WebhookInstallOptions{}, errors.New("RenderChartWebhooks needs Helm, Chart, Release and Namespace")
	}
	args := r.Args()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, r.Helm, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return envtest.WebhookInstallOptions{}, fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	opts, err := DecodeChartWebhooks(stdout.Bytes())
	if err != nil {
		return opts, fmt.Errorf("helm %s: %w", strings.Join(args, " "), err)
	}
	return opts, nil
}

// DecodeChartWebhooks decodes a rendering of templates/webhooks.yaml, a
// stream of YAML documents, each strictly (an unknown or duplicate field is
// an error, so a typo in the chart cannot go unnoticed). It must hold exactly
// one MutatingWebhookConfiguration and one ValidatingWebhookConfiguration of
// admissionregistration.k8s.io/v1 and no other object; empty documents are
// skipped. Only MutatingWebhooks and ValidatingWebhooks are set in the result.
func DecodeChartWebhooks(manifest []byte) (envtest.WebhookInstallOptions, error) {
	var opts envtest.WebhookInstallOptions
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(manifest)))
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return opts, fmt.Errorf("reading document %d: %w", i, err)
		}
		var meta struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return opts, fmt.Errorf("decoding document %d: %w", i, err)
		}
		if meta.APIVersion == "" && meta.Kind == "" {
			continue // only comments, or nothing
		}
		if meta.APIVersion != admissionv1.SchemeGroupVersion.String() {
			return opts, fmt.Errorf("document %d: %s %s, want only %s objects", i, meta.APIVersion, meta.Kind, admissionv1.SchemeGroupVersion)
		}
		switch meta.Kind {
		case "MutatingWebhookConfiguration":
			obj := &admissionv1.MutatingWebhookConfiguration{}
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				return opts, fmt.Errorf("decoding %s (document %d): %w", meta.Kind, i, err)
			}
			opts.MutatingWebhooks = append(opts.MutatingWebhooks, obj)
		case "ValidatingWebhookConfiguration":
			obj := &admissionv1.ValidatingWebhookConfiguration{}
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				return opts, fmt.Errorf("decoding %s (document %d): %w", meta.Kind, i, err)
			}
			opts.ValidatingWebhooks = append(opts.ValidatingWebhooks, obj)
		default:
			return opts, fmt.Errorf("document %d: unexpected %s in the webhook configurations", i, meta.Kind)
		}
	}
	if len(opts.MutatingWebhooks) != 1 || len(opts.ValidatingWebhooks) != 1 {
		return opts, fmt.Errorf("%d MutatingWebhookConfigurations and %d ValidatingWebhookConfigurations, want one of each",
			len(opts.MutatingWebhooks), len(opts.ValidatingWebhooks))
	}
	return opts, nil
}

// InstallWebhooks registers the configurations in opts with the API server,
// each clientConfig.service rewritten by envtest into
// https://<LocalServingHost>:<LocalServingPort><path> with caBundle
// LocalServingCAData (which must be set: this uses the caller's CA, not
// envtest's), and waits until the API server serves them. For envtest's own
// CA and certificate, pass the configurations as Options.Webhooks instead.
func InstallWebhooks(cfg *rest.Config, opts *envtest.WebhookInstallOptions) error {
	if len(opts.LocalServingCAData) == 0 || opts.LocalServingPort == 0 || opts.LocalServingHost == "" {
		return errors.New("InstallWebhooks needs LocalServingCAData, LocalServingHost and LocalServingPort")
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
