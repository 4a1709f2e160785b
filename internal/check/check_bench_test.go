package check

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stateguard/stateguard/internal/manifest"
	"github.com/stateguard/stateguard/policies"
)

// BenchmarkCheck measures what `stateguard check` does between reading the
// arguments and printing: read the 2,000-file corpus, index it, mutate and
// validate every StatefulSet. `make bench-cli` times the whole process.
func BenchmarkCheck(b *testing.B) {
	dir := b.TempDir()
	require.NoError(b, manifest.GenerateCorpus(dir, 2000, 1))
	engine, err := policies.NewEngine(policies.Config{})
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		docs, err := manifest.Read([]string{dir}, manifest.Options{})
		require.NoError(b, err)
		out, err := Run(docs, Options{Engine: engine, Namespace: "default"})
		require.NoError(b, err)
		require.Equal(b, 2000, out.Report.Summary.StatefulSets)
	}
}

// BenchmarkCheckOnly leaves reading out: the engine and the bundle alone.
func BenchmarkCheckOnly(b *testing.B) {
	dir := b.TempDir()
	require.NoError(b, manifest.GenerateCorpus(dir, 2000, 1))
	engine, err := policies.NewEngine(policies.Config{})
	require.NoError(b, err)
	docs, err := manifest.Read([]string{dir}, manifest.Options{})
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		_, err := Run(docs, Options{Engine: engine, Namespace: "default"})
		require.NoError(b, err)
	}
}
