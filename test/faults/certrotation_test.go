package faults

import (
	"context"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stateguard/stateguard/internal/controlplane"
	"github.com/stateguard/stateguard/test/cluster"
	"github.com/stateguard/stateguard/test/load/reviews"
	"github.com/stateguard/stateguard/test/serve"
)

// rotationDeadline bounds how long the new certificate may take to be
// served. The server watches the files (inotify) and also re-reads them
// every 10s (controller-runtime's certwatcher), so this is the polling
// fallback's worst case and some slack; the watch serves it in milliseconds.
const rotationDeadline = 15 * time.Second

// TestCertificateRotation replaces the serving certificate in --cert-dir
// while clients send reviews without pause, and requires that no TLS
// handshake and no request fails and that new handshakes get the new
// certificate (by serial) within rotationDeadline. The certificates come
// from a CA of the test's own, registered as the webhooks' caBundle, so the
// API server verifies the new certificate as well: StatefulSet dry-run
// creates through it go on the whole time. Two rotations: the kubelet's
// atomic update of a Secret volume (cert-manager), then an in-place
// overwrite of both files (a reader may see a half-written file or a
// mismatched pair, which must never be served).
func TestCertificateRotation(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	ca := newTestCA(t)
	first := issue(t, ca)
	vol := newSecretVolume(t, first)
	port := serve.FreePort(t)
	srv := serve.StartWith(t, c, serve.Options{Port: port, CertDir: vol.dir, CAData: ca.CertPEM})

	hooks := serve.ChartWebhooks(t)
	hooks.LocalServingHost, hooks.LocalServingPort, hooks.LocalServingCAData = "127.0.0.1", port, ca.CertPEM
	if err := controlplane.InstallWebhooks(c.Config, &hooks); err != nil {
		t.Fatal(err)
	}
	cs := serve.Clientset(t, c)
	serve.Seed(t, cs, "shop", "db")

	// Reviews straight to the webhook: two clients on kept-alive
	// connections, two opening a connection (a handshake) per request.
	all := reviews.All("shop", "db")
	var (
		fails      failures
		requests   atomic.Int64
		handshakes atomic.Int64
		latest     sync.Map // serial string -> first seen (time.Time), fresh connections only
	)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		fresh := w%2 == 1
		tr := &http.Transport{TLSClientConfig: srv.TLSConfig()}
		cl := newReviewClient(srv.URL(), tr, fresh)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.close()
			for i := w; ctx.Err() == nil; i++ {
				r := all[i%len(all)]
				resp, ar, err := cl.post(ctx, r)
				if ctx.Err() != nil {
					return
				}
				requests.Add(1)
				if err == nil {
					err = expect(r, ar)
				}
				if err != nil {
					fails.add(err)
					continue
				}
				if fresh {
					handshakes.Add(1)
					serial := resp.TLS.PeerCertificates[0].SerialNumber.String()
					latest.LoadOrStore(serial, time.Now())
				}
			}
		}()
	}
	// And StatefulSet creates through the API server (dry run: both
	// webhooks are called, nothing is stored), which verifies the webhook's
	// certificate against the registered caBundle.
	var apiCreates atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			sts := reviews.StatefulSet("shop", "db")
			sts.Name = fmt.Sprintf("dry-%d", i)
			_, err := cs.AppsV1().StatefulSets("shop").Create(ctx, sts, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			if ctx.Err() != nil {
				return
			}
			apiCreates.Add(1)
			if err != nil {
				fails.add(fmt.Errorf("API server create: %w", err))
			}
		}
	}()

	served := func(serial *big.Int) (time.Time, bool) {
		v, ok := latest.Load(serial.String())
		if !ok {
			return time.Time{}, false
		}
		return v.(time.Time), true
	}
	waitServed := func(name string, pair controlplane.ServingCert, rotated time.Time) time.Duration {
		t.Helper()
		c.Eventually(t, rotationDeadline, func() error {
			if _, ok := served(pair.Serial); !ok {
				return fmt.Errorf("%s: new handshakes still get another certificate than serial %s", name, pair.Serial)
			}
			return nil
		})
		at, _ := served(pair.Serial)
		return at.Sub(rotated)
	}
	// Traffic flows, on the first certificate, before anything changes.
	c.Eventually(t, 30*time.Second, func() error {
		if _, ok := served(first.Serial); !ok || apiCreates.Load() < 5 {
			return fmt.Errorf("no traffic yet (%d reviews, %d API creates)", requests.Load(), apiCreates.Load())
		}
		return nil
	})

	second := issue(t, ca)
	rotated := time.Now()
	vol.update(t, second)
	tookSwap := waitServed("atomic Secret-volume update", second, rotated)
	beforeOverwrite := requests.Load()
	c.Eventually(t, 10*time.Second, func() error { // some traffic on the new certificate
		if requests.Load() < beforeOverwrite+50 {
			return fmt.Errorf("only %d reviews since", requests.Load()-beforeOverwrite)
		}
		return nil
	})

	third := issue(t, ca)
	rotated = time.Now()
	vol.overwrite(t, third)
	tookOverwrite := waitServed("in-place overwrite", third, rotated)
	after := requests.Load()
	c.Eventually(t, 10*time.Second, func() error {
		if requests.Load() < after+50 {
			return fmt.Errorf("only %d reviews since", requests.Load()-after)
		}
		return nil
	})
	stop()
	wg.Wait()

	// Nothing but the three certificates was ever served.
	var other []string
	latest.Range(func(k, _ any) bool {
		if s := k.(string); s != first.Serial.String() && s != second.Serial.String() && s != third.Serial.String() {
			other = append(other, s)
		}
		return true
	})
	if len(other) > 0 {
		t.Errorf("served certificates of unknown serials %s", strings.Join(other, ", "))
	}
	t.Logf("certificate rotation: %d reviews (%d on fresh TLS connections), %d API-server dry-run creates; new certificate served %s after the atomic update, %s after the in-place overwrite; %d failures",
		requests.Load(), handshakes.Load(), apiCreates.Load(), tookSwap.Round(time.Millisecond), tookOverwrite.Round(time.Millisecond), fails.count())
	if n := fails.count(); n > 0 {
		t.Errorf("%d failed requests during certificate rotation:\n%s", n, fails.String())
	}
	if m := srv.Metric(t, "certwatcher_read_certificate_errors_total"); m > 0 {
		t.Logf("certwatcher read errors (a half-written file, not served): %.0f", m)
	}
}
