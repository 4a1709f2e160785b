// The examples are documentation that runs: `make demo` applies them to a
// real API server, and this test pins what `stateguard check` and `stateguard
// mutate` say about each, as examples/README.md describes.
package examples_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

type finding struct {
	Policy, Mode, Kind, Namespace, Name, Field, Message string
}

type mutation struct {
	Kind, Namespace, Name, Policy, Path string
	Value                               any
}

type report struct {
	Results   []finding
	Mutations []mutation
	Summary   struct{ Violations, Warnings int }
}

// want is what check must report for one path: the exit status, the
// findings as "mode policy namespace/name" (sorted), and the mutations as
// "path=value" (sorted).
type want struct {
	exit      int
	findings  []string
	mutations []string
	// messages must each appear in some finding's message.
	messages []string
}

var cases = map[string]want{
	"00-storageclasses.yaml": {exit: 0},
	"01-good.yaml": {
		exit: 0,
		findings: []string{
			"warn storage-class default/db", // AKS's managed-csi: reclaimPolicy Delete
		},
		mutations: []string{
			"/spec/volumeClaimTemplates/0/metadata/labels/stateguard.dev~1snapshot-schedule=daily",
			"/spec/volumeClaimTemplates/0/spec/storageClassName=managed-csi",
		},
	},
	"02-denied.yaml": {
		exit: 1,
		findings: []string{
			"enforce storage-class default/uploads",
			"warn storage-class default/uploads",
		},
		messages: []string{`"managed-csi" (disk.csi.azure.com) serves no ReadWriteMany Filesystem volumes`},
		mutations: []string{
			"/spec/volumeClaimTemplates/0/metadata/labels/stateguard.dev~1snapshot-schedule=hourly",
		},
	},
	"03-warn-namespace.yaml": {
		exit: 0,
		findings: []string{
			"warn headless-service legacy/cache",
			"warn snapshot-schedule legacy/cache",
			"warn storage-class legacy/cache",
		},
		messages: []string{`Service "cache" not found in namespace legacy`},
		mutations: []string{
			"/spec/volumeClaimTemplates/0/spec/storageClassName=managed-csi",
		},
	},
}

func TestEveryExampleHasACase(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, ok := cases[f]; !ok {
			t.Errorf("%s has no case in examples_test.go: add what `stateguard check` must say about it", f)
		}
	}
	for name := range cases {
		if _, err := os.Stat(name); err != nil {
			t.Errorf("case %s: %v", name, err)
		}
	}
}

func TestCheckEachExample(t *testing.T) {
	bin := build(t)
	for name, w := range cases {
		t.Run(name, func(t *testing.T) {
			code, rep, out := check(t, bin, name)
			if code != w.exit {
				t.Fatalf("exit status %d, want %d; output:\n%s", code, w.exit, out)
			}
			var got []string
			for _, f := range rep.Results {
				got = append(got, f.Mode+" "+f.Policy+" "+f.Namespace+"/"+f.Name)
			}
			assertSet(t, "findings", got, w.findings)
			var muts []string
			for _, m := range rep.Mutations {
				muts = append(muts, m.Path+"="+toString(m.Value))
			}
			assertSet(t, "mutations", dedup(muts), w.mutations)
			var messages []string
			for _, f := range rep.Results {
				messages = append(messages, f.Message)
			}
			for _, msg := range w.messages {
				if !strings.Contains(strings.Join(messages, "\n"), msg) {
					t.Errorf("no finding says %q; output:\n%s", msg, out)
				}
			}
		})
	}
}

// TestCheckDirectory is what examples/README.md and the demo run: the whole
// directory at once (the files' objects then answer each other's lookups,
// so each example must stand on its own names).
func TestCheckDirectory(t *testing.T) {
	bin := build(t)
	code, rep, out := check(t, bin, ".")
	if code != 1 {
		t.Fatalf("exit status %d, want 1 (02-denied.yaml); output:\n%s", code, out)
	}
	var want []string
	for _, w := range cases {
		want = append(want, w.findings...)
	}
	var got []string
	for _, f := range rep.Results {
		got = append(got, f.Mode+" "+f.Policy+" "+f.Namespace+"/"+f.Name)
	}
	assertSet(t, "findings", got, want)
	if rep.Summary.Violations != 1 {
		t.Errorf("violations = %d, want 1", rep.Summary.Violations)
	}
}

// TestMutateDiff pins the README's `stateguard mutate --diff
// examples/01-good.yaml`: only the injected lines, nothing reformatted.
func TestMutateDiff(t *testing.T) {
	bin := build(t)
	out, err := exec.Command(bin, "mutate", "--diff", "01-good.yaml").CombinedOutput()
	if err != nil {
		t.Fatalf("mutate --diff: %v\n%s", err, out)
	}
	var added, removed []string
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "+++"), strings.HasPrefix(line, "---"):
		case strings.HasPrefix(line, "+"):
			added = append(added, strings.TrimSpace(line[1:]))
		case strings.HasPrefix(line, "-"):
			removed = append(removed, line)
		}
	}
	if len(removed) > 0 {
		t.Errorf("the diff removes or reformats lines %q:\n%s", removed, out)
	}
	assertSet(t, "added lines", added, []string{"labels:", "stateguard.dev/snapshot-schedule: daily", "storageClassName: managed-csi"})
}

var (
	binary   string
	buildErr error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binary != "" {
		os.RemoveAll(filepath.Dir(binary))
	}
	os.Exit(code)
}

// build builds stateguard once for all tests of this package.
func build(t *testing.T) string {
	t.Helper()
	if binary == "" && buildErr == nil {
		dir, err := os.MkdirTemp("", "stateguard-examples-")
		if err != nil {
			t.Fatal(err)
		}
		binary = filepath.Join(dir, "stateguard")
		out, err := exec.Command("go", "build", "-o", binary, "github.com/stateguard/stateguard/cmd/stateguard").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	}
	if buildErr != nil {
		t.Fatalf("building stateguard: %v", buildErr)
	}
	return binary
}

func check(t *testing.T, bin, path string) (int, report, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "check", "-o", "json", path)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("check -o json %s: %v\nstdout:\n%s\nstderr:\n%s", path, err, stdout.String(), stderr.String())
	}
	return code, rep, stdout.String() + stderr.String()
}

func assertSet(t *testing.T, what string, got, want []string) {
	t.Helper()
	got, want = sorted(got), sorted(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got  %q\n want %q", what, got, want)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func dedup(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ":" + toString(v[k])
		}
		return "map[" + strings.Join(parts, " ") + "]"
	}
	b, _ := json.Marshal(v)
	return string(b)
}
