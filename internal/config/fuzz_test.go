package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadConfig writes arbitrary bytes to a config file and loads it. Load
// must never panic (the webhook loads the config at startup and the CLI on
// every run), and a config it refuses must be refused with errors that each
// name the file, so the operator knows where to look.
func FuzzLoadConfig(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		`{"apiVersion":"stateguard.dev/v1alpha1","kind":"PolicyConfig","profile":"gke","policies":{"storage-class":{"catalog":[{"name":"a","provisioner":"pd.csi.storage.gke.io"},{"name":"a"}]}}}`,
		"apiVersion: stateguard.dev/v1alpha1\nkind: PolicyConfig\nexemptNamespaces: &a [x, *a]\n",
		"apiVersion: stateguard.dev/v1alpha1\nkind: PolicyConfig\n<<: {profile: eks}\npolicies:\n  storage-class: {defaultSize: -1Gi, allowed: [\"\", UPPER]}\n",
		"apiVersion: v1\nkind: List\nitems:\n- apiVersion: stateguard.dev/v1alpha1\n  kind: PolicyConfig\n",
		"apiVersion: stateguard.dev/v1alpha1\nkind: PolicyConfig\npolicies:\n  snapshot-schedule: {labelKey: 'a b', schedules: [daily, daily, '0 * * * *']}\n",
		"\xef\xbb\xbfapiVersion: stateguard.dev/v1alpha1\r\nkind: PolicyConfig\r\n",
		"--- !!map\napiVersion: !!str stateguard.dev/v1alpha1\nkind: PolicyConfig\ndefaultMode: !!binary ZW5mb3JjZQ==\n",
	} {
		f.Add([]byte(s))
	}

	// One file per fuzzing process, rewritten for each input.
	path := filepath.Join(f.TempDir(), "policy-config.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		engine, err := Load(Options{Path: path})
		if err == nil {
			if engine == nil {
				t.Fatal("no error and no engine")
			}
			return
		}
		errs := []error{err}
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			errs = joined.Unwrap()
		}
		if len(errs) == 0 {
			t.Fatalf("an empty joined error: %q", err)
		}
		for _, e := range errs {
			if !strings.HasPrefix(e.Error(), path) {
				t.Fatalf("an error that does not start with the file's name: %q\ninput: %q", e.Error(), data)
			}
		}
	})
}
