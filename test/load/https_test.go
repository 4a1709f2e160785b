package load

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stateguard/stateguard/internal/loadgen"
	"github.com/stateguard/stateguard/test/cluster"
	"github.com/stateguard/stateguard/test/serve"
)

// Targets of the HTTPS load (2 cores, the load generator included).
const (
	targetMaxRate      = 3000.0 // reviews/s sustained
	targetMaxRateP99   = 10.0   // ms
	targetFixedRate    = 500.0  // reviews/s
	targetFixedRateP99 = 2.0    // ms
)

// TestLoadHTTPS drives the real `stateguard serve` over HTTPS on loopback
// with hack/loadgen: keep-alive HTTP/1.1 TLS connections, each StatefulSet
// create's pair of reviews (mutate, then validate the mutated object) in
// turn, first as fast as the connections go, then open loop at 500/s. The
// API server only feeds the informers here; the reviews go straight to the
// webhook, as the API server would send them.
//
// STATEGUARD_LOAD_DURATION (default 20s) sets each run's measured time;
// STATEGUARD_LOAD_CONNS (default 4) the connections at max rate (more
// connections queue more requests at the server: more latency, no more
// throughput on 2 cores).
func TestLoadHTTPS(t *testing.T) {
	requireLoad(t)
	c := cluster.Start(t, cluster.Options{Webhooks: serve.ChartWebhooks(t)})
	srv := startServe(t, c)
	serve.Seed(t, serve.Clientset(t, c), "shop", "db")

	duration := envDuration(t, "STATEGUARD_LOAD_DURATION", 20*time.Second).String()
	conns := "4"
	if v := envString("STATEGUARD_LOAD_CONNS"); v != "" {
		conns = v
	}
	reviews := "mutate-statefulset/create,validate-statefulset/create-mutated"

	// Every review kind once, so that a wrong answer to any fails here.
	srv.Loadgen(t, "-reviews", "all", "-conns", "2", "-duration", "2s", "-warmup", "1s")

	before := loadgen.LoadAvg()
	cpu0 := srv.cpu(t)
	maxRate := srv.Loadgen(t, "-reviews", reviews, "-conns", conns, "-duration", duration, "-warmup", "3s")
	cpu1 := srv.cpu(t)
	fixed := srv.Loadgen(t, "-reviews", reviews, "-conns", "8", "-rate", fmt.Sprint(targetFixedRate), "-duration", duration, "-warmup", "3s")
	cpu2 := srv.cpu(t)
	// Per review, warm-up included (the CPU counter cannot tell it apart).
	perReview := func(cpu time.Duration, r serve.LoadgenResult, warmup float64) float64 {
		return float64(cpu.Microseconds()) / (r.Rate * (r.DurationS + warmup))
	}
	maxCPU, fixedCPU := perReview(cpu1-cpu0, maxRate, 3), perReview(cpu2-cpu1, fixed, 3)

	var b strings.Builder
	fmt.Fprintf(&b, "HTTPS load on `stateguard serve` (reviews %s; loadavg before %s)\n", reviews, before)
	fmt.Fprintf(&b, "%-22s %10s %8s %8s %8s %8s %8s %7s %12s %s\n", "run", "rate/s", "p50", "p90", "p99", "p99.9", "max", "errors", "loadgen CPU", "loadavg after")
	row := func(name string, r serve.LoadgenResult) {
		fmt.Fprintf(&b, "%-22s %10.0f %7.2fms %7.2fms %7.2fms %7.2fms %7.2fms %7d %11.0f%% %s\n", name, r.Rate, r.P50, r.P90, r.P99, r.P999, r.Max, r.Errors, 100*r.LoadgenCPU/r.DurationS, r.LoadAvg)
	}
	row("max rate, "+conns+" conns", maxRate)
	row(fmt.Sprintf("fixed %.0f/s, 8 conns", targetFixedRate), fixed)
	fmt.Fprintf(&b, "(fixed rate: from the schedule when a request queued for a connection; service time p50 %.2fms, p99 %.2fms)\n", fixed.ServiceP50, fixed.ServiceP99)
	fmt.Fprintf(&b, "stateguard serve CPU: %.0fµs per review at max rate, %.0fµs at %.0f/s\n", maxCPU, fixedCPU, targetFixedRate)
	t.Log("\n" + b.String())

	if maxRate.Rate < targetMaxRate {
		t.Errorf("max rate %.0f reviews/s, target >= %.0f", maxRate.Rate, targetMaxRate)
	}
	if maxRate.P99 > targetMaxRateP99 {
		t.Errorf("max-rate p99 %.2fms, target <= %.0fms", maxRate.P99, targetMaxRateP99)
	}
	if fixed.Rate < 0.98*targetFixedRate {
		t.Errorf("fixed-rate run achieved %.0f/s of %.0f/s", fixed.Rate, targetFixedRate)
	}
	if fixed.P99 > targetFixedRateP99 {
		t.Errorf("p99 at %.0f/s %.2fms, target <= %.0fms", targetFixedRate, fixed.P99, targetFixedRateP99)
	}
}
