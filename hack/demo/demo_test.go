package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stateguard/stateguard/test/cluster"
)

// The demo runs as a child process, as `make demo` runs it: from the
// repository root, with TMPDIR pointed at a directory of the test's, so that
// everything it writes (its own directory, and anything envtest might put in
// the temp dir) can be checked for leftovers, as can processes whose command
// line names that directory.

func TestDemoWalkthrough(t *testing.T) {
	bins := buildBinaries(t)
	tmp := t.TempDir()
	cmd, out := demoCommand(t, bins, tmp, "--keep-running=false")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	err := waitTimeout(cmd, 5*time.Minute)
	transcript := out.String()
	t.Logf("demo output:\n%s", transcript)
	if err != nil {
		t.Fatalf("demo: %v", err)
	}
	assertWalkthrough(t, transcript)
	assertNothingLeft(t, tmp)
}

func TestDemoCtrlC(t *testing.T) {
	bins := buildBinaries(t)
	tmp := t.TempDir()
	cmd, out := demoCommand(t, bins, tmp) // --keep-running defaults to true
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if !out.waitFor("Press Ctrl-C", 5*time.Minute) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("the demo never got to waiting for Ctrl-C:\n%s", out.String())
	}
	// The cluster is usable while the demo waits.
	kubeconfig := regexp.MustCompile(`export KUBECONFIG=(\S+)`).FindStringSubmatch(out.String())
	if kubeconfig == nil {
		t.Fatalf("no `export KUBECONFIG=` line:\n%s", out.String())
	}
	get, err := exec.Command(bins.kubectl, "--kubeconfig", kubeconfig[1], "get", "statefulsets", "-A", "-o", "name").CombinedOutput()
	if err != nil || !strings.Contains(string(get), "statefulset.apps/db") {
		t.Errorf("kubectl get statefulsets with the printed kubeconfig: %v\n%s", err, get)
	}

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err = waitTimeout(cmd, 60*time.Second)
	transcript := out.String()
	t.Logf("demo output:\n%s", transcript)
	if err != nil {
		t.Fatalf("demo after Ctrl-C: %v (want exit status 0)", err)
	}
	for _, want := range []string{"Got interrupt: stopping", "Stopping stateguard serve, kube-controller-manager, kube-apiserver and etcd", "removed "} {
		if !strings.Contains(transcript, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	assertNothingLeft(t, tmp)
}

func assertWalkthrough(t *testing.T, out string) {
	t.Helper()
	for _, want := range []string{
		// the mutation: class and label on the stored template, and on the PVC
		"$ kubectl apply -f examples/01-good.yaml",
		"statefulset.apps/db created",
		`data: storageClassName=managed-csi labels={"stateguard.dev/snapshot-schedule":"daily"}`,
		// the warning mode
		"$ kubectl apply -f examples/03-warn-namespace.yaml",
		"namespace/legacy created",
		"Warning: [headless-service]",
		"Warning: [snapshot-schedule]",
		"statefulset.apps/cache created",
		// the way to go on, and the clean-up
		"KUBECONFIG=",
		"Walkthrough done",
		"Stopping stateguard serve, kube-controller-manager, kube-apiserver and etcd",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if !regexp.MustCompile(`(?m)^data-db-0\s+Pending\s.*managed-csi\s.*daily$`).MatchString(out) {
		t.Errorf("output shows no PVC data-db-0 of class managed-csi labelled daily")
	}
	// The denial: kubectl's own one-line error, then its exit status.
	_, after, _ := strings.Cut(out, "$ kubectl apply -f examples/02-denied.yaml\n")
	step, _, _ := strings.Cut(after, "\n\n")
	denial := ""
	for _, line := range strings.Split(step, "\n") {
		if strings.Contains(line, "serves no ReadWriteMany Filesystem volumes") {
			denial = line
		}
	}
	switch {
	case denial == "":
		t.Errorf("no denial after kubectl apply -f examples/02-denied.yaml:\n%s", step)
	case !strings.Contains(denial, "[storage-class]") || !strings.Contains(denial, "uploads") || strings.HasPrefix(denial, "Warning:"):
		t.Errorf("the denial does not name the StatefulSet and the policy: %s", denial)
	}
	if !strings.Contains(step, "(exit status 1)") {
		t.Errorf("kubectl apply -f examples/02-denied.yaml did not fail:\n%s", step)
	}
}

// assertNothingLeft checks that no process names the demo's temp dir any
// more and that the dir is empty.
func assertNothingLeft(t *testing.T, tmp string) {
	t.Helper()
	if runtime.GOOS == "linux" {
		if pids := processesMentioning(tmp); len(pids) > 0 {
			t.Errorf("processes left running: %s", strings.Join(pids, "\n"))
		}
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind in the temp dir: %s", e.Name())
	}
}

func processesMentioning(s string) []string {
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var out []string
	for _, path := range cmdlines {
		data, err := os.ReadFile(path)
		if err != nil || !bytes.Contains(data, []byte(s)) {
			continue
		}
		out = append(out, filepath.Base(filepath.Dir(path))+": "+string(bytes.ReplaceAll(data, []byte{0}, []byte{' '})))
	}
	return out
}

type binaries struct {
	demo, stateguard, assets, helm, kubectl, root string
}

var (
	buildOnce sync.Once
	built     binaries
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// buildBinaries skips the test unless KUBEBUILDER_ASSETS, HELM and kubectl
// are available (failing it instead with STATEGUARD_REQUIRE_INTEGRATION=1),
// then builds the demo and stateguard once.
func buildBinaries(t *testing.T) binaries {
	t.Helper()
	assets, helm := os.Getenv("KUBEBUILDER_ASSETS"), os.Getenv("HELM")
	kubectl, kerr := exec.LookPath(envOr("KUBECTL", "kubectl"))
	var missing []string
	if assets == "" {
		missing = append(missing, "KUBEBUILDER_ASSETS")
	}
	if helm == "" {
		missing = append(missing, "HELM")
	}
	if kerr != nil {
		missing = append(missing, "kubectl ("+kerr.Error()+")")
	}
	if len(missing) > 0 {
		msg := "the demo test needs " + strings.Join(missing, ", ") + ": `make test` sets them; by hand: `make k8s-assets helm` and KUBEBUILDER_ASSETS=$(pwd)/bin/k8s/<version> HELM=$(pwd)/bin/helm/<version>/helm"
		cluster.Missing(t, msg)
	}
	buildOnce.Do(func() {
		root, err := filepath.Abs("../..")
		if err != nil {
			buildErr = err
			return
		}
		if buildDir, err = os.MkdirTemp("", "stateguard-demo-test-"); err != nil {
			buildErr = err
			return
		}
		built = binaries{
			demo: filepath.Join(buildDir, "demo"), stateguard: filepath.Join(buildDir, "stateguard"),
			assets: abs(assets), helm: abs(helm), kubectl: kubectl, root: root,
		}
		for pkg, out := range map[string]string{"./hack/demo": built.demo, "./cmd/stateguard": built.stateguard} {
			cmd := exec.Command("go", "build", "-o", out, pkg)
			cmd.Dir = root
			if b, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// demoCommand prepares the demo as `make demo` runs it, its temp files under
// tmp. If the test ends with the demo still running, it is interrupted, then
// killed.
func demoCommand(t *testing.T, b binaries, tmp string, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	full := append([]string{"--assets", b.assets, "--helm", b.helm, "--kubectl", b.kubectl, "--stateguard", b.stateguard,
		"--examples", "examples", "--chart", "charts/stateguard"}, args...)
	cmd := exec.Command(b.demo, full...)
	cmd.Dir = b.root
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // like a terminal's job; Ctrl-C is sent by the test
	t.Cleanup(func() {
		if cmd.Process != nil && cmd.ProcessState == nil {
			_ = cmd.Process.Signal(os.Interrupt)
			if waitTimeout(cmd, 60*time.Second) != nil {
				_ = cmd.Process.Kill()
			}
		}
	})
	return cmd, out
}

var errTimeout = errors.New("timed out")

// waitTimeout waits for cmd; on timeout it kills it and returns errTimeout.
func waitTimeout(cmd *exec.Cmd, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%w after %s", errTimeout, d)
	}
}

// syncBuffer collects output written from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls until the output contains s.
func (b *syncBuffer) waitFor(s string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(b.String(), s) {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}
