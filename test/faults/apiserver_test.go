package faults

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/stateguard/stateguard/test/cluster"
	"github.com/stateguard/stateguard/test/load/reviews"
	"github.com/stateguard/stateguard/test/serve"
)

// apiServerDown is how long the API server stays down after it exited (its
// start again takes a few seconds more): long enough for every informer's
// watch to break and its reconnects to fail and back off.
const apiServerDown = 2 * time.Second

// TestAPIServerRestart stops kube-apiserver (etcd keeps running) under a
// running `stateguard serve` and starts it again on the same address, data
// and credentials (envtest's APIServer.Stop and Start):
//
//   - while it is down, every review sent straight to the webhook over HTTPS
//     (StatefulSet creates and updates, Service deletes: all of
//     reviews.All) is answered as it was before, from the caches, and the
//     process stays healthy;
//   - once it is back, writes go through the webhooks again, and what
//     changed after the restart reaches each cache: a Service and a
//     StatefulSet naming it are created (admitted), deleting that Service is
//     then denied (the StatefulSet cache, which has no live fallback, saw
//     the new StatefulSet), a namespace labelled into warn mode admits what
//     enforce mode denies (the Namespace cache), and a StatefulSet that a
//     changed Service selector no longer matches is denied (the Service
//     cache).
func TestAPIServerRestart(t *testing.T) {
	c := cluster.Start(t, cluster.Options{
		Webhooks: serve.ChartWebhooks(t),
		// kube-apiserver's graceful stop waits for open requests up to
		// --request-timeout (default 1m), and the webhook's informers keep
		// watches open: envtest would give up (30s) and kill it.
		APIServerFlags: map[string]string{"request-timeout": "2s"},
	})
	srv := serve.Start(t, c)
	cs := serve.Clientset(t, c)
	serve.Seed(t, cs, "shop", "db")
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "later-warn"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	all := reviews.All("shop", "db")
	cl := newReviewClient(srv.URL(), &http.Transport{TLSClientConfig: srv.TLSConfig()}, false)
	defer cl.close()
	sendAll := func() error {
		for _, r := range all {
			_, ar, err := cl.post(ctx, r)
			if err == nil {
				err = expect(r, ar)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	// The caches hold the seeded objects before anything happens.
	c.Eventually(t, 30*time.Second, sendAll)

	api := c.Env.ControlPlane.APIServer
	stopping := time.Now()
	if err := api.Stop(); err != nil {
		t.Fatalf("stopping kube-apiserver: %v", err)
	}
	stopped := time.Now()
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{}); err == nil {
		t.Fatal("the API server still answers after Stop")
	}
	rounds := 0
	var downErr error
	for time.Since(stopped) < apiServerDown {
		if err := sendAll(); err != nil {
			downErr = fmt.Errorf("round %d with the API server down: %w", rounds+1, err)
			break
		}
		rounds++
	}
	healthy := srv.Healthy()
	readyDown := srv.Ready()
	if err := api.Start(); err != nil {
		t.Fatalf("starting kube-apiserver again: %v", err)
	}
	restarted := time.Now()
	t.Logf("kube-apiserver: SIGTERM to exit %s, down for %s (start included); %d rounds of %d reviews answered meanwhile; /readyz while down: %v",
		stopped.Sub(stopping).Round(time.Millisecond), restarted.Sub(stopped).Round(time.Millisecond), rounds, len(all), errString(readyDown))
	if downErr != nil {
		t.Fatal(downErr)
	}
	if healthy != nil || srv.Exited() {
		t.Fatalf("stateguard serve unhealthy with the API server down: %v (exited: %t)", healthy, srv.Exited())
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{}); err != nil {
		t.Fatalf("the restarted API server does not answer with the old credentials: %v", err)
	}

	// A Service and a StatefulSet naming it, created after the restart.
	svc := reviews.Service("shop", "late")
	sts := reviews.StatefulSet("shop", "late")
	c.Eventually(t, 30*time.Second, func() error { // the API server's own webhook client may need a moment
		_, err := cs.CoreV1().Services("shop").Create(ctx, svc, metav1.CreateOptions{})
		if err != nil && !strings.Contains(err.Error(), "already exists") {
			return err
		}
		return nil
	})
	if _, err := cs.AppsV1().StatefulSets("shop").Create(ctx, sts, metav1.CreateOptions{}); err != nil {
		t.Fatalf("StatefulSet naming a Service created after the restart: %v", err)
	}
	dry := metav1.DryRunAll
	resync := map[string]time.Duration{}
	awaitCache := func(name string, cond func() error) {
		t.Helper()
		c.Eventually(t, 60*time.Second, cond)
		resync[name] = time.Since(restarted)
	}
	awaitCache("StatefulSets", func() error {
		err := cs.CoreV1().Services("shop").Delete(ctx, "late", metav1.DeleteOptions{DryRun: []string{dry}})
		if err == nil || !strings.Contains(err.Error(), "StatefulSet late") {
			return fmt.Errorf("deleting Service late (dry run): %v, want a denial naming StatefulSet late", err)
		}
		return nil
	})

	// Namespaces: warn mode set after the restart admits a StatefulSet
	// without the snapshot label (enforce denies it).
	patch := []byte(`{"metadata":{"labels":{"stateguard.dev/mode":"warn"}}}`)
	if _, err := cs.CoreV1().Namespaces().Patch(ctx, "later-warn", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	wcs, warnings := warningClient(t, c)
	awaitCache("Namespaces", func() error {
		unlabelled := reviews.StatefulSet("later-warn", "nolabel")
		delete(unlabelled.Labels, reviews.ScheduleLabel)
		warnings.take()
		_, err := wcs.AppsV1().StatefulSets("later-warn").Create(ctx, unlabelled, metav1.CreateOptions{DryRun: []string{dry}})
		if err != nil {
			return fmt.Errorf("warn-mode namespace still enforces: %v", err)
		}
		if w := strings.Join(warnings.take(), "\n"); !strings.Contains(w, "[snapshot-schedule]") {
			return fmt.Errorf("admitted without the snapshot-schedule warning: %q", w)
		}
		return nil
	})

	// Services: Service "cache", which no StatefulSet names, selects
	// app=cache; after it changes to app=cache-v2, a StatefulSet whose pods
	// carry app=cache is denied.
	selector := []byte(`{"spec":{"selector":{"app":"cache-v2"}}}`)
	if _, err := cs.CoreV1().Services("shop").Patch(ctx, reviews.UnusedService, types.MergePatchType, selector, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	awaitCache("Services", func() error {
		_, err := cs.AppsV1().StatefulSets("shop").Create(ctx, reviews.StatefulSet("shop", reviews.UnusedService), metav1.CreateOptions{DryRun: []string{dry}})
		if err == nil || !strings.Contains(err.Error(), "app=cache-v2") {
			return fmt.Errorf("StatefulSet cache against the changed Service: %v, want a denial for app=cache-v2", err)
		}
		return nil
	})
	if err := sendAll(); err != nil {
		t.Errorf("after the restart: %v", err)
	}
	t.Logf("after the restart, changes reached the caches within: StatefulSets %s, Namespaces %s, Services %s (each measured from the restart, after the previous)",
		resync["StatefulSets"].Round(time.Millisecond), resync["Namespaces"].Round(time.Millisecond), resync["Services"].Round(time.Millisecond))
}

func errString(err error) string {
	if err == nil {
		return "ready"
	}
	return err.Error()
}

// warningCollector keeps the admission warnings the API server returns.
type warningCollector struct {
	mu       sync.Mutex
	warnings []string
}

func (w *warningCollector) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.warnings = append(w.warnings, text)
}

func (w *warningCollector) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.warnings
	w.warnings = nil
	return out
}

// warningClient is a cluster-admin client that collects warnings.
func warningClient(t *testing.T, c *cluster.Cluster) (*kubernetes.Clientset, *warningCollector) {
	t.Helper()
	w := &warningCollector{}
	cfg := rest.CopyConfig(c.Config)
	cfg.QPS, cfg.Burst = -1, 0
	cfg.WarningHandler = w
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs, w
}
