package load

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/stateguard/stateguard/policies"
	"github.com/stateguard/stateguard/test/cluster"
	"github.com/stateguard/stateguard/test/load/reviews"
)

// releaseNamespace is where the chart would be installed; its rendered
// namespaceSelector leaves it out.
const releaseNamespace = "stateguard-system"

// chartWebhooks renders the chart's webhook configurations with $HELM (as
// test/e2e does), so the measured rules, selectors and timeouts are the
// chart's.
func chartWebhooks(t *testing.T) envtest.WebhookInstallOptions {
	t.Helper()
	helm := os.Getenv("HELM")
	if helm == "" {
		if os.Getenv(cluster.EnvRequire) == "1" {
			t.Fatal("HELM is not set: `make helm`, then HELM=bin/helm/<version>/helm")
		}
		t.Skip("HELM is not set: `make helm`, then HELM=bin/helm/<version>/helm")
	}
	out, err := exec.Command(helm, "template", "stateguard", "../../charts/stateguard", "--namespace", releaseNamespace,
		"--show-only", "templates/webhooks.yaml").CombinedOutput()
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	var opts envtest.WebhookInstallOptions
	for _, doc := range strings.Split(string(out), "\n---") {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		switch meta.Kind {
		case "MutatingWebhookConfiguration":
			obj := &admissionv1.MutatingWebhookConfiguration{}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatal(err)
			}
			opts.MutatingWebhooks = append(opts.MutatingWebhooks, obj)
		case "ValidatingWebhookConfiguration":
			obj := &admissionv1.ValidatingWebhookConfiguration{}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatal(err)
			}
			opts.ValidatingWebhooks = append(opts.ValidatingWebhooks, obj)
		}
	}
	if len(opts.MutatingWebhooks) != 1 || len(opts.ValidatingWebhooks) != 1 {
		t.Fatalf("the chart rendered %d mutating and %d validating configurations, want 1 each", len(opts.MutatingWebhooks), len(opts.ValidatingWebhooks))
	}
	return opts
}

// clientset returns a client without client-side rate limiting (client-go's
// default of 5 requests/s would be what the tests measure).
func clientset(t *testing.T, c *cluster.Cluster) *kubernetes.Clientset {
	t.Helper()
	cfg := *c.Config
	cfg.QPS, cfg.Burst = -1, 0
	cfg.WarningHandler = rest.NoWarnings{}
	cs, err := kubernetes.NewForConfig(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// seed creates what the reviews expect in the cluster: the profile's
// StorageClasses, the namespace, the headless Services and the StatefulSet
// (see reviews.Cluster).
func seed(t *testing.T, cs kubernetes.Interface, namespace, name string) {
	t.Helper()
	ctx := context.Background()
	engine, err := policies.NewEngine(policies.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range engine.Config().CatalogStorageClasses() {
		if _, err := cs.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating StorageClass %s: %v", sc.Name, err)
		}
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", namespace, err)
	}
	services, statefulSets := reviews.Cluster(namespace, name)
	for _, svc := range services {
		svc = svc.DeepCopy()
		svc.ResourceVersion, svc.UID, svc.ManagedFields, svc.CreationTimestamp = "", "", nil, metav1.Time{}
		svc.Spec.ClusterIPs, svc.Spec.IPFamilies, svc.Spec.IPFamilyPolicy = nil, nil, nil
		if _, err := cs.CoreV1().Services(namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating Service %s: %v", svc.Name, err)
		}
	}
	for _, sts := range statefulSets {
		sts = sts.DeepCopy()
		sts.ResourceVersion, sts.UID, sts.ManagedFields, sts.CreationTimestamp, sts.Generation = "", "", nil, metav1.Time{}, 0
		if _, err := cs.AppsV1().StatefulSets(namespace).Create(ctx, sts, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating StatefulSet %s: %v", sts.Name, err)
		}
	}
}

// server is a running `stateguard serve`.
type server struct {
	cmd       *exec.Cmd
	done      chan error
	log       *syncBuffer
	probeAddr string
	metrics   string
	port      int
	caFile    string
}

// startServe runs `stateguard serve` against the cluster on the port and
// certificate envtest registered the webhooks with, and waits for /readyz.
func startServe(t *testing.T, c *cluster.Cluster, env ...string) *server {
	t.Helper()
	s := &server{done: make(chan error, 1), log: &syncBuffer{}, probeAddr: freeAddr(t), metrics: freeAddr(t),
		port: c.Webhooks.LocalServingPort}
	s.caFile = filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(s.caFile, c.Webhooks.LocalServingCAData, 0o600); err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(stateguardBin, "serve",
		"--kubeconfig", c.Kubeconfig,
		"--cert-dir", c.Webhooks.LocalServingCertDir,
		"--port", strconv.Itoa(c.Webhooks.LocalServingPort),
		"--health-probe-bind-address", s.probeAddr,
		"--metrics-bind-address", s.metrics,
		"--log-format", "text",
	)
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			t.Logf("stateguard serve log (tail):\n%s", tailLines(s.log.String(), 40))
		}
	})
	s.waitReady(t, 2*time.Minute)
	return s
}

func (s *server) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		select {
		case err := <-s.done:
			s.done <- err
			return false, fmt.Errorf("stateguard serve exited: %v", err)
		default:
		}
		resp, err := http.Get("http://" + s.probeAddr + "/readyz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("stateguard serve never became ready: %v\n%s", err, tailLines(s.log.String(), 40))
	}
}

func (s *server) stop(t *testing.T) {
	if s.cmd.Process == nil {
		return
	}
	select {
	case err := <-s.done:
		s.done <- err
		return
	default:
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-s.done:
		s.done <- err
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		t.Errorf("stateguard serve did not exit within 30s of SIGINT")
	}
}

// status returns a field of /proc/<pid>/status in kB (VmRSS, VmHWM, ...).
func (s *server) status(t *testing.T, field string) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
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
	t.Fatalf("no %s in /proc/%d/status", field, s.cmd.Process.Pid)
	return 0
}

// cpu returns the CPU time (user + system) the process has used, from
// /proc/<pid>/stat (clock ticks of 10ms).
func (s *server) cpu(t *testing.T) time.Duration {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
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
	resp, err := http.Get("http://" + s.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// scrape returns, for each named metric, its values by webhook label.
func (s *server) scrape(t *testing.T, names ...string) map[string]map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + s.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		for _, name := range names {
			rest, ok := strings.CutPrefix(sc.Text(), name+"{")
			if !ok {
				continue
			}
			labels, value, _ := strings.Cut(rest, "} ")
			_, webhook, _ := strings.Cut(labels, `webhook="`)
			webhook, _, _ = strings.Cut(webhook, `"`)
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatal(err)
			}
			if out[name] == nil {
				out[name] = map[string]float64{}
			}
			out[name][webhook] = v
		}
	}
	return out
}

// loadgenResult is hack/loadgen's -json output.
type loadgenResult struct {
	Requests   int      `json:"requests"`
	Errors     int      `json:"errors"`
	Rate       float64  `json:"achieved_rate"`
	P50        float64  `json:"p50_ms"`
	P90        float64  `json:"p90_ms"`
	P99        float64  `json:"p99_ms"`
	P999       float64  `json:"p999_ms"`
	Max        float64  `json:"max_ms"`
	ServiceP50 float64  `json:"service_p50_ms"`
	ServiceP99 float64  `json:"service_p99_ms"`
	LoadgenCPU float64  `json:"loadgen_cpu_s"`
	DurationS  float64  `json:"duration_s"`
	LoadAvg    string   `json:"loadavg"`
	Samples    []string `json:"error_samples"`
}

// loadgen runs hack/loadgen against the server and returns its result; any
// error the load generator counted fails the test.
func (s *server) loadgen(t *testing.T, args ...string) loadgenResult {
	t.Helper()
	full := append([]string{"-url", fmt.Sprintf("https://127.0.0.1:%d", s.port), "-ca", s.caFile, "-json"}, args...)
	cmd := exec.Command(loadgenBin, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var res loadgenResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("loadgen %s: %v (%v)\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, runErr, stdout.String(), stderr.String())
	}
	if runErr != nil || res.Errors > 0 {
		t.Errorf("loadgen %s: %v, %d errors: %s\n%s", strings.Join(args, " "), runErr, res.Errors, strings.Join(res.Samples, "\n"), stderr.String())
	}
	return res
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
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

// syncBuffer is a bytes.Buffer safe for a process's output and the test.
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

func tailLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

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
