// Package serve runs the real `stateguard serve` binary for integration
// tests, against a control plane of test/cluster: on envtest's webhook port
// and serving certificate (or a port and certificate directory of the
// test's own), with /readyz awaited, /metrics scraped, signals sent, and the
// process's log printed when the test fails.
//
// The binary is built once per test binary, as `make build` builds the
// release (CGO_ENABLED=0, -trimpath, -s -w), by Build or Main from TestMain:
//
//	func TestMain(m *testing.M) { serve.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		c := cluster.Start(t, cluster.Options{Webhooks: serve.ChartWebhooks(t)})
//		srv := serve.Start(t, c)
//		... srv.Metric(t, "stateguard_admission_decisions_total", "decision=deny") ...
//	}
//
// Everything Start starts is stopped by the test's Cleanup; the children run
// in their own process group and, on Linux, die with the test binary.
package serve

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sync"
	"testing"
)

// Main packages that Build knows.
const (
	// StateguardPkg is the stateguard command, always built.
	StateguardPkg = "github.com/stateguard/stateguard/cmd/stateguard"
	// LoadgenPkg is the HTTPS load generator (hack/loadgen).
	LoadgenPkg = "github.com/stateguard/stateguard/hack/loadgen"
)

var built struct {
	mu    sync.Mutex
	dir   string
	paths map[string]string // import path -> binary
}

// Build compiles stateguard and the extra main packages (import paths, e.g.
// LoadgenPkg) into a new temporary directory, in one `go build`, as `make
// build` builds the release binary. Call it once, from TestMain, and Cleanup
// after m.Run; Main does both.
func Build(extra ...string) error {
	built.mu.Lock()
	defer built.mu.Unlock()
	if built.dir != "" {
		return errors.New("serve.Build called twice")
	}
	dir, err := os.MkdirTemp("", "stateguard-serve-")
	if err != nil {
		return err
	}
	pkgs := append([]string{StateguardPkg}, extra...)
	args := append([]string{"build", "-trimpath", "-ldflags", "-s -w", "-o", dir + string(filepath.Separator)}, pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		_ = os.RemoveAll(dir)
		return fmt.Errorf("go build %v: %w", pkgs, err)
	}
	built.dir = dir
	built.paths = map[string]string{}
	for _, pkg := range pkgs {
		built.paths[pkg] = filepath.Join(dir, path.Base(pkg))
	}
	return nil
}

// Cleanup removes what Build built.
func Cleanup() {
	built.mu.Lock()
	defer built.mu.Unlock()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	built.dir, built.paths = "", nil
}

// Main is a TestMain: Build (stateguard and extra), m.Run, Cleanup, exit.
func Main(m *testing.M, extra ...string) {
	if err := Build(extra...); err != nil {
		fmt.Fprintln(os.Stderr, "building the binaries under test:", err)
		os.Exit(1)
	}
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// Binary returns the path of the built stateguard binary, failing the test
// if Build was not called.
func Binary(t testing.TB) string {
	t.Helper()
	return Bin(t, StateguardPkg)
}

// Bin returns the path of a main package that Build built.
func Bin(t testing.TB, pkg string) string {
	t.Helper()
	built.mu.Lock()
	defer built.mu.Unlock()
	p, ok := built.paths[pkg]
	if !ok {
		t.Fatalf("%s was not built: call serve.Build(%q) (or serve.Main) from TestMain", pkg, pkg)
	}
	return p
}
