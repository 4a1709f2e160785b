// Command loadgen sends AdmissionReviews to a webhook on this machine over
// HTTPS and reports throughput and latency: the tool behind `make load`
// (hack/perf.mk, test/load).
//
// It keeps N HTTP/1.1 TLS connections alive, as the API server does, and
// runs either at the highest rate they sustain (-rate 0, closed loop) or at a
// fixed rate (open loop). At a fixed rate, requests have a schedule
// (start + i/rate) and latency is measured from the scheduled time, not from
// when a connection was free to send: a slow response delays the requests
// queued behind it, and those delays count (no coordinated omission).
// Latencies are kept exactly (a sorted slice); the warm-up is not counted.
//
// The reviews are those of test/load/reviews (the in-process benchmarks send
// the same bytes); each response is checked for its request's UID and the
// expected verdict and patch. Any error, refused connection or wrong answer
// makes the exit status 1.
//
// Only targets on this machine are accepted: https://127.0.0.1:<port> or
// https://localhost:<port> (dialled as 127.0.0.1), nothing else.
//
//	go run ./hack/loadgen -url https://127.0.0.1:9443 -ca ca.crt -conns 16 -duration 20s
//	go run ./hack/loadgen -url https://127.0.0.1:9443 -ca ca.crt -rate 500 -duration 20s
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/stateguard/stateguard/internal/loadgen"
	"github.com/stateguard/stateguard/test/load/reviews"
)

const (
	maxDuration = 10 * time.Minute
	maxConns    = 256
	maxRate     = 100_000
	// errorSamples is how many distinct error messages are printed.
	errorSamples = 5
)

type options struct {
	target    *url.URL
	reviews   []reviews.Review
	conns     int
	rate      float64
	duration  time.Duration
	warmup    time.Duration
	timeout   time.Duration
	tlsConfig *tls.Config
	jsonOut   bool
}

func main() {
	opts, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	res := run(opts)
	if opts.jsonOut {
		out, _ := json.Marshal(res)
		fmt.Println(string(out))
	} else {
		printResult(os.Stdout, res)
	}
	if res.Errors > 0 || res.Requests == 0 {
		for _, e := range res.ErrorSamples {
			fmt.Fprintln(os.Stderr, "loadgen: error:", e)
		}
		if res.Requests == 0 {
			fmt.Fprintln(os.Stderr, "loadgen: no request completed")
		}
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	target := fs.String("url", "", "webhook base URL: https://127.0.0.1:<port> or https://localhost:<port> (required)")
	names := fs.String("reviews", "mutate-statefulset/create,validate-statefulset/create-mutated",
		`comma-separated reviews sent in turn, or "all"; names: `+strings.Join(reviewNames(), ", "))
	namespace := fs.String("namespace", "shop", "namespace of the reviewed objects (the webhook's cluster must hold them)")
	name := fs.String("name", "db", "name of the reviewed StatefulSet and its headless Service")
	conns := fs.Int("conns", 8, "keep-alive connections (each carries one request at a time)")
	rate := fs.Float64("rate", 0, "requests per second, open loop (0: as fast as the connections go)")
	duration := fs.Duration("duration", 10*time.Second, "measured duration, after the warm-up (at most 10m)")
	warmup := fs.Duration("warmup", 2*time.Second, "warm-up before measuring (connections, caches)")
	timeout := fs.Duration("timeout", 5*time.Second, "per-request timeout (the chart's timeoutSeconds)")
	caFile := fs.String("ca", "", "PEM file of the CA that signed the server's certificate")
	insecure := fs.Bool("insecure", false, "do not verify the server's certificate (loopback only anyway)")
	jsonOut := fs.Bool("json", false, "print the result as one JSON object")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	u, err := checkTarget(*target)
	if err != nil {
		return options{}, err
	}
	switch {
	case *conns < 1 || *conns > maxConns:
		return options{}, fmt.Errorf("-conns %d: want 1..%d", *conns, maxConns)
	case *rate < 0 || *rate > maxRate:
		return options{}, fmt.Errorf("-rate %g: want 0..%d", *rate, maxRate)
	case *duration <= 0 || *duration > maxDuration:
		return options{}, fmt.Errorf("-duration %s: want (0, %s]", *duration, maxDuration)
	case *warmup < 0 || *warmup > maxDuration:
		return options{}, fmt.Errorf("-warmup %s: want [0, %s]", *warmup, maxDuration)
	case *timeout <= 0:
		return options{}, fmt.Errorf("-timeout %s: want > 0", *timeout)
	}
	all := reviews.All(*namespace, *name)
	var selected []reviews.Review
	if *names == "all" {
		selected = all
	} else {
		for _, n := range strings.Split(*names, ",") {
			r, err := reviews.Find(all, strings.TrimSpace(n))
			if err != nil {
				return options{}, fmt.Errorf("-reviews: %w", err)
			}
			selected = append(selected, r)
		}
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	switch {
	case *caFile != "":
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return options{}, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return options{}, fmt.Errorf("-ca %s: no PEM certificate", *caFile)
		}
		tlsConfig.RootCAs = pool
	case *insecure:
		tlsConfig.InsecureSkipVerify = true //nolint:gosec // loopback only, asked for with -insecure
	default:
		return options{}, errors.New("give -ca <file> (or -insecure)")
	}
	return options{
		target: u, reviews: selected, conns: *conns, rate: *rate, duration: *duration,
		warmup: *warmup, timeout: *timeout, tlsConfig: tlsConfig, jsonOut: *jsonOut,
	}, nil
}

func reviewNames() []string {
	var out []string
	for _, r := range reviews.All("ns", "name") {
		out = append(out, r.Name)
	}
	return out
}

// checkTarget accepts only https URLs on this machine's IPv4 loopback
// address, written as 127.0.0.1 or localhost, with an explicit port.
func checkTarget(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("-url is required, e.g. https://127.0.0.1:9443")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("-url: %w", err)
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("-url %s: only https targets", raw)
	}
	if h := u.Hostname(); h != "127.0.0.1" && h != "localhost" {
		return nil, fmt.Errorf("-url %s: refusing a target that is not 127.0.0.1 or localhost", raw)
	}
	if u.Port() == "" {
		return nil, fmt.Errorf("-url %s: give the port", raw)
	}
	if u.User != nil || u.RawQuery != "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("-url %s: want only https://host:port (the review paths are added)", raw)
	}
	return u, nil
}

// loopbackDial dials 127.0.0.1 only, whatever the address says, so no
// request can leave the machine (localhost is never looked up).
func loopbackDial(ctx context.Context, network, addr string) (net.Conn, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	conn, err := (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext(ctx, "tcp4", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return nil, err
	}
	if ip := conn.RemoteAddr().(*net.TCPAddr).IP; !ip.IsLoopback() {
		conn.Close()
		return nil, fmt.Errorf("connected to %s, not loopback", ip)
	}
	return conn, nil
}

// Result is what one run measured (shared with the tests that read -json).
type Result = loadgen.Result

func printResult(w io.Writer, r Result) {
	mode := "max rate (closed loop)"
	if r.Mode == "fixed" {
		mode = fmt.Sprintf("fixed rate %.0f/s (open loop, latency from the schedule)", r.TargetRate)
	}
	fmt.Fprintf(w, "target    %s  reviews %s\n", r.Target, strings.Join(r.Reviews, ","))
	fmt.Fprintf(w, "mode      %s, %d connections, %.1fs measured\n", mode, r.Conns, r.DurationS)
	fmt.Fprintf(w, "requests  %d  errors %d  achieved %.1f/s\n", r.Requests, r.Errors, r.Rate)
	fmt.Fprintf(w, "latency   p50 %.3fms  p90 %.3fms  p99 %.3fms  p99.9 %.3fms  max %.3fms  mean %.3fms\n", r.P50, r.P90, r.P99, r.P999, r.Max, r.Mean)
	if r.Mode == "fixed" {
		fmt.Fprintf(w, "service   p50 %.3fms  p99 %.3fms (send to response, queueing excluded)\n", r.ServiceP50, r.ServiceP99)
	}
	fmt.Fprintf(w, "loadgen   %.2fs CPU (%.0f%% of one core)  loadavg %s\n", r.LoadgenCPU, 100*r.LoadgenCPU/r.DurationS, r.LoadAvg)
}

// worker state: its own latencies and error count, merged at the end.
type worker struct {
	latencies []time.Duration // from schedule (fixed rate) or send (max rate)
	service   []time.Duration // from send
	errors    int
	samples   []string
	buf       bytes.Buffer
}

func run(opts options) Result {
	transport := &http.Transport{
		DialContext:         loopbackDial,
		TLSClientConfig:     opts.tlsConfig,
		ForceAttemptHTTP2:   false,
		MaxIdleConns:        opts.conns,
		MaxIdleConnsPerHost: opts.conns,
		MaxConnsPerHost:     opts.conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
		TLSHandshakeTimeout: 5 * time.Second,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: opts.timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	checks := make([]responseCheck, len(opts.reviews))
	for i, r := range opts.reviews {
		checks[i] = newResponseCheck(r)
	}
	base := strings.TrimSuffix(opts.target.String(), "/")

	start := time.Now()
	measureFrom := start.Add(opts.warmup)
	end := measureFrom.Add(opts.duration)
	var interval time.Duration
	if opts.rate > 0 {
		interval = time.Duration(float64(time.Second) / opts.rate)
	}
	var next atomic.Int64 // the next slot of the schedule (fixed rate) or request index (max rate)
	var cpuAtStart time.Duration
	var cpuOnce sync.Once

	workers := make([]*worker, opts.conns)
	var wg sync.WaitGroup
	for k := range workers {
		w := &worker{}
		workers[k] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				var scheduled time.Time
				slept := false
				if interval > 0 {
					scheduled = start.Add(time.Duration(i) * interval)
					if !scheduled.Before(end) {
						return
					}
					if d := time.Until(scheduled); d > 0 {
						time.Sleep(d)
						slept = true
					}
				}
				sent := time.Now()
				if interval == 0 {
					if !sent.Before(end) {
						return
					}
					scheduled = sent
				}
				// Latency runs from the scheduled time when the request
				// waited for a free connection (the queueing is the
				// server's doing), from the send when it was early and
				// slept: a sleeping timer wakes up to a millisecond late,
				// and that lateness is this process's, not the server's.
				from := scheduled
				if slept {
					from = sent
				}
				if !scheduled.Before(measureFrom) {
					cpuOnce.Do(func() { cpuAtStart = processCPU() })
				}
				c := &checks[int(i)%len(checks)]
				err := w.send(client, base, c)
				done := time.Now()
				if scheduled.Before(measureFrom) {
					continue // warm-up
				}
				if err != nil {
					w.errors++
					if len(w.samples) < errorSamples {
						w.samples = append(w.samples, err.Error())
					}
					continue
				}
				w.latencies = append(w.latencies, done.Sub(from))
				w.service = append(w.service, done.Sub(sent))
			}
		}()
	}
	wg.Wait()
	finished := time.Now()
	cpu := processCPU() - cpuAtStart

	res := Result{Target: base, Conns: opts.conns, Mode: "max", LoadgenCPU: cpu.Seconds(), LoadAvg: loadgen.LoadAvg()}
	for _, r := range opts.reviews {
		res.Reviews = append(res.Reviews, r.Name)
	}
	if interval > 0 {
		res.Mode, res.TargetRate = "fixed", opts.rate
	}
	// The measured window: to the end of the schedule, or to the last
	// response if the server lagged behind it.
	window := max(finished.Sub(measureFrom), opts.duration)
	if interval == 0 {
		window = finished.Sub(measureFrom)
	}
	res.DurationS = window.Seconds()
	var all, service []time.Duration
	seen := map[string]bool{}
	for _, w := range workers {
		all = append(all, w.latencies...)
		service = append(service, w.service...)
		res.Errors += w.errors
		for _, s := range w.samples {
			if !seen[s] && len(res.ErrorSamples) < errorSamples {
				seen[s] = true
				res.ErrorSamples = append(res.ErrorSamples, s)
			}
		}
	}
	res.Requests = len(all) + res.Errors
	res.Rate = float64(len(all)) / window.Seconds()
	slices.Sort(all)
	slices.Sort(service)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	if len(all) > 0 {
		res.P50, res.P90, res.P99, res.P999 = ms(quantile(all, 0.5)), ms(quantile(all, 0.9)), ms(quantile(all, 0.99)), ms(quantile(all, 0.999))
		res.Max = ms(all[len(all)-1])
		var sum time.Duration
		for _, d := range all {
			sum += d
		}
		res.Mean = ms(sum / time.Duration(len(all)))
		res.ServiceP50, res.ServiceP99 = ms(quantile(service, 0.5)), ms(quantile(service, 0.99))
	}
	return res
}

// quantile returns the q-quantile of sorted durations (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// responseCheck is a review with the byte patterns its response must hold.
type responseCheck struct {
	review  reviews.Review
	uid     []byte
	verdict []byte
}

func newResponseCheck(r reviews.Review) responseCheck {
	return responseCheck{
		review:  r,
		uid:     []byte(`"uid":"` + r.UID + `"`),
		verdict: []byte(fmt.Sprintf(`"allowed":%t`, r.Allowed)),
	}
}

func (w *worker) send(client *http.Client, base string, c *responseCheck) error {
	req, err := http.NewRequest(http.MethodPost, base+c.review.Path, bytes.NewReader(c.review.Body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, */*")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", c.review.Name, err)
	}
	w.buf.Reset()
	_, err = w.buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("%s: reading the response: %w", c.review.Name, err)
	}
	body := w.buf.Bytes()
	switch {
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("%s: HTTP %d: %.200s", c.review.Name, resp.StatusCode, body)
	case !bytes.Contains(body, c.uid):
		return fmt.Errorf("%s: response lacks %s: %.300s", c.review.Name, c.uid, body)
	case !bytes.Contains(body, c.verdict):
		return fmt.Errorf("%s: response lacks %s: %.300s", c.review.Name, c.verdict, body)
	case bytes.Contains(body, []byte(`"patch":`)) != c.review.Patch:
		return fmt.Errorf("%s: want a patch: %t: %.300s", c.review.Name, c.review.Patch, body)
	}
	return nil
}

// processCPU returns the CPU time this process has used (user + system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
