package load

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stateguard/stateguard/test/cluster"
	"github.com/stateguard/stateguard/test/serve"
)

// server is a running `stateguard serve` (serve.Server), with the
// measurements of this package.
type server struct{ *serve.Server }

// startServe runs `stateguard serve` against the cluster on the port and
// certificate envtest registered the webhooks with, env added to its
// environment, and waits for /readyz (serve.StartWith).
func startServe(t *testing.T, c *cluster.Cluster, env ...string) *server {
	t.Helper()
	return &server{serve.StartWith(t, c, serve.Options{Env: env})}
}

// status returns a field of /proc/<pid>/status in kB (VmRSS, VmHWM, ...).
func (s *server) status(t *testing.T, field string) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			f := strings.Fields(rest)
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, s.Pid())
	return 0
}

// cpu returns the CPU time (user + system) the process has used, from
// /proc/<pid>/stat (clock ticks of 10ms).
func (s *server) cpu(t *testing.T) time.Duration {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// metric returns the value of an unlabelled metric from /metrics.
func (s *server) metric(t *testing.T, name string) float64 {
	t.Helper()
	m := s.Scrape(t)
	if !m.Has(name) {
		t.Fatalf("no metric %s", name)
	}
	return m.Sum(name)
}

// scrape returns, for each named metric, its values by webhook label.
func (s *server) scrape(t *testing.T, names ...string) map[string]map[string]float64 {
	t.Helper()
	m := s.Scrape(t)
	out := map[string]map[string]float64{}
	for _, name := range names {
		if by := m.By(name, "webhook"); len(by) > 0 {
			out[name] = by
		}
	}
	return out
}

// durationStats summarizes a sample of latencies.
type durationStats struct {
	n                   int
	median, p90, p99    time.Duration
	mean, min, maxValue time.Duration
}

func summarize(sample []time.Duration) durationStats {
	s := append([]time.Duration(nil), sample...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	q := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	out := durationStats{n: len(s), median: q(0.5), p90: q(0.9), p99: q(0.99), min: s[0], maxValue: s[len(s)-1]}
	if len(s)%2 == 0 {
		out.median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	out.mean = sum / time.Duration(len(s))
	return out
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

// envDuration reads a duration override from the environment.
func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return d
}

func envString(name string) string { return strings.TrimSpace(os.Getenv(name)) }
