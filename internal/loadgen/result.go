// Package loadgen holds what hack/loadgen reports, so that the load tests
// read its -json output with the very type it was written from.
package loadgen

import (
	"os"
	"strings"
)

// Result is what one hack/loadgen run measured (its -json output).
// Durations are in milliseconds.
type Result struct {
	Target       string   `json:"target"`
	Reviews      []string `json:"reviews"`
	Conns        int      `json:"conns"`
	Mode         string   `json:"mode"` // "max" or "fixed"
	TargetRate   float64  `json:"target_rate,omitempty"`
	DurationS    float64  `json:"duration_s"`
	Requests     int      `json:"requests"`
	Errors       int      `json:"errors"`
	Rate         float64  `json:"achieved_rate"`
	P50          float64  `json:"p50_ms"`
	P90          float64  `json:"p90_ms"`
	P99          float64  `json:"p99_ms"`
	P999         float64  `json:"p999_ms"`
	Max          float64  `json:"max_ms"`
	Mean         float64  `json:"mean_ms"`
	ServiceP50   float64  `json:"service_p50_ms"` // send to response, without queueing
	ServiceP99   float64  `json:"service_p99_ms"`
	LoadgenCPU   float64  `json:"loadgen_cpu_s"` // this process's CPU time while measuring
	LoadAvg      string   `json:"loadavg"`       // /proc/loadavg at the end
	ErrorSamples []string `json:"error_samples,omitempty"`
}

// LoadAvg returns /proc/loadavg's 1, 5 and 15 minute averages ("n/a" where
// there is none), printed beside every figure: on a shared machine they
// say how much to trust it.
func LoadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "n/a"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "n/a"
	}
	return strings.Join(f[:3], " ")
}
