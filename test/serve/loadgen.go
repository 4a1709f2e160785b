package serve

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/stateguard/stateguard/internal/loadgen"
)

// LoadgenResult is hack/loadgen's -json output.
type LoadgenResult = loadgen.Result

// Loadgen runs hack/loadgen (built by Build(LoadgenPkg)) against the server
// over HTTPS, trusting its CA, with args (-reviews, -conns, -rate,
// -duration, -warmup, ...), and returns its result. Any error the load
// generator counted, or a failed run, fails the test (Errorf: the result is
// still returned); output it cannot parse fails it at once.
func (s *Server) Loadgen(t testing.TB, args ...string) LoadgenResult {
	t.Helper()
	full := append([]string{"-url", "https://127.0.0.1:" + strconv.Itoa(s.Port), "-ca", s.CAFile, "-json"}, args...)
	cmd := exec.Command(Bin(t, LoadgenPkg), full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = childProcAttr()
	runErr := cmd.Run()
	var res LoadgenResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("loadgen %s: %v (%v)\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, runErr, stdout.String(), stderr.String())
	}
	if runErr != nil || res.Errors > 0 {
		t.Errorf("loadgen %s: %v, %d errors: %s\n%s", strings.Join(args, " "), runErr, res.Errors, strings.Join(res.ErrorSamples, "\n"), stderr.String())
	}
	return res
}
