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

	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/stateguard/stateguard/test/cluster"
	"github.com/stateguard/stateguard/test/serve"
)

// chartWebhooks renders the chart's webhook configurations with $HELM
// (serve.ChartWebhooks), so the measured rules, selectors and timeouts are
// the chart's.
func chartWebhooks(t *testing.T) envtest.WebhookInstallOptions {
	t.Helper()
	return serve.ChartWebhooks(t)
}

// clientset returns a client without client-side rate limiting (client-go's
// default of 5 requests/s would be what the tests measure).
func clientset(t *testing.T, c *cluster.Cluster) *kubernetes.Clientset {
	t.Helper()
	return serve.Clientset(t, c)
}

// seed creates what the reviews expect in the cluster: the profile's
// StorageClasses, the namespace, the headless Services and the StatefulSet
// (see reviews.Cluster).
func seed(t *testing.T, cs kubernetes.Interface, namespace, name string) {
	t.Helper()
	serve.Seed(t, cs, namespace, name)
}

// server is a running `stateguard serve` (serve.Server), with the
// measurements of this package.
type server struct {
	*serve.Server
	log logView
}

// logView reads the process's output so far.
type logView struct{ s *serve.Server }

func (l logView) String() string { return l.s.Log() }

// startServe runs `stateguard serve` against the cluster on the port and
// certificate envtest registered the webhooks with, env added to its
// environment, and waits for /readyz (serve.StartWith).
func startServe(t *testing.T, c *cluster.Cluster, env ...string) *server {
	t.Helper()
	// Built by this package's TestMain.
	serve.Use(serve.StateguardPkg, stateguardBin)
	serve.Use(serve.LoadgenPkg, loadgenBin)
	s := serve.StartWith(t, c, serve.Options{Env: env})
	return &server{Server: s, log: logView{s}}
}

func (s *server) stop(t *testing.T) { t.Helper(); s.Stop(t) }

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

// loadgenResult is hack/loadgen's -json output.
type loadgenResult = serve.LoadgenResult

// loadgen runs hack/loadgen against the server and returns its result; any
// error the load generator counted fails the test.
func (s *server) loadgen(t *testing.T, args ...string) loadgenResult {
	t.Helper()
	return s.Loadgen(t, args...)
}

// loadAvg returns /proc/loadavg's 1, 5 and 15 minute averages.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "n/a"
	}
	return strings.Join(strings.Fields(string(data))[:3], " ")
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
