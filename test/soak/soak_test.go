// Package soak runs `stateguard serve` for a long time under load, against a
// real control plane (test/cluster) with the chart's webhook configurations,
// and looks for what only time shows: leaks, drift, lost requests.
//
// TestSoak, in two parts:
//
//  1. SOAK_DURATION (default 10m) at SOAK_RATE (default 1000) reviews/s over
//     HTTPS, hack/loadgen at a fixed rate (open loop: latency counted from
//     the schedule), one run a minute on fresh connections; /metrics is
//     sampled every 10s. It requires: no error, the achieved rate; p99
//     stable: each minute's under 250ms, and the second half's median minute
//     p99 at most 2 × the first half's + 2ms (no upward drift);
//     resident memory and goroutines, after the first minute, never more
//     than 10% above their value at one minute; open fds not growing (the
//     last sample at most 2 above the value at one minute, none more than
//     the load's connections above it).
//  2. SOAK_CREATES (default 10,000) StatefulSet creates through the real
//     kube-apiserver with both webhooks (client-go, 8 at a time): no error,
//     and the webhook's own counters add up to exactly the requests made:
//     stateguard_admission_decisions_total grows by one per policy per
//     create (3 × creates), stateguard_admission_duration_seconds counts
//     exactly one mutating and one validating review per create.
//
// It prints a summary table. It runs only with STATEGUARD_SOAK=1: `make
// soak` (hack/soak.mk) sets it, with KUBEBUILDER_ASSETS and HELM.
package soak

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stateguard/stateguard/test/cluster"
	"github.com/stateguard/stateguard/test/load/reviews"
	"github.com/stateguard/stateguard/test/serve"
)

// EnvSoak gates this package's tests.
const EnvSoak = "STATEGUARD_SOAK"

func TestMain(m *testing.M) {
	if os.Getenv(EnvSoak) != "1" {
		os.Exit(m.Run()) // every test skips; nothing to build
	}
	serve.Main(m, serve.LoadgenPkg)
}

const (
	sampleEvery = 10 * time.Second
	minute      = time.Minute
	growthLimit = 0.10 // RSS and goroutines after the first minute
	// p99 is stable when no minute's exceeds p99Ceiling ms (5% of the
	// chart's timeoutSeconds: nowhere near a refused write) and it does not
	// drift up: the median minute p99 of the second half of the run is at
	// most p99Trend × the first half's + p99Slack ms. A minute's p99 on a
	// shared machine follows the machine's load (see the loadavg column),
	// which is noise to both rules, not a trend.
	p99Ceiling         = 250.0
	p99Trend, p99Slack = 2.0, 2.0
	loadConns          = 8
	createWorker       = 8
)

// sample is one scrape of the process's metrics.
type sample struct {
	at                 time.Duration // since the load started
	rss, heap          float64       // bytes
	goroutines, fds    float64
	decisions, reviews float64
}

func TestSoak(t *testing.T) {
	if os.Getenv(EnvSoak) != "1" {
		t.Skipf("soak test: set %s=1 (make soak)", EnvSoak)
	}
	duration := envDuration(t, "SOAK_DURATION", 10*time.Minute)
	rate := envInt(t, "SOAK_RATE", 1000)
	creates := envInt(t, "SOAK_CREATES", 10_000)

	c := cluster.Start(t, cluster.Options{Webhooks: serve.ChartWebhooks(t)})
	srv := serve.Start(t, c)
	cs := serve.Clientset(t, c)
	serve.Seed(t, cs, "shop", "db")

	// Part 1: the HTTPS soak.
	var (
		mu      sync.Mutex
		samples []sample
	)
	began := time.Now()
	scrape := func() {
		m, err := srv.ScrapeErr()
		if err != nil {
			t.Errorf("scraping /metrics at +%s: %v", time.Since(began).Round(time.Second), err)
			return
		}
		s := sample{
			at:         time.Since(began),
			rss:        m.Sum("process_resident_memory_bytes"),
			heap:       m.Sum("go_memstats_heap_inuse_bytes"),
			goroutines: m.Sum("go_goroutines"),
			fds:        m.Sum("process_open_fds"),
			decisions:  m.Sum("stateguard_admission_decisions_total"),
			reviews:    m.Sum("stateguard_admission_duration_seconds_count"),
		}
		mu.Lock()
		samples = append(samples, s)
		mu.Unlock()
	}
	samplerDone := make(chan struct{})
	stopSampler := make(chan struct{})
	go func() {
		defer close(samplerDone)
		tick := time.NewTicker(sampleEvery)
		defer tick.Stop()
		scrape()
		for {
			select {
			case <-stopSampler:
				return
			case <-tick.C:
				scrape()
			}
		}
	}()
	var runs []serve.LoadgenResult
	for left := duration; left > 0; left -= minute {
		d := min(left, minute)
		runs = append(runs, srv.Loadgen(t, "-rate", strconv.Itoa(rate), "-conns", strconv.Itoa(loadConns),
			"-duration", d.String(), "-warmup", "0s"))
	}
	close(stopSampler)
	<-samplerDone
	scrape()
	soakTook := time.Since(began)

	// Part 2: StatefulSet creates through the API server.
	const ns = "soak"
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Services(ns).Create(context.Background(), reviews.Service(ns, "db"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	before := srv.Scrape(t)
	var (
		next     atomic.Int64
		errCount atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
	)
	createsBegan := time.Now()
	for w := 0; w < createWorker; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(creates) {
					return
				}
				sts := reviews.StatefulSet(ns, "db")
				sts.Name = fmt.Sprintf("db-%05d", i)
				if _, err := cs.AppsV1().StatefulSets(ns).Create(context.Background(), sts, metav1.CreateOptions{}); err != nil {
					errCount.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	createsTook := time.Since(createsBegan)
	after := srv.Scrape(t)
	delta := func(name string, match ...string) float64 {
		return after.Sum(name, match...) - before.Sum(name, match...)
	}
	decisions := delta("stateguard_admission_decisions_total", "operation=CREATE")
	mutating := delta("stateguard_admission_duration_seconds_count", "webhook=/mutate-apps-v1-statefulset")
	validating := delta("stateguard_admission_duration_seconds_count", "webhook=/validate-apps-v1-statefulset")
	byPolicy := map[string]float64{}
	for _, p := range []string{"headless-service", "storage-class", "snapshot-schedule"} {
		byPolicy[p] = delta("stateguard_admission_decisions_total", "operation=CREATE", "policy="+p)
	}
	denied := delta("stateguard_admission_decisions_total", "operation=CREATE", "decision=deny") + delta("stateguard_admission_decisions_total", "operation=CREATE", "decision=error")
	stored, err := cs.AppsV1().StatefulSets(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// The table.
	mu.Lock()
	defer mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "soak of stateguard serve: %s at %d reviews/s over HTTPS (%d connections, fixed rate), then %d StatefulSet creates through kube-apiserver\n",
		duration, rate, loadConns, creates)
	fmt.Fprintf(&b, "\nHTTPS load, one hack/loadgen run a minute (latency from the schedule):\n")
	fmt.Fprintf(&b, "%6s %9s %8s %8s %8s %8s %8s %8s %8s %7s %s\n", "minute", "requests", "rate/s", "p50", "p90", "p99", "p99.9", "max", "svc p99", "errors", "loadavg")
	var p99s []float64
	total, totalErrs := 0, 0
	for i, r := range runs {
		fmt.Fprintf(&b, "%6d %9d %8.1f %7.2fms %7.2fms %7.2fms %7.2fms %7.2fms %7.2fms %7d %s\n", i+1, r.Requests, r.Rate, r.P50, r.P90, r.P99, r.P999, r.Max, r.ServiceP99, r.Errors, r.LoadAvg)
		p99s = append(p99s, r.P99)
		total += r.Requests
		totalErrs += r.Errors
	}
	early, late := median(p99s[:len(p99s)/2]), median(p99s[len(p99s)/2:])
	trendLimit := p99Trend*early + p99Slack
	fmt.Fprintf(&b, "%6s %9d %8.1f %7s %58s %7d\n", "all", total, float64(total)/soakTook.Seconds(), "",
		fmt.Sprintf("median p99: first half %.2fms, second half %.2fms", early, late), totalErrs)

	fmt.Fprintf(&b, "\n/metrics every %s:\n%8s %9s %9s %11s %8s %11s\n", sampleEvery, "t", "RSS MiB", "heap MiB", "goroutines", "fds", "reviews")
	for _, s := range samples {
		fmt.Fprintf(&b, "%8s %9.1f %9.1f %11.0f %8.0f %11.0f\n", s.at.Round(time.Second), s.rss/(1<<20), s.heap/(1<<20), s.goroutines, s.fds, s.reviews)
	}
	base, later := baseline(samples)
	var growth struct{ rss, goroutines, fdsMax, fdsLast float64 }
	if base != nil {
		for _, s := range later {
			growth.rss = math.Max(growth.rss, s.rss/base.rss-1)
			growth.goroutines = math.Max(growth.goroutines, s.goroutines/base.goroutines-1)
			growth.fdsMax = math.Max(growth.fdsMax, s.fds-base.fds)
		}
		growth.fdsLast = later[len(later)-1].fds - base.fds
		fmt.Fprintf(&b, "after the first minute (vs. +%s): RSS at most %+.1f%%, goroutines at most %+.1f%% (limit %.0f%%); open fds at most %+.0f, last %+.0f\n",
			base.at.Round(time.Second), 100*growth.rss, 100*growth.goroutines, 100*growthLimit, growth.fdsMax, growth.fdsLast)
	}
	fmt.Fprintf(&b, "\nStatefulSet creates through kube-apiserver (both webhooks, %d at a time): %d in %s (%.0f/s), %d errors, %d stored\n",
		createWorker, creates, createsTook.Round(time.Millisecond), float64(creates)/createsTook.Seconds(), errCount.Load(), len(stored.Items))
	fmt.Fprintf(&b, "webhook counters for them: decisions %.0f (want %d: %v), denied or errored %.0f; reviews mutating %.0f, validating %.0f (want %d each)\n",
		decisions, 3*creates, byPolicy, denied, mutating, validating, creates)
	t.Log("\n" + b.String())

	// The verdicts.
	for i, r := range runs {
		if r.Rate < 0.98*float64(rate) {
			t.Errorf("minute %d: %.1f reviews/s, want %d", i+1, r.Rate, rate)
		}
		if r.P99 > p99Ceiling {
			t.Errorf("minute %d: p99 %.2fms, more than %.0fms", i+1, r.P99, p99Ceiling)
		}
	}
	if len(p99s) >= 2 && late > trendLimit {
		t.Errorf("p99 drifts up: the second half's minutes have a median p99 of %.2fms, the first half's %.2fms (limit %.2fms)", late, early, trendLimit)
	}
	switch {
	case base == nil:
		if duration > minute {
			t.Errorf("no sample after the first minute")
		}
	default:
		if growth.rss > growthLimit {
			t.Errorf("resident memory grew %.1f%% after the first minute, limit %.0f%%", 100*growth.rss, 100*growthLimit)
		}
		if growth.goroutines > growthLimit {
			t.Errorf("goroutines grew %.1f%% after the first minute, limit %.0f%%", 100*growth.goroutines, 100*growthLimit)
		}
		if growth.fdsLast > 2 || growth.fdsMax > loadConns {
			t.Errorf("open fds grew after the first minute: at most %+.0f, last %+.0f", growth.fdsMax, growth.fdsLast)
		}
	}
	if n := errCount.Load(); n > 0 {
		t.Errorf("%d of %d creates failed; first: %v", n, creates, firstErr.Load())
	}
	if len(stored.Items) != creates {
		t.Errorf("%d StatefulSets stored, want %d", len(stored.Items), creates)
	}
	if decisions != float64(3*creates) {
		t.Errorf("stateguard_admission_decisions_total grew by %.0f for %d creates, want exactly %d", decisions, creates, 3*creates)
	}
	for p, n := range byPolicy {
		if n != float64(creates) {
			t.Errorf("%s: %.0f decisions for %d creates", p, n, creates)
		}
	}
	if denied != 0 {
		t.Errorf("%.0f deny or error decisions for creates that all should pass", denied)
	}
	if mutating != float64(creates) || validating != float64(creates) {
		t.Errorf("reviews counted: %.0f mutating and %.0f validating for %d creates, want exactly %d each", mutating, validating, creates, creates)
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// baseline returns the first sample at or after one minute and the ones
// after it.
func baseline(samples []sample) (*sample, []sample) {
	for i := range samples {
		if samples[i].at >= minute {
			if i == len(samples)-1 {
				return nil, nil
			}
			return &samples[i], samples[i+1:]
		}
	}
	return nil, nil
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive Go duration (10m, 90s)", name, v)
	}
	return d
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}
