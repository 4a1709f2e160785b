package chart_test

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// buildLikeTheDockerfile runs the Dockerfile's `go build` (its ENV, its
// flags, VERSION stamped) outside a container and returns the binary.
func buildLikeTheDockerfile(t *testing.T, version string) string {
	t.Helper()
	df := parseDockerfile(t)
	builder := df.stages[0]
	var env []string
	for _, e := range builder.all("ENV") {
		env = append(env, strings.Fields(e.args)...)
	}
	var build string
	for _, run := range builder.all("RUN") {
		if strings.Contains(run.args, "go build") {
			build = run.args
		}
	}
	if build == "" {
		t.Fatalf("no `go build` in the Dockerfile's builder stage")
	}
	// Drop BuildKit's --mount options; send the output to a temp dir.
	build = regexp.MustCompile(`--mount=\S+`).ReplaceAllString(build, "")
	bin := filepath.Join(t.TempDir(), "stateguard")
	out := regexp.MustCompile(`-o\s+\S+`).FindString(build)
	if out == "" {
		t.Fatalf("the Dockerfile's go build has no -o: %s", build)
	}
	build = strings.Replace(build, out, "-o "+bin, 1)
	cmd := exec.Command("sh", "-c", build)
	cmd.Dir = repoRoot
	cmd.Env = append(append(os.Environ(), env...),
		"VERSION="+version, "TARGETOS="+runtime.GOOS, "TARGETARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the Dockerfile's build command fails: %v\n%s\n%s", err, build, out)
	}
	return bin
}

// The Dockerfile's build makes a static binary (it has to run on
// distroless/static), stamped with the version.
func TestDockerfileBuildsAStaticStampedBinary(t *testing.T) {
	bin := buildLikeTheDockerfile(t, "v9.8.7-test")
	f, err := elf.Open(bin)
	if err != nil {
		t.Skipf("not an ELF binary (%v): the static-linking check needs Linux", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary is dynamically linked (%s): it would not start on distroless/static", p.Type)
		}
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "v9.8.7-test") {
		t.Errorf("`stateguard version` prints %q (%v), want the stamped v9.8.7-test", out, err)
	}
}

// Every flag the chart passes to `stateguard serve` is one the binary has:
// an unknown flag would crash-loop every replica.
func TestChartArgsAreServeFlags(t *testing.T) {
	bin := buildLikeTheDockerfile(t, "devel")
	help, err := exec.Command(bin, "serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("stateguard serve --help: %v\n%s", err, help)
	}
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-\w, )?(--[a-z0-9-]+)`).FindAllStringSubmatch(string(help), -1) {
		known[m[1]] = true
	}
	if !known["--config"] || !known["--cert-dir"] {
		t.Fatalf("could not read the flags from `stateguard serve --help`:\n%s", help)
	}
	forEachRendering(t, func(t *testing.T, r *rendering) {
		args := r.deployment.Spec.Template.Spec.Containers[0].Args
		for _, a := range args[1:] {
			name, _, _ := strings.Cut(a, "=")
			if !known[name] {
				t.Errorf("the chart passes %s, which `stateguard serve` does not know", a)
			}
		}
	})
}
