package serve

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// LoadgenResult is hack/loadgen's -json output (its Result). Durations are
// in milliseconds.
type LoadgenResult struct {
	Target     string   `json:"target"`
	Reviews    []string `json:"reviews"`
	Conns      int      `json:"conns"`
	Mode       string   `json:"mode"`
	TargetRate float64  `json:"target_rate"`
	DurationS  float64  `json:"duration_s"`
	Requests   int      `json:"requests"`
	Errors     int      `json:"errors"`
	Rate       float64  `json:"achieved_rate"`
	P50        float64  `json:"p50_ms"`
	P90        float64  `json:"p90_ms"`
	P99        float64  `json:"p99_ms"`
	P999       float64  `json:"p999_ms"`
	Max        float64  `json:"max_ms"`
	Mean       float64  `json:"mean_ms"`
	ServiceP50 float64  `json:"service_p50_ms"`
	ServiceP99 float64  `json:"service_p99_ms"`
	LoadgenCPU float64  `json:"loadgen_cpu_s"`
	LoadAvg    string   `json:"loadavg"`
	Samples    []string `json:"error_samples"`
}

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
		t.Errorf("loadgen %s: %v, %d errors: %s\n%s", strings.Join(args, " "), runErr, res.Errors, strings.Join(res.Samples, "\n"), stderr.String())
	}
	return res
}
