package load

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/stateguard/stateguard/internal/loadgen"
	"github.com/stateguard/stateguard/test/cluster"
	"github.com/stateguard/stateguard/test/load/reviews"
	"github.com/stateguard/stateguard/test/serve"
)

// Targets through the API server.
const (
	targetCreateOverhead = 2 * time.Millisecond // median with webhooks - median without
	targetCreateRatio    = 1.3                  // median with webhooks / median without
	targetRSSKiB         = 60 * 1024            // VmRSS after the caches synced and a GC
)

// TestAPIServerCreateLatency times StatefulSet creates through the real API
// server (client-go, sequential, like kubectl create in a loop) with the
// chart's two webhook configurations registered and `stateguard serve`
// behind them, and with no webhook configuration at all, in one run. The two
// alternate in blocks (registered, none, registered, none, ...) so that
// drift in the machine's load hits both alike; a probe proves each switch
// took effect in the API server before a block starts, and the first creates
// of each block are not counted.
//
// Each block also times a few `kubectl create -f -` (what a user waits for,
// the kubectl process included), reported beside the targets, not held to
// them.
//
// STATEGUARD_LOAD_CREATES (default 200) sets the creates counted per mode.
func TestAPIServerCreateLatency(t *testing.T) {
	requireLoad(t)
	c := cluster.Start(t, cluster.Options{Webhooks: serve.ChartWebhooks(t)})
	cs := serve.Clientset(t, c)
	srv := startServe(t, c)
	const ns = "perf"
	serve.Seed(t, cs, ns, "db")
	ctx := context.Background()

	perMode := 200
	if v := envString("STATEGUARD_LOAD_CREATES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 10 {
			t.Fatalf("STATEGUARD_LOAD_CREATES=%q: want a number >= 10", v)
		}
		perMode = n
	}
	const blocks, warm = 4, 5
	perBlock := (perMode + blocks - 1) / blocks

	mutating, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil || len(mutating.Items) != 1 {
		t.Fatalf("mutating configurations: %v, %v", mutating, err)
	}
	validating, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil || len(validating.Items) != 1 {
		t.Fatalf("validating configurations: %v, %v", validating, err)
	}
	register := func(on bool, wait func()) {
		t.Helper()
		m, v := mutating.Items[0].DeepCopy(), validating.Items[0].DeepCopy()
		if on {
			m.ResourceVersion, m.UID, v.ResourceVersion, v.UID = "", "", "", ""
			if _, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, m, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, v, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		} else {
			if err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, m.Name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, v.Name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		wait()
	}

	samples := map[string][]time.Duration{}
	var calls apiserverCalls
	seq := 0
	create := func(mode string, count bool) {
		t.Helper()
		seq++
		sts := reviews.StatefulSet(ns, "db")
		sts.Name = fmt.Sprintf("db-%04d", seq)
		start := time.Now()
		_, err := cs.AppsV1().StatefulSets(ns).Create(ctx, sts, metav1.CreateOptions{})
		elapsed := time.Since(start)
		if err != nil {
			t.Fatalf("creating StatefulSet %s (webhooks: %s): %v", sts.Name, mode, err)
		}
		if count {
			samples[mode] = append(samples[mode], elapsed)
		}
	}
	// What a user waits for: `kubectl create -f -`, process start included,
	// a few per block (each takes a kubectl start, ~100ms).
	const kubectlPerBlock = 5
	kubectlSamples := map[string][]time.Duration{}
	createWithKubectl := func(mode string) {
		t.Helper()
		seq++
		sts := reviews.StatefulSet(ns, "db")
		sts.Name = fmt.Sprintf("db-%04d", seq)
		manifest, err := json.Marshal(sts)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, stderr, err := c.Kubectl(t, string(manifest), "create", "-f", "-"); err != nil {
			t.Fatalf("kubectl create %s (webhooks: %s): %v\n%s", sts.Name, mode, err, stderr)
		}
		kubectlSamples[mode] = append(kubectlSamples[mode], time.Since(start))
	}
	waitWebhooks(t, cs, ns, true)
	before := loadgen.LoadAvg()
	begin := time.Now()
	for b := 0; b < blocks; b++ {
		for _, on := range []bool{true, false} {
			if b > 0 || !on {
				register(on, func() { waitWebhooks(t, cs, ns, on) })
			}
			mode := map[bool]string{true: "stateguard", false: "none"}[on]
			for i := 0; i < warm; i++ {
				create(mode, false)
			}
			before := webhookCalls(t, cs)
			for i := 0; i < perBlock; i++ {
				create(mode, true)
			}
			calls.add(webhookCalls(t, cs).since(before))
			for i := 0; i < kubectlPerBlock; i++ {
				createWithKubectl(mode)
			}
		}
	}
	elapsed := time.Since(begin)

	// For reference, not a target: the same configurations served by a
	// webhook that admits everything without reading the object, which is
	// what the API server's side of two webhook calls costs.
	serverSide := srv.scrape(t, "controller_runtime_webhook_latency_seconds_sum", "controller_runtime_webhook_latency_seconds_count",
		"stateguard_admission_duration_seconds_sum", "stateguard_admission_duration_seconds_count")
	srv.Stop(t)
	allowAllCalls := serveAllowAll(t, c)
	register(true, func() {
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
			before := allowAllCalls.Load()
			probe := reviews.StatefulSet(ns, "db")
			probe.Name = "probe"
			_, err := cs.AppsV1().StatefulSets(ns).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			return err == nil && allowAllCalls.Load()-before == 2, nil
		})
		if err != nil {
			t.Fatalf("the allow-all webhook is never called: %v", err)
		}
	})
	for i := 0; i < warm; i++ {
		create("allow-all", false)
	}
	beforeAllowAll := webhookCalls(t, cs)
	for i := 0; i < perMode; i++ {
		create("allow-all", true)
	}
	allowAllSeen := webhookCalls(t, cs).since(beforeAllowAll)

	with, without, allowAll := summarize(samples["stateguard"]), summarize(samples["none"]), summarize(samples["allow-all"])
	var b strings.Builder
	fmt.Fprintf(&b, "StatefulSet create through kube-apiserver, sequential, %d blocks of %d (+%d warm-up) per mode, %s (loadavg before %s, after %s)\n",
		blocks, perBlock, warm, elapsed.Round(time.Second), before, loadgen.LoadAvg())
	fmt.Fprintf(&b, "%-22s %5s %9s %9s %9s %9s %9s %9s\n", "webhooks", "n", "median", "mean", "p90", "p99", "min", "max")
	for _, r := range []struct {
		name string
		s    durationStats
	}{{"stateguard", with}, {"none", without}, {"allow-all (reference)", allowAll},
		{"kubectl, stateguard", summarize(kubectlSamples["stateguard"])}, {"kubectl, none", summarize(kubectlSamples["none"])}} {
		fmt.Fprintf(&b, "%-22s %5d %9s %9s %9s %9s %9s %9s\n", r.name, r.s.n, ms(r.s.median), ms(r.s.mean), ms(r.s.p90), ms(r.s.p99), ms(r.s.min), ms(r.s.maxValue))
	}
	overhead := with.median - without.median
	ratio := float64(with.median) / float64(without.median)
	fmt.Fprintf(&b, "median overhead %s (target <= %s), ratio %.2fx (target <= %.1fx)\n", ms(overhead), ms(targetCreateOverhead), ratio, targetCreateRatio)
	fmt.Fprintf(&b, "server side (controller-runtime's webhook latency, probes and seeding included):\n")
	for _, path := range []string{"/mutate-apps-v1-statefulset", "/validate-apps-v1-statefulset"} {
		sum, n := serverSide["controller_runtime_webhook_latency_seconds_sum"][path], serverSide["controller_runtime_webhook_latency_seconds_count"][path]
		policySum, policyN := serverSide["stateguard_admission_duration_seconds_sum"][path], serverSide["stateguard_admission_duration_seconds_count"][path]
		if n > 0 && policyN > 0 {
			fmt.Fprintf(&b, "  %-32s %5.0f calls for %d creates, mean %s (of which the handler %s)\n", path, n, blocks*(warm+perBlock+kubectlPerBlock),
				ms(time.Duration(sum/n*float64(time.Second))), ms(time.Duration(policySum/policyN*float64(time.Second))))
		}
	}
	fmt.Fprintf(&b, "(allow-all: the API server's cost of calling two webhooks that do nothing, %s over none, measured after the others)\n", ms(allowAll.median-without.median))
	fmt.Fprintf(&b, "API server side (apiserver_admission_webhook_admission_duration_seconds, counted creates only): mean call\n")
	for _, name := range calls.names() {
		fmt.Fprintf(&b, "  %-40s stateguard %s (%d calls), allow-all %s (%d calls)\n", name, ms(calls.mean(name)), calls.count(name), ms(allowAllSeen.mean(name)), allowAllSeen.count(name))
	}
	t.Log("\n" + b.String())
	if overhead > targetCreateOverhead {
		t.Errorf("median create overhead of the webhooks %s, target <= %s", ms(overhead), ms(targetCreateOverhead))
	}
	if ratio > targetCreateRatio {
		t.Errorf("median create with webhooks %.2fx the median without, target <= %.1fx", ratio, targetCreateRatio)
	}
}

// serveAllowAll serves the registered webhook paths on envtest's serving
// address with a handler that admits every request unread (beyond its UID),
// and returns the count of requests it answered.
func serveAllowAll(t *testing.T, c *cluster.Cluster) *atomic.Int64 {
	t.Helper()
	o := c.Webhooks
	cert, err := tls.LoadX509KeyPair(filepath.Join(o.LocalServingCertDir, "tls.crt"), filepath.Join(o.LocalServingCertDir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, fmt.Sprint(err), http.StatusBadRequest)
			return
		}
		calls.Add(1)
		review.Request, review.Response = nil, &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(review)
	})
	l, err := net.Listen("tcp", net.JoinHostPort(o.LocalServingHost, strconv.Itoa(o.LocalServingPort)))
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: handler, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12}}
	go func() { _ = s.ServeTLS(l, "", "") }()
	t.Cleanup(func() { _ = s.Close() })
	return &calls
}

// waitWebhooks waits until the API server calls the webhooks (on) or no
// longer does: a server-side dry run of a StatefulSet without the snapshot
// label is denied only by the validating webhook, and one with it comes back
// with a storageClassName only from the mutating webhook.
func waitWebhooks(t *testing.T, cs kubernetes.Interface, ns string, on bool) {
	t.Helper()
	ctx := context.Background()
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		unlabelled := reviews.StatefulSet(ns, "db")
		unlabelled.Name = "probe-unlabelled"
		delete(unlabelled.Labels, reviews.ScheduleLabel)
		_, err := cs.AppsV1().StatefulSets(ns).Create(ctx, unlabelled, dry)
		validating := err != nil && strings.Contains(err.Error(), "snapshot-schedule")
		if err != nil && !validating {
			return false, err
		}
		probe := reviews.StatefulSet(ns, "db")
		probe.Name = "probe"
		out, err := cs.AppsV1().StatefulSets(ns).Create(ctx, probe, dry)
		if err != nil {
			return false, err
		}
		mutating := out.Spec.VolumeClaimTemplates[0].Spec.StorageClassName != nil
		return validating == on && mutating == on, nil
	})
	if err != nil {
		t.Fatalf("waiting for the webhooks to be %s: %v", map[bool]string{true: "called", false: "gone"}[on], err)
	}
}

// TestWebhookMemory starts `stateguard serve` against an API server holding
// 10,000 Services (in 50 namespaces, shaped like Helm-installed ones, most
// with a ClusterIP) and 200 StorageClasses, and reads the process's resident
// memory once /readyz says its caches are synced and after a garbage
// collection (proven by the runtime's gctrace; review traffic makes it
// happen). GODEBUG=gctrace=1 is the only change to how it runs.
func TestWebhookMemory(t *testing.T) {
	requireLoad(t)
	c := cluster.Start(t, cluster.Options{
		Webhooks:       serve.ChartWebhooks(t),
		APIServerFlags: map[string]string{"service-cluster-ip-range": "10.96.0.0/16"},
	})
	cs := serve.Clientset(t, c)
	const services, namespaces, classes = 10_000, 50, 200
	begin := time.Now()
	populate(t, cs, services, namespaces, classes)
	t.Logf("created %d Services in %d namespaces and %d StorageClasses in %s", services, namespaces, classes, time.Since(begin).Round(time.Second))

	srv := startServe(t, c, "GODEBUG=gctrace=1")
	readyAt := len(gcTraces(srv.Log()))
	rssReady, hwmReady := srv.status(t, "VmRSS"), srv.status(t, "VmHWM")

	// Idle, after the caches synced and a GC: a collection after readiness,
	// or a forced one (only the runtime's 2-minute timer or an explicit
	// collection after the sync force one).
	deadline := time.Now().Add(150 * time.Second)
	for len(gcTraces(srv.Log())) == readyAt && !strings.Contains(srv.Log(), "(forced)") {
		if time.Now().After(deadline) {
			t.Fatal("no garbage collection after readiness within 150s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	rssIdle := settledRSS(t, srv)
	idleTraces := gcTraces(srv.Log())
	idleGC := idleTraces[len(idleTraces)-1]

	// Serving: a few seconds of reviews (which allocate, so the collector
	// runs with its usual headroom), then a GC, then time for the scavenger.
	serve.Seed(t, cs, "shop", "db")
	servingAt := len(gcTraces(srv.Log()))
	srv.Loadgen(t, "-conns", "2", "-rate", "200", "-duration", "3s", "-warmup", "0s")
	for len(gcTraces(srv.Log())) == servingAt {
		if time.Now().After(deadline.Add(time.Minute)) {
			t.Fatal("no garbage collection while serving")
		}
		time.Sleep(200 * time.Millisecond)
	}
	rssServing, hwm := settledRSS(t, srv), srv.status(t, "VmHWM")
	traces := gcTraces(srv.Log())
	servingGC := traces[len(traces)-1]
	heapInuse := srv.metric(t, "go_memstats_heap_inuse_bytes")
	heapSys := srv.metric(t, "go_memstats_heap_sys_bytes")
	released := srv.metric(t, "go_memstats_heap_released_bytes")

	var b strings.Builder
	fmt.Fprintf(&b, "stateguard serve with %d Services, %d StorageClasses cached (loadavg %s)\n", services, classes, loadgen.LoadAvg())
	fmt.Fprintf(&b, "VmRSS at /readyz                    %6.1f MiB (VmHWM %.1f MiB)\n", mib(rssReady), mib(hwmReady))
	fmt.Fprintf(&b, "VmRSS idle, after sync and a GC     %6.1f MiB (target <= %.0f MiB); live heap %s MB after gc %s\n", mib(rssIdle), mib(targetRSSKiB), idleGC.live, idleGC.n)
	fmt.Fprintf(&b, "VmRSS serving (200/s for 3s, a GC)  %6.1f MiB; live heap %s MB, goal %s MB after gc %s\n", mib(rssServing), servingGC.live, servingGC.goal, servingGC.n)
	fmt.Fprintf(&b, "peak VmHWM %.1f MiB; heap in use %.1f MiB, heap sys %.1f MiB, released to the OS %.1f MiB\n",
		mib(hwm), heapInuse/(1<<20), heapSys/(1<<20), released/(1<<20))
	t.Log("\n" + b.String())
	if rssIdle > targetRSSKiB {
		t.Errorf("VmRSS %.1f MiB after the caches synced and a GC, target <= %.0f MiB", mib(rssIdle), mib(targetRSSKiB))
	}
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

type gcTrace struct{ n, live, goal string }

// gcTraceLine matches the runtime's gctrace output, e.g.
// "gc 12 @3.101s 2%: ... ms cpu, 35->36->18 MB, 37 MB goal, ...".
var gcTraceLine = regexp.MustCompile(`gc (\d+) @[0-9.]+s [0-9]+%: .*?, (\d+)->(\d+)->(\d+) MB, (\d+) MB goal`)

func gcTraces(log string) []gcTrace {
	var out []gcTrace
	for _, m := range gcTraceLine.FindAllStringSubmatch(log, -1) {
		out = append(out, gcTrace{n: m[1], live: m[4], goal: m[5]})
	}
	return out
}

// populate creates the StorageClasses and Services concurrently.
func populate(t *testing.T, cs kubernetes.Interface, services, namespaces, classes int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < namespaces; i++ {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("team-%02d", i)}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	provisioners := []string{"disk.csi.azure.com", "file.csi.azure.com", "ebs.csi.aws.com", "pd.csi.storage.gke.io"}
	jobs := make(chan func() error)
	var failed atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for job := range jobs {
				if err := job(); err != nil && !apierrors.IsAlreadyExists(err) {
					failed.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	for i := 0; i < classes; i++ {
		reclaim := corev1.PersistentVolumeReclaimRetain
		binding := storagev1.VolumeBindingWaitForFirstConsumer
		expand := true
		sc := &storagev1.StorageClass{
			ObjectMeta: metav1.ObjectMeta{
				Name:        fmt.Sprintf("class-%03d", i),
				Labels:      map[string]string{"app.kubernetes.io/managed-by": "Helm", "tier": []string{"standard", "premium"}[i%2]},
				Annotations: map[string]string{"meta.helm.sh/release-name": "storage", "meta.helm.sh/release-namespace": "kube-system"},
			},
			Provisioner:          provisioners[i%len(provisioners)],
			Parameters:           map[string]string{"skuName": "Premium_LRS", "cachingMode": "ReadOnly", "fsType": "ext4"},
			ReclaimPolicy:        &reclaim,
			VolumeBindingMode:    &binding,
			AllowVolumeExpansion: &expand,
			MountOptions:         []string{"noatime"},
		}
		jobs <- func() error {
			_, err := cs.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{})
			return err
		}
	}
	for i := 0; i < services; i++ {
		name := fmt.Sprintf("svc-%05d", i)
		app := fmt.Sprintf("app-%04d", i/2)
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{
				Name: name, Namespace: fmt.Sprintf("team-%02d", i%namespaces),
				Labels: map[string]string{
					"app.kubernetes.io/name": app, "app.kubernetes.io/instance": app, "app.kubernetes.io/component": "server",
					"app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": "app-1.4.2", "app.kubernetes.io/version": "1.4.2",
				},
				Annotations: map[string]string{
					"meta.helm.sh/release-name": app, "meta.helm.sh/release-namespace": fmt.Sprintf("team-%02d", i%namespaces),
					"prometheus.io/scrape": "true", "prometheus.io/port": "9090",
				},
			},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{"app.kubernetes.io/name": app, "app.kubernetes.io/instance": app},
				Ports: []corev1.ServicePort{
					{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
					{Name: "metrics", Port: 9090, TargetPort: intstr.FromInt32(9090)},
				},
			},
		}
		if i%5 == 0 {
			svc.Spec.ClusterIP = corev1.ClusterIPNone
			svc.Spec.PublishNotReadyAddresses = true
		}
		jobs <- func() error {
			_, err := cs.CoreV1().Services(svc.Namespace).Create(ctx, svc, metav1.CreateOptions{})
			return err
		}
	}
	close(jobs)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatalf("populating the cluster: %v", err)
	}
}

// apiserverCalls are the API server's own timings of its webhook calls, by
// webhook name: apiserver_admission_webhook_admission_duration_seconds, the
// time from sending the review to having the answer, as the API server sees
// it (TLS, the network and its own encoding included).
type apiserverCalls map[string][2]float64 // name -> {sum seconds, count}

// webhookCalls scrapes the API server's /metrics.
func webhookCalls(t *testing.T, cs kubernetes.Interface) apiserverCalls {
	t.Helper()
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Fatalf("scraping the API server's metrics: %v", err)
	}
	m, err := serve.ParseMetrics(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parsing the API server's metrics: %v", err)
	}
	out := apiserverCalls{}
	for _, smp := range m {
		i := -1
		switch smp.Name {
		case "apiserver_admission_webhook_admission_duration_seconds_sum":
			i = 0
		case "apiserver_admission_webhook_admission_duration_seconds_count":
			i = 1
		}
		if i >= 0 {
			v := out[smp.Labels["name"]]
			v[i] += smp.Value
			out[smp.Labels["name"]] = v
		}
	}
	return out
}

func (c apiserverCalls) since(before apiserverCalls) apiserverCalls {
	out := apiserverCalls{}
	for name, v := range c {
		out[name] = [2]float64{v[0] - before[name][0], v[1] - before[name][1]}
	}
	return out
}

func (c *apiserverCalls) add(d apiserverCalls) {
	if *c == nil {
		*c = apiserverCalls{}
	}
	for name, v := range d {
		w := (*c)[name]
		(*c)[name] = [2]float64{w[0] + v[0], w[1] + v[1]}
	}
}

func (c apiserverCalls) names() []string {
	var out []string
	for name, v := range c {
		if v[1] > 0 {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func (c apiserverCalls) count(name string) int { return int(c[name][1]) }

func (c apiserverCalls) mean(name string) time.Duration {
	if c[name][1] == 0 {
		return 0
	}
	return time.Duration(c[name][0] / c[name][1] * float64(time.Second))
}

// settledRSS returns the process's VmRSS (kB) once the runtime has finished
// returning memory after a collection: the value has not moved by more than
// 256 kB across a second of readings (the scavenger releases memory in the
// background, for up to a few seconds after the collection).
func settledRSS(t *testing.T, srv *server) int64 {
	t.Helper()
	const window, tolerance = 10, 256 // readings 100ms apart; kB
	deadline := time.Now().Add(60 * time.Second)
	var readings []int64
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		readings = append(readings, srv.status(t, "VmRSS"))
		if n := len(readings); n >= window {
			last := readings[n-window:]
			if slices.Max(last)-slices.Min(last) <= tolerance {
				return last[len(last)-1]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("VmRSS did not settle within 60s: %v", readings[max(0, len(readings)-window):])
		}
	}
	panic("unreachable")
}
