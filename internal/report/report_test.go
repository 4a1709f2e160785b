package report

import (
	"bytes"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stateguard/stateguard/policies"
)

// realisticReport is one `stateguard check` over two files holding a
// Namespace, a Service and three StatefulSets: one with two enforce findings,
// one with a warning, an audit and a mutation, and a clean one. Findings and
// subjects are deliberately out of order.
func realisticReport() *Report {
	r := &Report{
		Results: []Result{
			{
				File: "db/postgres.yaml", Line: 31, Column: 3, APIVersion: "apps/v1", Kind: "StatefulSet",
				Namespace: "data", Name: "postgres", Policy: "snapshot-schedule", Mode: "audit",
				Field:   "metadata.labels[stateguard.dev/snapshot-schedule]",
				Message: `label stateguard.dev/snapshot-schedule is missing; set it to one of hourly, daily, weekly`,
			},
			{
				File: "app/sts.yaml", Line: 34, Column: 9, APIVersion: "apps/v1", Kind: "StatefulSet",
				Namespace: "default", Name: "web", Policy: "storage-class", Mode: "enforce",
				Field:   "spec.volumeClaimTemplates[0].spec.storageClassName",
				Message: `StorageClass "premium-ssd" not found; use one of managed-csi, managed-csi-premium, azurefile-csi, azurefile-csi-premium, default`,
			},
			{
				File: "app/sts.yaml", Line: 9, Column: 3, APIVersion: "apps/v1", Kind: "StatefulSet",
				Namespace: "default", Name: "web", Policy: "headless-service", Mode: "enforce",
				Field:   "spec.serviceName",
				Message: `Service "nginx" not found in namespace default; create a Service with clusterIP: None named "nginx" that selects app=web`,
			},
			{
				File: "db/postgres.yaml", Line: 30, Column: 3, APIVersion: "apps/v1", Kind: "StatefulSet",
				Namespace: "data", Name: "postgres", Policy: "headless-service", Mode: "warn",
				Field:   "spec.serviceName",
				Message: `Service "postgres" lacks publishNotReadyAddresses: true; clustered databases need peer DNS before they are ready`,
			},
		},
		Mutations: []Mutation{
			{
				File: "db/postgres.yaml", Line: 24, Kind: "StatefulSet", Namespace: "data", Name: "postgres",
				Policy: "storage-class", Path: "/spec/volumeClaimTemplates/0/spec/storageClassName", Value: "managed-csi",
			},
		},
		Summary: Summary{Files: 2, Objects: 5, StatefulSets: 3},
		Subjects: []Subject{
			{File: "db/postgres.yaml", Line: 24, APIVersion: "apps/v1", Kind: "StatefulSet", Namespace: "data", Name: "postgres",
				Policies: []string{"headless-service", "storage-class", "snapshot-schedule"}},
			{File: "app/sts.yaml", Line: 40, APIVersion: "apps/v1", Kind: "StatefulSet", Namespace: "default", Name: "cache",
				Policies: []string{"headless-service", "storage-class", "snapshot-schedule"}},
			{File: "app/sts.yaml", Line: 1, APIVersion: "apps/v1", Kind: "StatefulSet", Namespace: "default", Name: "web",
				Policies: []string{"headless-service", "storage-class", "snapshot-schedule"}},
		},
	}
	r.CountFindings()
	return r
}

func render(t *testing.T, format string, r *Report) string {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, Write(&buf, format, r, Options{Version: "v0.3.0"}))
	return buf.String()
}

// TestGolden compares each format's rendering of realisticReport with
// testdata/report.<format>.golden. UPDATE_GOLDEN=1 rewrites them. A missing
// golden file, or a file in testdata that no format uses, fails the test.
func TestGolden(t *testing.T) {
	update := os.Getenv("UPDATE_GOLDEN") != ""
	used := map[string]bool{}
	for _, format := range Formats {
		name := "report." + format + ".golden"
		used[name] = true
		t.Run(format, func(t *testing.T) {
			got := render(t, format, realisticReport())
			path := filepath.Join("testdata", name)
			if update {
				require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
				return
			}
			want, err := os.ReadFile(path)
			if errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("%s is missing: run UPDATE_GOLDEN=1 go test ./internal/report/ to create it", path)
			}
			require.NoError(t, err)
			assert.Equal(t, string(want), got, "output differs from %s; if the change is intended, run UPDATE_GOLDEN=1 go test ./internal/report/", path)
		})
	}
	entries, err := os.ReadDir("testdata")
	require.NoError(t, err)
	for _, e := range entries {
		if !used[e.Name()] {
			t.Errorf("testdata/%s is used by no test: delete it", e.Name())
		}
	}
}

func TestFormatsMatchWriters(t *testing.T) {
	assert.Equal(t, []string{"text", "json", "sarif", "junit"}, Formats)
	assert.Len(t, writers, len(Formats))
	for _, f := range Formats {
		assert.Contains(t, writers, f)
		assert.NoError(t, CheckFormat(f))
	}
}

func TestUnknownFormat(t *testing.T) {
	var buf bytes.Buffer
	err := Write(&buf, "yaml", realisticReport(), Options{})
	require.EqualError(t, err, `unknown output format "yaml" (want one of text, json, sarif, junit)`)
	assert.Equal(t, err, CheckFormat("yaml"))
	assert.Zero(t, buf.Len(), "nothing is written for an unknown format")
}

// TestOutputIsClean holds every format to what diffs, editors and CI logs
// expect of a file: a final newline and no trailing spaces.
func TestOutputIsClean(t *testing.T) {
	for _, format := range Formats {
		for name, r := range map[string]*Report{"realistic": realisticReport(), "empty": {}, "nil": nil} {
			t.Run(format+"/"+name, func(t *testing.T) {
				out := render(t, format, r)
				require.True(t, strings.HasSuffix(out, "\n"), "ends with a newline")
				assert.False(t, strings.HasSuffix(out, "\n\n"), "ends with exactly one newline")
				for i, line := range strings.Split(out, "\n") {
					assert.Equal(t, strings.TrimRight(line, " \t"), line, "line %d has trailing space", i+1)
				}
			})
		}
	}
}

// TestDeterministic: the order findings, mutations and subjects arrive in
// must not show in any format.
func TestDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, format := range Formats {
		want := render(t, format, realisticReport())
		for range 20 {
			r := realisticReport()
			rng.Shuffle(len(r.Results), func(i, j int) { r.Results[i], r.Results[j] = r.Results[j], r.Results[i] })
			rng.Shuffle(len(r.Subjects), func(i, j int) { r.Subjects[i], r.Subjects[j] = r.Subjects[j], r.Subjects[i] })
			require.Equal(t, want, render(t, format, r), format)
		}
	}
}

func TestWriteDoesNotModifyReport(t *testing.T) {
	for _, format := range Formats {
		r := realisticReport()
		render(t, format, r)
		assert.Equal(t, realisticReport(), r, format)
	}
}

// TestMutationsKeepEngineOrder: within one object, mutations stay in the
// order the engine applied them (a claim template is added before it is
// labelled); objects are ordered by file and line.
func TestMutationsKeepEngineOrder(t *testing.T) {
	r := normalize(&Report{Mutations: []Mutation{
		{File: "b.yaml", Line: 1, Name: "b", Path: "/x"},
		{File: "a.yaml", Line: 5, Name: "a", Path: "/spec/volumeClaimTemplates/1"},
		{File: "a.yaml", Line: 5, Name: "a", Path: "/spec/volumeClaimTemplates/1/metadata/labels"},
		{File: "a.yaml", Line: 5, Name: "a", Path: "/spec/volumeClaimTemplates/0/metadata/labels"},
	}})
	var paths []string
	for _, m := range r.Mutations {
		paths = append(paths, m.File+m.Path)
	}
	assert.Equal(t, []string{
		"a.yaml/spec/volumeClaimTemplates/1",
		"a.yaml/spec/volumeClaimTemplates/1/metadata/labels",
		"a.yaml/spec/volumeClaimTemplates/0/metadata/labels",
		"b.yaml/x",
	}, paths)
}

func TestCountFindings(t *testing.T) {
	r := &Report{
		Results: []Result{{Mode: "enforce"}, {Mode: "warn"}, {Mode: "warn"}, {Mode: "audit"}, {Mode: "enforce"}},
		Summary: Summary{Files: 1, Violations: 9, Warnings: 9, Audits: 9},
	}
	r.CountFindings()
	assert.Equal(t, Summary{Files: 1, Violations: 2, Warnings: 2, Audits: 1}, r.Summary)
}

// TestEveryPolicyIsDocumented: code scanning shows these texts, so a new
// policy must come with them.
func TestEveryPolicyIsDocumented(t *testing.T) {
	var registered []policies.PolicyID
	for _, p := range policies.Registry() {
		registered = append(registered, p.ID)
		doc, ok := ruleDocs[p.ID]
		if assert.True(t, ok, "ruleDocs lacks %s", p.ID) {
			assert.NotEmpty(t, doc.Name, p.ID)
			assert.NotEmpty(t, doc.Short, p.ID)
			assert.NotEmpty(t, doc.Full, p.ID)
			assert.NotEmpty(t, doc.Help, p.ID)
		}
	}
	for id := range ruleDocs {
		assert.True(t, slices.Contains(registered, id), "ruleDocs documents %s, which is not registered", id)
	}
}
