// Package security runs the examples of docs/security.md against a real
// kube-apiserver (test/cluster), driven by the real kubectl, taking them
// from the document itself so that the document and what is tested cannot
// drift apart.
//
// It starts a control plane of its own: the ValidatingAdmissionPolicy it
// installs judges every Namespace write in the cluster, which would disturb
// other packages' tests.
//
// The control plane comes from $KUBEBUILDER_ASSETS. Without it the tests
// skip, unless STATEGUARD_REQUIRE_INTEGRATION=1, in which case they fail.
package security

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	apiyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// securityDoc is docs/security.md.
var securityDoc = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "docs", "security.md")
}()

// docYAMLBlock returns the one ```yaml block of docs/security.md that
// contains marker, failing the test unless there is exactly one.
func docYAMLBlock(t *testing.T, marker string) string {
	t.Helper()
	data, err := os.ReadFile(securityDoc)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, b := range fencedBlocks(string(data), "yaml") {
		if strings.Contains(b, marker) {
			found = append(found, b)
		}
	}
	if len(found) != 1 {
		t.Fatalf("docs/security.md: want exactly one ```yaml block containing %q, found %d", marker, len(found))
	}
	return found[0]
}

// fencedBlocks returns the bodies of the markdown's fenced code blocks
// whose info string is lang.
func fencedBlocks(markdown, lang string) []string {
	var blocks []string
	var body strings.Builder
	inside, wanted := false, false
	for _, line := range strings.Split(markdown, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case !inside && strings.HasPrefix(trimmed, "```"):
			inside, wanted = true, strings.TrimSpace(strings.TrimPrefix(trimmed, "```")) == lang
			body.Reset()
		case inside && trimmed == "```":
			if wanted {
				blocks = append(blocks, body.String())
			}
			inside = false
		case inside && wanted:
			body.WriteString(line)
			body.WriteByte('\n')
		}
	}
	return blocks
}

// decodeDocuments splits a multi-document YAML stream and decodes each
// document strictly into the matching element of into: a misspelt or
// unknown field, or a document more or fewer, fails the test.
func decodeDocuments(t *testing.T, stream string, into ...any) {
	t.Helper()
	r := apiyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(stream)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("splitting YAML: %v", err)
		}
		if strings.TrimSpace(string(doc)) != "" {
			docs = append(docs, doc)
		}
	}
	if len(docs) != len(into) {
		t.Fatalf("want %d YAML documents, found %d:\n%s", len(into), len(docs), stream)
	}
	for i, doc := range docs {
		if err := yaml.UnmarshalStrict(doc, into[i]); err != nil {
			t.Fatalf("document %d as %T: %v\n%s", i+1, into[i], err, doc)
		}
	}
}

func TestFencedBlocks(t *testing.T) {
	md := "text\n```yaml\na: 1\n```\n```sh\n```yaml inside sh\n```\n  ```yaml\n  b: 2\n  ```\n```\nplain\n```\n"
	got := fencedBlocks(md, "yaml")
	want := []string{"a: 1\n", "  b: 2\n"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("fencedBlocks = %q, want %q", got, want)
	}
}
