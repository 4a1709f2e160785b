package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The golden tests run the CLI over realistic manifests — the Kubernetes
// documentation's own StatefulSets (test/testdata/real-world) and cases
// written for the policies (test/testdata/cases) — and compare every output
// with test/testdata/golden. UPDATE_GOLDEN=1 rewrites the golden files; a
// golden file that is missing, or one no case produces, fails the test.

const goldenDir = "test/testdata/golden"

type goldenCase struct {
	name   string
	args   []string // flags before the paths
	paths  []string
	config string
}

func goldenCases(t *testing.T) []goldenCase {
	t.Helper()
	var cases []goldenCase
	entries, err := os.ReadDir("test/testdata/real-world")
	require.NoError(t, err)
	for _, e := range entries {
		if e.Name() == "README.md" {
			continue
		}
		name := "real-world-" + strings.TrimSuffix(e.Name(), ".yaml")
		cases = append(cases, goldenCase{name: name, paths: []string{filepath.Join("test/testdata/real-world", e.Name())}})
	}
	entries, err = os.ReadDir("test/testdata/cases")
	require.NoError(t, err)
	for _, e := range entries {
		dir := filepath.Join("test/testdata/cases", e.Name())
		c := goldenCase{name: "case-" + e.Name()}
		inner, err := os.ReadDir(dir)
		require.NoError(t, err)
		for _, f := range inner {
			if f.Name() == "config.yaml" {
				c.config = filepath.Join(dir, f.Name())
				continue
			}
			c.paths = append(c.paths, filepath.Join(dir, f.Name()))
		}
		cases = append(cases, c)
	}
	return cases
}

func TestGolden(t *testing.T) {
	t.Chdir("../..") // so that reported paths read as a user in the repository sees them
	update := os.Getenv("UPDATE_GOLDEN") == "1"
	produced := map[string]bool{}
	for _, c := range goldenCases(t) {
		t.Run(c.name, func(t *testing.T) {
			flags := append([]string{}, c.args...)
			if c.config != "" {
				flags = append(flags, "--config", c.config)
			}
			outputs := map[string][]string{
				".check.json":  append(append([]string{"check", "-o", "json"}, flags...), c.paths...),
				".check.txt":   append(append([]string{"check"}, flags...), c.paths...),
				".mutate.yaml": append(append([]string{"mutate"}, flags...), c.paths...),
			}
			for suffix, args := range outputs {
				code, stdout, stderr := runCLI(t, "", args...)
				require.Empty(t, stderr, "stderr of %v", args)
				file := filepath.Join(goldenDir, c.name+suffix)
				produced[file] = true
				if suffix == ".check.json" {
					var rep struct {
						Summary struct{ Violations int }
					}
					require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
					want := 0
					if rep.Summary.Violations > 0 {
						want = 1
					}
					assert.Equal(t, want, code, "exit status of %v", args)
				}
				compareGolden(t, file, stdout, update)
			}
		})
	}
	entries, err := os.ReadDir(goldenDir)
	require.NoError(t, err)
	var extra []string
	for _, e := range entries {
		if !produced[filepath.Join(goldenDir, e.Name())] {
			extra = append(extra, e.Name())
		}
	}
	sort.Strings(extra)
	assert.Empty(t, extra, "golden files no case produces: delete them, or restore their case")
}

func compareGolden(t *testing.T, file, got string, update bool) {
	t.Helper()
	if update {
		require.NoError(t, os.MkdirAll(filepath.Dir(file), 0o755))
		require.NoError(t, os.WriteFile(file, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(file)
	require.NoError(t, err, "missing golden file: run UPDATE_GOLDEN=1 go test ./cmd/stateguard/ and review the diff")
	assert.Equal(t, string(want), got, "%s differs: rerun with UPDATE_GOLDEN=1 and review the diff", file)
}

// runCLI runs the CLI in-process and returns its exit code and outputs.
func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, strings.NewReader(stdin), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}
