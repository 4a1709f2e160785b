package controlplane

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// helmOutput is what `helm template ... --show-only templates/webhooks.yaml`
// prints, shortened: a leading separator, "# Source:" comments, one
// configuration of each kind.
var helmOutput = func() string {
	data, err := os.ReadFile(filepath.Join("testdata", "webhooks.yaml"))
	if err != nil {
		panic(err)
	}
	return string(data)
}()

func TestDecodeChartWebhooks(t *testing.T) {
	opts, err := DecodeChartWebhooks([]byte(helmOutput))
	if err != nil {
		t.Fatal(err)
	}
	if len(opts.MutatingWebhooks) != 1 || len(opts.ValidatingWebhooks) != 1 {
		t.Fatalf("got %d mutating and %d validating configurations, want 1 each", len(opts.MutatingWebhooks), len(opts.ValidatingWebhooks))
	}
	m, v := opts.MutatingWebhooks[0], opts.ValidatingWebhooks[0]
	if m.Name != "stateguard" || len(m.Webhooks) != 1 || m.Webhooks[0].Name != "statefulsets.mutate.stateguard.dev" {
		t.Errorf("mutating configuration: %+v", m)
	}
	if got := m.Webhooks[0].ClientConfig.Service; got == nil || got.Path == nil || *got.Path != "/mutate-apps-v1-statefulset" || got.Port == nil || *got.Port != 443 {
		t.Errorf("mutating clientConfig.service: %+v", got)
	}
	if p := m.Webhooks[0].ReinvocationPolicy; p == nil || *p != "IfNeeded" {
		t.Errorf("reinvocationPolicy: %v", p)
	}
	var names []string
	for _, w := range v.Webhooks {
		names = append(names, w.Name)
	}
	if want := []string{"statefulsets.validate.stateguard.dev", "services.validate.stateguard.dev"}; !reflect.DeepEqual(names, want) {
		t.Errorf("validating webhooks %v, want %v", names, want)
	}
	if ts := v.Webhooks[0].TimeoutSeconds; ts == nil || *ts != 5 {
		t.Errorf("timeoutSeconds: %v", ts)
	}
}

func TestDecodeChartWebhooksRejects(t *testing.T) {
	mutating, validating, _ := strings.Cut(strings.TrimPrefix(helmOutput, "---\n"), "\n---\n")
	for name, tc := range map[string]struct{ manifest, want string }{
		"unknown field": {
			strings.Replace(helmOutput, "sideEffects: None", "sideEffect: None", 1),
			`unknown field "sideEffect"`,
		},
		"duplicate field": {
			strings.Replace(helmOutput, "failurePolicy: Fail", "failurePolicy: Fail\n    failurePolicy: Ignore", 1),
			`key "failurePolicy" already set`,
		},
		"another kind": {
			helmOutput + "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: x\n",
			"v1 Service",
		},
		"another version": {
			strings.Replace(helmOutput, "admissionregistration.k8s.io/v1", "admissionregistration.k8s.io/v1beta1", 1),
			"admissionregistration.k8s.io/v1beta1 MutatingWebhookConfiguration",
		},
		"no validating": {mutating, "1 MutatingWebhookConfigurations and 0 ValidatingWebhookConfigurations"},
		"two mutating":  {mutating + "\n---\n" + mutating + "\n---\n" + validating, "2 MutatingWebhookConfigurations and 1"},
		"empty":         {"", "0 MutatingWebhookConfigurations and 0"},
		"not yaml":      {"kind: [", "document 1"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeChartWebhooks([]byte(tc.manifest))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestChartRenderArgs(t *testing.T) {
	r := ChartRender{Helm: "helm", Chart: "charts/stateguard", Release: "rel", Namespace: "ns", Set: []string{"a=1", "b=2"}}
	want := []string{"template", "rel", "charts/stateguard", "--namespace", "ns", "--show-only", "templates/webhooks.yaml", "--set", "a=1", "--set", "b=2"}
	if got := r.Args(); !reflect.DeepEqual(got, want) {
		t.Errorf("Args() = %q\nwant     %q", got, want)
	}
}

// RenderChartWebhooks runs helm with Args and decodes stdout only; on
// failure its error shows helm's stderr. A script stands in for helm.
func TestRenderChartWebhooks(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the fake helm is a shell script")
	}
	dir := t.TempDir()
	argsFile, outFile := filepath.Join(dir, "args"), filepath.Join(dir, "out")
	if err := os.WriteFile(outFile, []byte(helmOutput), 0o600); err != nil {
		t.Fatal(err)
	}
	helm := filepath.Join(dir, "helm")
	script := `#!/bin/sh
printf '%s\n' "$@" > "$ARGS"
echo "WARNING: a warning on stderr" >&2
if [ "$FAIL" = 1 ]; then echo "Error: chart not found" >&2; exit 1; fi
cat "$OUT"
`
	if err := os.WriteFile(helm, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ARGS", argsFile)
	t.Setenv("OUT", outFile)
	r := ChartRender{Helm: helm, Chart: "charts/stateguard", Release: "stateguard", Namespace: "stateguard-system", Set: []string{"x=y"}}

	opts, err := RenderChartWebhooks(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if len(opts.MutatingWebhooks) != 1 || len(opts.ValidatingWebhooks) != 1 {
		t.Errorf("got %d mutating and %d validating configurations", len(opts.MutatingWebhooks), len(opts.ValidatingWebhooks))
	}
	args, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Fields(string(args)), r.Args(); !reflect.DeepEqual(got, want) {
		t.Errorf("helm ran with %q, want %q", got, want)
	}

	t.Setenv("FAIL", "1")
	if _, err := RenderChartWebhooks(context.Background(), r); err == nil || !strings.Contains(err.Error(), "Error: chart not found") {
		t.Errorf("err = %v, want helm's stderr in it", err)
	}

	if _, err := RenderChartWebhooks(context.Background(), ChartRender{Helm: helm}); err == nil {
		t.Error("no error without Chart, Release and Namespace")
	}
}
