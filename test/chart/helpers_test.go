// Package chart_test tests charts/stateguard, the manifests in deploy/ and
// the Dockerfile: lint, render and strict decoding into the Kubernetes Go
// types, the chart's promises (availability, least privilege, restricted pod
// security, webhook registration, TLS, config), server-side dry-run apply on
// a real kube-apiserver with the cert-manager and Prometheus operator CRDs,
// helm install/upgrade, and the `helm test` hook run step by step against
// the real webhook.
//
// helm comes from $HELM (`make helm` builds it; `make test` sets it), the
// control plane from $KUBEBUILDER_ASSETS. Without them the tests skip, unless
// STATEGUARD_REQUIRE_INTEGRATION=1, in which case they fail.
package chart_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	apiyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/stateguard/stateguard/test/cluster"
)

const (
	envHelm = "HELM"

	// defaultRelease and defaultNamespace are what the README's install
	// command uses, and what deploy/ is rendered with.
	defaultRelease   = "stateguard"
	defaultNamespace = "stateguard-system"

	// kubeVersion is the Kubernetes version the chart is rendered for when
	// there is no cluster to ask (helm built from source defaults to 1.20).
	kubeVersion = "1.33.0"
)

// repoRoot is the repository's root directory.
var repoRoot = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}()

var chartDir = filepath.Join(repoRoot, "charts", "stateguard")

// helmBin returns $HELM, or skips the test (fails it when
// STATEGUARD_REQUIRE_INTEGRATION=1) when it is unset or not executable.
func helmBin(t testing.TB) string {
	t.Helper()
	p := os.Getenv(envHelm)
	if p == "" {
		cluster.Missing(t, envHelm+" is not set: `make test` builds helm (make helm) and sets it; by hand: HELM=$(pwd)/bin/helm/<version>/helm")
	}
	if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		cluster.Missing(t, fmt.Sprintf("%s=%s is not an executable file", envHelm, p))
	}
	return p
}

// runHelm runs helm and returns stdout; err carries stderr.
func runHelm(t testing.TB, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, helmBin(t), args...)
	// Keep helm away from the user's config, caches and current cluster.
	home := t.TempDir()
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"KUBECONFIG="+filepath.Join(home, "no-kubeconfig"),
	)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

// renderOpts selects a rendering of the chart.
type renderOpts struct {
	Release   string   // default defaultRelease
	Namespace string   // default defaultNamespace
	Values    []string // files under testdata/ (or absolute paths)
	Set       []string // --set arguments
	SkipTests bool     // leave out the helm test hooks
	ShowOnly  string   // --show-only
}

func (o renderOpts) args() []string {
	release, ns := o.Release, o.Namespace
	if release == "" {
		release = defaultRelease
	}
	if ns == "" {
		ns = defaultNamespace
	}
	args := []string{"template", release, chartDir, "--namespace", ns, "--kube-version", kubeVersion}
	for _, v := range o.Values {
		args = append(args, "--values", testdataPath(v))
	}
	for _, s := range o.Set {
		args = append(args, "--set", s)
	}
	if o.SkipTests {
		args = append(args, "--skip-tests")
	}
	if o.ShowOnly != "" {
		args = append(args, "--show-only", o.ShowOnly)
	}
	return args
}

func testdataPath(name string) string {
	if filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(repoRoot, "test", "chart", "testdata", name)
}

// render runs helm template and returns its output. Renderings are cached
// per argument list (the chart does not change while the tests run); use
// renderFresh where two renderings must be compared.
func render(t testing.TB, o renderOpts) string {
	t.Helper()
	helmBin(t) // skips outside the cache
	key := strings.Join(o.args(), "\x00")
	entry, _ := renderCache.LoadOrStore(key, &cachedRender{})
	c := entry.(*cachedRender)
	c.once.Do(func() { c.out, c.err = runHelm(t, o.args()...) })
	if c.err != nil {
		t.Fatal(c.err)
	}
	return c.out
}

type cachedRender struct {
	once sync.Once
	out  string
	err  error
}

var renderCache sync.Map

// renderFresh is render without the cache.
func renderFresh(t testing.TB, o renderOpts) string {
	t.Helper()
	out, err := runHelm(t, o.args()...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// valueSets are the non-default value files under testdata/.
func valueSets(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(testdataPath("values-*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/values-*.yaml: %v", err)
	}
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = filepath.Base(f)
	}
	return out
}

// object is one rendered document.
type object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	// JSON is the document converted to JSON (duplicate keys are an error).
	JSON []byte `json:"-"`
	// Source is helm's "# Source:" comment.
	Source string `json:"-"`
}

func (o object) String() string {
	return fmt.Sprintf("%s %s/%s (%s)", o.Kind, o.Metadata.Namespace, o.Metadata.Name, o.Source)
}

// isTestHook reports whether the object is a `helm test` hook.
func (o object) isTestHook() bool {
	return o.Metadata.Annotations["helm.sh/hook"] == "test"
}

// splitObjects splits a helm template stream into its documents.
func splitObjects(t testing.TB, stream string) []object {
	t.Helper()
	r := apiyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(stream)))
	var out []object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("splitting rendered YAML: %v", err)
		}
		source := ""
		for _, line := range strings.Split(string(doc), "\n") {
			if s, ok := strings.CutPrefix(line, "# Source: "); ok {
				source = s
				break
			}
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		js, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			t.Fatalf("%s: not valid YAML: %v\n%s", source, err, doc)
		}
		var o object
		if err := jsonUnmarshal(js, &o); err != nil {
			t.Fatalf("%s: %v", source, err)
		}
		if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
			t.Fatalf("%s: document without apiVersion, kind or name:\n%s", source, doc)
		}
		o.JSON, o.Source = js, source
		out = append(out, o)
	}
	return out
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			b.Write(line)
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

func jsonUnmarshal(data []byte, v any) error {
	return kjson.UnmarshalCaseSensitivePreserveInts(data, v)
}

// decodeStrict decodes JSON into v the way a strict API server would: an
// unknown, misspelt or duplicated field is an error.
func decodeStrict(data []byte, v any) error {
	strict, err := kjson.UnmarshalStrict(data, v)
	if err != nil {
		return err
	}
	if len(strict) > 0 {
		return errors.Join(strict...)
	}
	return nil
}

// find returns the one object of a kind and name, failing the test if there
// is not exactly one.
func find(t testing.TB, objs []object, kind, name string) object {
	t.Helper()
	var found []object
	for _, o := range objs {
		if o.Kind == kind && o.Metadata.Name == name {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one %s %q, found %d", kind, name, len(found))
	}
	return found[0]
}

// ofKind returns the objects of a kind.
func ofKind(objs []object, kind string) []object {
	var out []object
	for _, o := range objs {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// decodeInto finds one object and decodes it strictly into v.
func decodeInto[T any](t testing.TB, objs []object, kind, name string) *T {
	t.Helper()
	o := find(t, objs, kind, name)
	v := new(T)
	if err := decodeStrict(o.JSON, v); err != nil {
		t.Fatalf("%s: %v", o, err)
	}
	return v
}
