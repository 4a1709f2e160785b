package config

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/stateguard/stateguard/policies"
)

func TestLoadFullConfig(t *testing.T) {
	engine, err := Load(Options{Path: filepath.Join("testdata", "full.yaml")})
	require.NoError(t, err)
	cfg := engine.Config()
	assert.Equal(t, "aks", cfg.Profile)
	assert.Equal(t, policies.Enforce, cfg.DefaultMode)
	assert.Equal(t, []string{"kube-system", "kube-public", "kube-node-lease"}, cfg.ExemptNamespaces)
	sc := cfg.Policies.StorageClass
	assert.Equal(t, "azurefile-csi", sc.Classes[corev1.ReadWriteMany])
	assert.Equal(t, "managed-csi", sc.Classes[corev1.ReadWriteOncePod])
	require.NotNil(t, sc.DefaultSize)
	assert.Equal(t, "10Gi", sc.DefaultSize.String())
	assert.Equal(t, []string{"hourly", "daily", "weekly"}, cfg.Policies.SnapshotSchedule.Schedules)
}

func TestLoadWithoutAFileIsTheAKSProfile(t *testing.T) {
	engine, err := Load(Options{})
	require.NoError(t, err)
	cfg := engine.Config()
	assert.Equal(t, "aks", cfg.Profile)
	assert.Equal(t, "managed-csi", cfg.Policies.StorageClass.Classes[corev1.ReadWriteOnce])
	assert.Equal(t, policies.DefaultExemptNamespaces, cfg.ExemptNamespaces)

	engine, err = Load(Options{Profile: "eks"})
	require.NoError(t, err)
	assert.Equal(t, "eks", engine.Config().Profile, "--profile overrides the default")

	_, err = Load(Options{Profile: "azure"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--profile")
	assert.Contains(t, err.Error(), `"azure"`)
}

// TestLoadErrorsNameFileLineColumn: every way a config file can be wrong is
// an error that starts with the file, line and column of the culprit, so an
// operator whose webhook refuses to start finds it at once.
func TestLoadErrorsNameFileLineColumn(t *testing.T) {
	tests := []struct {
		file string
		// want are the joined errors, each file:line[:col]: message-fragment.
		want []string
	}{
		{"misspelt.yaml", []string{`:6:5: unknown field "policies.storage-class.defaultSise"`}},
		{"wrong-type.yaml", []string{`:3:19: exemptNamespaces: cannot unmarshal string into a list`}},
		{"yaml11-bool.yaml", []string{`:6:11: policies.snapshot-schedule.mode: cannot unmarshal bool`}},
		{"bad-mode.yaml", []string{`:3:1: defaultMode: Unsupported value: "sometimes"`, `:6:15: policies.storage-class.classes[ReadWriteSometimes]: Unsupported value`}},
		{"two-documents.yaml", []string{`:1:1: want exactly one PolicyConfig document, found 2`}},
		{"empty.yaml", []string{`:1:1: want exactly one PolicyConfig document, found 0`}},
		{"wrong-kind.yaml", []string{`:1:1: want apiVersion stateguard.dev/v1alpha1, kind PolicyConfig; found v1, ConfigMap`}},
		{"not-yaml.yaml", []string{`:3:1: invalid YAML`}},
		{"missing.yaml", []string{`: no such file or directory`}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			_, err := Load(Options{Path: path})
			require.Error(t, err)
			errs := []error{err}
			if joined, ok := err.(interface{ Unwrap() []error }); ok {
				errs = joined.Unwrap()
			}
			require.Len(t, errs, len(tt.want), "%v", err)
			for i, e := range errs {
				assert.True(t, strings.HasPrefix(e.Error(), path+tt.want[i]), "error %d: got %q, want %q...", i, e.Error(), path+tt.want[i])
			}
		})
	}
}

// TestLoadEmptyDirectory: a directory is read like the CLI reads one; with
// no document in it, the error names it.
func TestLoadEmptyDirectory(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(Options{Path: dir})
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), dir+":"), err.Error())
	assert.Contains(t, err.Error(), "found 0")
}
