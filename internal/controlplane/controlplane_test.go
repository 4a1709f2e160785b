package controlplane

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestControllerManagerArgs(t *testing.T) {
	args := controllerManagerArgs("/d/kcm.kubeconfig", "/d/kcm", 10257)
	flags := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !strings.HasPrefix(k, "--") || !ok {
			t.Fatalf("argument %q is not --flag=value", a)
		}
		if _, dup := flags[k]; dup {
			t.Errorf("flag %s given twice", k)
		}
		flags[k] = v
	}
	for k, want := range map[string]string{
		"--kubeconfig":                 "/d/kcm.kubeconfig",
		"--authentication-kubeconfig":  "/d/kcm.kubeconfig",
		"--authorization-kubeconfig":   "/d/kcm.kubeconfig",
		"--authentication-skip-lookup": "true",
		"--controllers":                strings.Join(ControllerManagerControllers, ","),
		"--leader-elect":               "false",
		"--bind-address":               "127.0.0.1",
		"--secure-port":                "10257",
		"--cert-dir":                   "/d/kcm",
	} {
		if flags[k] != want {
			t.Errorf("%s=%q, want %q", k, flags[k], want)
		}
	}
}

func TestCheckAssets(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), nil, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("etcd", 0o755)
	if err := CheckAssets(dir, false); err == nil || !strings.Contains(err.Error(), "kube-apiserver") {
		t.Errorf("without kube-apiserver: %v", err)
	}
	write("kube-apiserver", 0o755)
	if err := CheckAssets(dir, false); err != nil {
		t.Errorf("with etcd and kube-apiserver: %v", err)
	}
	write("kube-controller-manager", 0o644) // not executable
	if err := CheckAssets(dir, true); err == nil || !strings.Contains(err.Error(), "kube-controller-manager") {
		t.Errorf("with a kube-controller-manager that is not executable: %v", err)
	}
	if err := CheckAssets("", false); err == nil {
		t.Error("no error for an empty directory name")
	}
}

func TestWriteLogTails(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{
		"etcd.log":           "e1\ne2\ne3\n",
		"kube-apiserver.log": "a1\n",
		"empty.log":          "",
		"notes.txt":          "not a log\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var b strings.Builder
	WriteLogTails(&b, dir, 2)
	want := "---- etcd.log (last 2 lines) ----\ne2\ne3\n---- kube-apiserver.log (last 2 lines) ----\na1\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
