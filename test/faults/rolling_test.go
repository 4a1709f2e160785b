package faults

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"text/template"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stateguard/stateguard/internal/controlplane"
	"github.com/stateguard/stateguard/test/cluster"
	"github.com/stateguard/stateguard/test/load/reviews"
	"github.com/stateguard/stateguard/test/serve"
)

// EnvNginx overrides the nginx binary (default /usr/sbin/nginx, then PATH).
const EnvNginx = "NGINX"

// TestRollingRestart runs two replicas of `stateguard serve` behind a local
// nginx, the way a Service spreads the API server's calls over the webhook's
// pods, and restarts them one after the other (SIGTERM, wait for the exit,
// start a new process on the same port, wait until nginx sends it traffic
// again) while `kubectl apply` creates StatefulSets in a loop and a client
// sends server-side dry-run creates, both through the API server and both
// webhooks. nginx knows a replica is gone only by failing to reach it
// (passive health checks: max_fails, proxy_next_upstream, which retries a
// review on the other replica). Every admission must succeed, and every
// created StatefulSet must carry the mutating webhook's storage class.
func TestRollingRestart(t *testing.T) {
	nginx := findNginx(t)
	c := cluster.Start(t, cluster.Options{Webhooks: serve.ChartWebhooks(t)})
	cs := serve.Clientset(t, c)
	const ns = "roll"

	ports := [2]int{serve.FreePort(t), serve.FreePort(t)}
	args := []string{"--shutdown-delay", "1s", "--shutdown-grace", "10s"}
	start := func(i int) *serve.Server {
		return serve.StartWith(t, c, serve.Options{Port: ports[i], Args: args})
	}
	replicas := [2]*serve.Server{start(0), start(1)}
	lb := startNginx(t, nginx, c, ports[:])
	serve.Seed(t, cs, ns, "db") // through nginx and the replicas already

	var (
		fails   failures
		applies atomic.Int64
		dryRuns atomic.Int64
	)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // kubectl apply, one new StatefulSet at a time
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			_, stderr, err := c.Kubectl(t, rollingStatefulSet(fmt.Sprintf("app-%03d", i)), "apply", "-n", ns, "-f", "-")
			applies.Add(1)
			if err != nil {
				fails.add(fmt.Errorf("kubectl apply app-%03d: %v: %s", i, err, strings.TrimSpace(stderr)))
			}
		}
	}()
	go func() { // dry-run creates, ~20/s
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			sts := reviews.StatefulSet(ns, "db")
			sts.Name = fmt.Sprintf("dry-%d", i)
			_, err := cs.AppsV1().StatefulSets(ns).Create(context.Background(), sts, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			dryRuns.Add(1)
			if err != nil {
				fails.add(fmt.Errorf("dry-run create: %w", err))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()

	// Each replica serves traffic through nginx (its own decision counter
	// grows) before anything is restarted, and again after its restart.
	decisions := func(s *serve.Server) float64 {
		m, err := s.ScrapeErr()
		if err != nil {
			return 0
		}
		return m.Sum("stateguard_admission_decisions_total")
	}
	awaitTraffic := func(i int) {
		t.Helper()
		s := replicas[i]
		before := decisions(s)
		c.Eventually(t, 45*time.Second, func() error {
			if decisions(s) < before+5 {
				return fmt.Errorf("replica %d (port %d) gets no traffic through nginx", i, ports[i])
			}
			return nil
		})
	}
	awaitTraffic(0)
	awaitTraffic(1)
	var restarts []string
	for i := range replicas {
		old := replicas[i]
		begin := time.Now()
		if err := old.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if !old.Wait(20 * time.Second) {
			t.Fatalf("replica %d did not exit", i)
		}
		if err := old.ExitErr(); err != nil {
			t.Errorf("replica %d exit: %v", i, err)
		}
		exited := time.Since(begin)
		replicas[i] = start(i)
		ready := time.Since(begin)
		awaitTraffic(i)
		restarts = append(restarts, fmt.Sprintf("replica %d: exited %s after SIGTERM, new one ready at %s, back in nginx's rotation at %s",
			i, exited.Round(time.Millisecond), ready.Round(time.Millisecond), time.Since(begin).Round(time.Millisecond)))
	}
	before := applies.Load()
	c.Eventually(t, 30*time.Second, func() error { // a few more with both new replicas
		if applies.Load() < before+3 {
			return fmt.Errorf("%d applies since the last restart", applies.Load()-before)
		}
		return nil
	})
	stop()
	wg.Wait()

	// Every StatefulSet created went through the mutating webhook.
	list, err := cs.AppsV1().StatefulSets(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	unmutated := 0
	for _, sts := range list.Items {
		if sts.Spec.VolumeClaimTemplates[0].Spec.StorageClassName == nil {
			unmutated++
		}
	}
	stats := lb.stats(t)
	t.Logf("rolling restart of 2 replicas behind nginx: %d kubectl applies, %d dry-run creates, %d failed; %d StatefulSets stored, %d without the webhook's storage class\n  %s\n  nginx: %s",
		applies.Load(), dryRuns.Load(), fails.count(), len(list.Items), unmutated, strings.Join(restarts, "\n  "), stats)
	if n := fails.count(); n > 0 {
		t.Errorf("%d failed admissions during the rolling restart:\n%s", n, fails.String())
	}
	if unmutated > 0 {
		t.Errorf("%d StatefulSets were admitted without the mutating webhook", unmutated)
	}
	if applies.Load() < 10 {
		t.Errorf("only %d kubectl applies during the rolling restart", applies.Load())
	}
}

// findNginx returns the nginx binary: $NGINX, /usr/sbin/nginx (Debian's
// package; `make nginx` installs it) or nginx on PATH. Without one the test
// skips, or fails with STATEGUARD_REQUIRE_INTEGRATION=1.
func findNginx(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv(EnvNginx), "/usr/sbin/nginx"}
	if p, err := exec.LookPath("nginx"); err == nil {
		candidates = append(candidates, p)
	}
	for _, p := range candidates {
		if fi, err := os.Stat(p); p != "" && err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	cluster.Missing(t, "this test needs nginx: `make nginx` installs Debian's (as root), or set "+EnvNginx)
	return ""
}

// loadBalancer is a foreground nginx on envtest's webhook address (where the
// API server sends its reviews), terminating TLS with envtest's serving
// certificate and proxying to the replicas over HTTPS.
type loadBalancer struct {
	dir  string
	proc *controlplane.Process
}

var nginxConfig = template.Must(template.New("nginx.conf").Parse(`# test/faults: a stand-in for a Service in front of the webhook's pods.
daemon off;
worker_processes 1;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log notice;
events { worker_connections 512; }
http {
    log_format upstreams '$status|$upstream_addr|$upstream_status|$request_time';
    access_log {{.Dir}}/access.log upstreams;
    # Bodies and responses stay in memory: the temp directories are the
    # test's, and nginx's workers may run as another user.
    client_body_temp_path {{.Dir}}/tmp/body;
    proxy_temp_path {{.Dir}}/tmp/proxy;
    fastcgi_temp_path {{.Dir}}/tmp/fastcgi;
    uwsgi_temp_path {{.Dir}}/tmp/uwsgi;
    scgi_temp_path {{.Dir}}/tmp/scgi;
    client_body_buffer_size 1m;
    client_max_body_size 3m;
    proxy_buffer_size 64k;
    proxy_buffers 16 64k;
    proxy_busy_buffers_size 128k;
    proxy_max_temp_file_size 0;

    upstream stateguard {
{{- range .Ports}}
        server 127.0.0.1:{{.}} max_fails=1 fail_timeout=2s;
{{- end}}
        keepalive 16;
    }
    server {
        listen {{.Listen}} ssl;
        ssl_certificate {{.CertDir}}/tls.crt;
        ssl_certificate_key {{.CertDir}}/tls.key;
        location / {
            proxy_pass https://stateguard;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # Passive health checks: a replica that refuses or drops a
            # connection is skipped for fail_timeout, and the review (a
            # POST, hence non_idempotent) is sent to the other one.
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
            proxy_next_upstream_tries 2;
            proxy_connect_timeout 1s;
            proxy_read_timeout 10s;
            # Loopback, and envtest's CA is a leaf certificate that OpenSSL
            # does not accept as a trust anchor.
            proxy_ssl_verify off;
            proxy_ssl_session_reuse on;
        }
    }
}
`))

func startNginx(t *testing.T, nginx string, c *cluster.Cluster, ports []int) *loadBalancer {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("%s:%d", c.Webhooks.LocalServingHost, c.Webhooks.LocalServingPort)
	var conf strings.Builder
	if err := nginxConfig.Execute(&conf, map[string]any{"Dir": dir, "Ports": ports, "Listen": listen, "CertDir": c.Webhooks.LocalServingCertDir}); err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "nginx.conf")
	writeFile(t, confPath, []byte(conf.String()))
	proc, err := controlplane.StartProcess("nginx", nginx, []string{"-p", dir + "/", "-c", confPath, "-e", filepath.Join(dir, "error.log")}, filepath.Join(dir, "nginx.out"))
	if err != nil {
		t.Fatal(err)
	}
	lb := &loadBalancer{dir: dir, proc: proc}
	t.Cleanup(func() {
		if err := proc.Stop(10 * time.Second); err != nil {
			t.Errorf("stopping nginx: %v", err)
		}
		if t.Failed() {
			for _, name := range []string{"nginx.out", "error.log"} {
				data, _ := os.ReadFile(filepath.Join(dir, name))
				t.Logf("nginx %s (last 40 lines):\n%s", name, controlplane.Tail(data, 40))
			}
		}
	})
	tlsConf := serve.ClientTLS(c.Webhooks.LocalServingCAData)
	c.Eventually(t, 20*time.Second, func() error {
		select {
		case <-proc.Done():
			data, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited: %v\n%s", proc.Err(), data)
		default:
		}
		conn, err := tls.Dial("tcp", listen, tlsConf)
		if err != nil {
			return err
		}
		return conn.Close()
	})
	return lb
}

// stats summarizes nginx's access log: responses by status, by replica, and
// how many reviews it had to retry on the other replica.
func (lb *loadBalancer) stats(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(lb.dir, "access.log"))
	if err != nil {
		return err.Error()
	}
	statuses := map[string]int{}
	served := map[string]int{}
	var retries []string
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	for _, line := range lines {
		f := strings.Split(line, "|")
		if len(f) != 4 {
			continue
		}
		statuses[f[0]]++
		addrs := strings.Split(f[1], ", ")
		if len(addrs) > 1 {
			retries = append(retries, fmt.Sprintf("%s answered %s", f[1], f[2]))
		}
		served[addrs[len(addrs)-1]]++
	}
	return fmt.Sprintf("%d reviews proxied, by status %v, by replica %v, %d retried on the other replica %v", len(lines), statuses, served, len(retries), retries)
}

// rollingStatefulSet is what the kubectl loop applies: a StatefulSet naming
// the seeded headless Service db, with a claim template for the webhook to
// fill in.
func rollingStatefulSet(name string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: %s
  labels: {stateguard.dev/snapshot-schedule: daily}
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - name: main
        image: registry.k8s.io/pause:3.10
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
`, name)
}
