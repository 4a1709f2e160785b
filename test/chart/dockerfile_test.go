package chart_test

import (
	"bufio"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

// dockerfile is the parsed Dockerfile: stages with their instructions, the
// global ARG defaults, and ${VAR} references resolved against them.
type dockerfile struct {
	args   map[string]string // global ARGs (before the first FROM) with defaults
	stages []*stage
}

type stage struct {
	from, name   string
	instructions []instruction
}

type instruction struct {
	cmd  string // upper case
	args string
	line int
}

func parseDockerfile(t *testing.T) *dockerfile {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	df := &dockerfile{args: map[string]string{}}
	sc := bufio.NewScanner(f)
	var cont strings.Builder
	start, n := 0, 0
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if cont.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cont.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(trimmed, "\\") {
			cont.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cont.WriteString(trimmed)
		full := cont.String()
		cont.Reset()
		cmd, rest, _ := strings.Cut(full, " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(rest), line: start}
		switch {
		case in.cmd == "FROM":
			fields := strings.Fields(in.args)
			var image, name string
			for i := 0; i < len(fields); i++ {
				if strings.HasPrefix(fields[i], "--") {
					continue
				}
				if image == "" {
					image = fields[i]
				} else if strings.EqualFold(fields[i], "AS") && i+1 < len(fields) {
					name = fields[i+1]
					break
				}
			}
			df.stages = append(df.stages, &stage{from: df.expand(image), name: name})
		case len(df.stages) == 0:
			if in.cmd == "ARG" {
				k, v, _ := strings.Cut(in.args, "=")
				df.args[k] = v
			}
		default:
			s := df.stages[len(df.stages)-1]
			s.instructions = append(s.instructions, in)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(df.stages) == 0 {
		t.Fatalf("Dockerfile has no FROM")
	}
	return df
}

func (df *dockerfile) expand(s string) string {
	return regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`).ReplaceAllStringFunc(s, func(m string) string {
		name := strings.Trim(m, "${}")
		if v, ok := df.args[name]; ok {
			return v
		}
		return m
	})
}

func (s *stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.instructions {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func TestDockerfile(t *testing.T) {
	df := parseDockerfile(t)
	if len(df.stages) < 2 {
		t.Fatalf("want a multi-stage build (builder + runtime), got %d stage(s)", len(df.stages))
	}
	final := df.stages[len(df.stages)-1]
	builder := df.stages[0]

	// The builder: Go 1.26, a static, reproducible, version-stamped binary.
	if !regexp.MustCompile(`^golang:1\.26(\.\d+)?(-|$)`).MatchString(builder.from) {
		t.Errorf("builder stage is FROM %s, want golang:1.26", builder.from)
	}
	var build string
	for _, run := range builder.all("RUN") {
		if strings.Contains(run.args, "go build") {
			build = run.args
		}
	}
	if build == "" {
		t.Fatalf("no `go build` in the builder stage")
	}
	env := ""
	for _, e := range builder.all("ENV") {
		env += " " + e.args
	}
	if !strings.Contains(env+" "+build, "CGO_ENABLED=0") {
		t.Errorf("CGO_ENABLED=0 is not set for the build: the binary must be static for a distroless/static base")
	}
	for _, want := range []string{"-trimpath", "-X github.com/stateguard/stateguard/internal/version.Version=${VERSION}", "./cmd/stateguard"} {
		if !strings.Contains(build, want) {
			t.Errorf("go build lacks %q: %s", want, build)
		}
	}
	if !strings.Contains(env, "GOTOOLCHAIN=local") {
		t.Errorf("the builder must not download another Go toolchain (ENV GOTOOLCHAIN=local)")
	}

	// The runtime: distroless static (or scratch), no shell, a numeric non-root user.
	if !strings.HasPrefix(final.from, "gcr.io/distroless/static") && final.from != "scratch" {
		t.Errorf("final stage is FROM %s, want gcr.io/distroless/static:nonroot or scratch", final.from)
	}
	for _, in := range final.instructions {
		if in.cmd == "RUN" {
			t.Errorf("line %d: RUN in the final stage (there is no shell there)", in.line)
		}
	}
	users := final.all("USER")
	if len(users) == 0 {
		t.Fatalf("final stage sets no USER: the image would run as root")
	}
	uid, gid := parseUser(t, users[len(users)-1].args)
	if uid == 0 || gid == 0 {
		t.Errorf("USER %d:%d: want non-root", uid, gid)
	}
	entry := final.all("ENTRYPOINT")
	if len(entry) == 0 || !strings.HasPrefix(entry[len(entry)-1].args, "[") {
		t.Errorf("final ENTRYPOINT must be exec form (no shell): %v", entry)
	}
	copied := false
	for _, c := range final.all("COPY") {
		if strings.Contains(c.args, "--from="+builder.name) {
			copied = true
		}
	}
	if !copied {
		t.Errorf("final stage does not copy the binary from the builder stage %q", builder.name)
	}

}

// The chart runs the image as the Dockerfile's user, so file permissions and
// runAsNonRoot agree with the image.
func TestChartRunsAsTheImageUser(t *testing.T) {
	df := parseDockerfile(t)
	users := df.stages[len(df.stages)-1].all("USER")
	if len(users) == 0 {
		t.Fatalf("the Dockerfile's final stage sets no USER")
	}
	uid, gid := parseUser(t, users[len(users)-1].args)
	objs := splitObjects(t, render(t, renderOpts{ShowOnly: "templates/deployment.yaml"}))
	var d appsv1.Deployment
	if err := decodeStrict(objs[0].JSON, &d); err != nil {
		t.Fatal(err)
	}
	psc := d.Spec.Template.Spec.SecurityContext
	if psc.RunAsUser == nil || *psc.RunAsUser != int64(uid) || psc.RunAsGroup == nil || *psc.RunAsGroup != int64(gid) {
		t.Errorf("chart runs as %s:%s, the Dockerfile's USER is %d:%d", show(psc.RunAsUser), show(psc.RunAsGroup), uid, gid)
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.SecurityContext.RunAsUser != nil && *c.SecurityContext.RunAsUser != int64(uid) {
			t.Errorf("container %s runs as %d, the Dockerfile's USER is %d", c.Name, *c.SecurityContext.RunAsUser, uid)
		}
	}
}

func parseUser(t *testing.T, s string) (uid, gid int) {
	t.Helper()
	u, g, hasGroup := strings.Cut(strings.TrimSpace(s), ":")
	var err error
	if uid, err = strconv.Atoi(u); err != nil {
		t.Fatalf("USER %q: want a numeric UID (kubelet's runAsNonRoot check cannot verify a user name)", s)
	}
	gid = uid
	if hasGroup {
		if gid, err = strconv.Atoi(g); err != nil {
			t.Fatalf("USER %q: want a numeric GID", s)
		}
	}
	return uid, gid
}

// .dockerignore must keep every package the binary imports in the build context.
func TestDockerignoreKeepsTheBinarysPackages(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			t.Fatalf(".dockerignore: exceptions (%s) are not supported by this test; keep it a plain deny list", line)
		}
		patterns = append(patterns, strings.TrimPrefix(line, "/"))
	}
	excluded := func(rel string) string {
		for _, p := range patterns {
			// A pattern excludes a path if it matches the path or one of its parents.
			for dir := rel; dir != "." && dir != "/"; dir = path.Dir(dir) {
				if ok, _ := path.Match(p, dir); ok {
					return p
				}
				if strings.HasPrefix(p, "**/") {
					if ok, _ := path.Match(strings.TrimPrefix(p, "**/"), path.Base(dir)); ok {
						return p
					}
				}
			}
		}
		return ""
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		if p := excluded(f); p != "" {
			t.Errorf("%s is excluded by %q", f, p)
		}
	}
	cmd := exec.Command("go", "list", "-deps", "-f", `{{if not .Standard}}{{.Dir}}{{"\n"}}{{range .GoFiles}}{{$.Dir}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$.Dir}}/{{.}}{{"\n"}}{{end}}{{end}}`, "./cmd/stateguard")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	for _, p := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		rel, err := filepath.Rel(repoRoot, p)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // a module dependency, downloaded in the build
		}
		checked++
		if pat := excluded(filepath.ToSlash(rel)); pat != "" {
			t.Errorf("%s, which ./cmd/stateguard needs, is excluded from the image build context by .dockerignore pattern %q", rel, pat)
		}
	}
	if checked == 0 {
		t.Fatalf("go list found no package of this module under ./cmd/stateguard")
	}
}
