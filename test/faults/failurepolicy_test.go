package faults

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stateguard/stateguard/internal/controlplane"
	"github.com/stateguard/stateguard/test/cluster"
	"github.com/stateguard/stateguard/test/load/reviews"
	"github.com/stateguard/stateguard/test/serve"
)

// TestFailurePolicy registers the chart's webhook configurations, with no
// webhook behind them, and measures what the API server does with writes,
// first with the chart's default `failurePolicy: Fail`, then rendered with
// `--set webhook.failurePolicy=Ignore`, each with the webhook down
// (connections refused) and hanging (a listener that accepts connections
// and never answers):
//
//   - Fail: StatefulSet creates and Service deletes in an ordinary
//     namespace are refused ("failed calling webhook"); when the webhook
//     hangs, after timeoutSeconds (the chart's 5s), not later;
//   - Ignore: they are admitted, unchanged by the (unreachable) mutating
//     webhook; when it hangs, after each webhook's timeout (mutating, then
//     validating), not later;
//   - both: in the exempt namespaces, kube-system and the release namespace
//     stateguard-system, they are admitted at once: the namespaceSelector
//     keeps the API server from calling the webhook at all.
func TestFailurePolicy(t *testing.T) {
	hooks := serve.ChartWebhooks(t)
	timeout := time.Duration(*hooks.ValidatingWebhooks[0].Webhooks[0].TimeoutSeconds) * time.Second
	// "At once" is well under the timeout, so that it cannot be a call that
	// timed out; "≈ timeout" allows for a busy machine, not for a retry.
	quick, slack := timeout/2, timeout/2
	c := cluster.Start(t, cluster.Options{Webhooks: hooks})
	cs := serve.Clientset(t, c)
	ctx := context.Background()
	const ordinary = "apps"
	exempt := []string{"kube-system", serve.ReleaseNamespace}
	for _, ns := range []string{ordinary, serve.ReleaseNamespace} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	addr := net.JoinHostPort(c.Webhooks.LocalServingHost, fmt.Sprint(c.Webhooks.LocalServingPort))

	var seq int
	// write creates a StatefulSet (both webhooks) and deletes a Service
	// (the Service guard) in ns, returning each result and how long it took.
	type outcome struct {
		op      string
		err     error
		took    time.Duration
		mutated bool
	}
	write := func(ns string) []outcome {
		t.Helper()
		seq++
		name := fmt.Sprintf("w%02d", seq)
		svc := reviews.Service(ns, name)
		if _, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil { // not hooked
			t.Fatal(err)
		}
		// At the same time, so a hanging webhook costs one wait, not two.
		out := make([]outcome, 2)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			begin := time.Now()
			created, err := cs.AppsV1().StatefulSets(ns).Create(ctx, reviews.StatefulSet(ns, name), metav1.CreateOptions{})
			out[0] = outcome{op: "create StatefulSet " + ns + "/" + name, err: err, took: time.Since(begin)}
			if err == nil {
				out[0].mutated = created.Spec.VolumeClaimTemplates[0].Spec.StorageClassName != nil
			}
		}()
		go func() {
			defer wg.Done()
			begin := time.Now()
			err := cs.CoreV1().Services(ns).Delete(ctx, name, metav1.DeleteOptions{})
			out[1] = outcome{op: "delete Service " + ns + "/" + name, err: err, took: time.Since(begin)}
		}()
		wg.Wait()
		return out
	}
	// Exempt namespaces: admitted at once, whatever the webhook does.
	checkExempt := func(phase string) {
		t.Helper()
		for _, ns := range exempt {
			for _, o := range write(ns) {
				if o.err != nil {
					t.Errorf("%s: %s: %v", phase, o.op, o.err)
				} else if o.took > quick {
					t.Errorf("%s: %s took %s: the webhook was called in an exempt namespace", phase, o.op, o.took)
				}
				if o.mutated {
					t.Errorf("%s: %s: mutated in an exempt namespace", phase, o.op)
				}
			}
		}
	}
	var report strings.Builder
	fmt.Fprintf(&report, "failure policy, webhook timeoutSeconds %s:\n", timeout)
	row := func(phase string, outs []outcome) {
		for _, o := range outs {
			verdict := "admitted"
			if o.err != nil {
				verdict = "refused"
			}
			fmt.Fprintf(&report, "  %-16s %-32s %-8s in %s\n", phase, o.op, verdict, o.took.Round(time.Millisecond))
		}
	}

	// Fail, webhook down.
	outs := write(ordinary)
	row("Fail, down", outs)
	for _, o := range outs {
		if o.err == nil || !strings.Contains(o.err.Error(), "failed calling webhook") {
			t.Errorf("Fail, down: %s: %v, want a refusal (failed calling webhook)", o.op, o.err)
		}
		if o.took > quick {
			t.Errorf("Fail, down: %s refused after %s, want at once (connection refused)", o.op, o.took)
		}
	}
	checkExempt("Fail, down")

	// Fail, webhook hanging.
	hang := hangingListener(t, addr)
	outs = write(ordinary)
	row("Fail, hanging", outs)
	for _, o := range outs {
		if o.err == nil || !strings.Contains(o.err.Error(), "failed calling webhook") {
			t.Errorf("Fail, hanging: %s: %v, want a refusal (failed calling webhook)", o.op, o.err)
		}
		if o.took < timeout-250*time.Millisecond || o.took > timeout+slack {
			t.Errorf("Fail, hanging: %s refused after %s, want ≈ timeoutSeconds (%s)", o.op, o.took, timeout)
		}
	}
	checkExempt("Fail, hanging")
	hang.close()

	// The same configurations rendered with failurePolicy Ignore, replacing
	// the registered ones (same names) at the same address.
	ignore := serve.ChartWebhooks(t, "webhook.failurePolicy=Ignore")
	ignore.LocalServingHost, ignore.LocalServingPort, ignore.LocalServingCAData = c.Webhooks.LocalServingHost, c.Webhooks.LocalServingPort, c.Webhooks.LocalServingCAData
	if err := controlplane.InstallWebhooks(c.Config, &ignore); err != nil {
		t.Fatal(err)
	}
	// The API server applies it shortly after: wait for a create to pass.
	c.Eventually(t, 30*time.Second, func() error {
		_, err := cs.AppsV1().StatefulSets(ordinary).Create(ctx, reviews.StatefulSet(ordinary, "probe"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	})

	// Ignore, webhook down.
	outs = write(ordinary)
	row("Ignore, down", outs)
	for _, o := range outs {
		if o.err != nil {
			t.Errorf("Ignore, down: %s: %v, want it admitted", o.op, o.err)
		} else if o.took > quick {
			t.Errorf("Ignore, down: %s admitted after %s, want at once", o.op, o.took)
		}
		if o.mutated {
			t.Errorf("Ignore, down: %s: mutated with the webhook down?", o.op)
		}
	}
	checkExempt("Ignore, down")

	// Ignore, webhook hanging: each of the two webhooks a create calls
	// times out before the create is admitted.
	hang = hangingListener(t, addr)
	outs = write(ordinary)
	row("Ignore, hanging", outs)
	for i, o := range outs {
		calls := time.Duration(2 - i) // the create calls two webhooks, the delete one
		if o.err != nil {
			t.Errorf("Ignore, hanging: %s: %v, want it admitted", o.op, o.err)
		} else if o.took < calls*timeout-250*time.Millisecond || o.took > calls*timeout+slack {
			t.Errorf("Ignore, hanging: %s admitted after %s, want ≈ %d × timeoutSeconds (%s)", o.op, o.took, calls, calls*timeout)
		}
	}
	checkExempt("Ignore, hanging")
	t.Logf("%s(the hanging webhook accepted %d connections and answered none)", report.String(), hang.close())
}

// hanging is a listener on the webhook's address that accepts connections
// and never reads or writes: a webhook that hangs.
type hanging struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
	done  chan struct{}
}

func hangingListener(t *testing.T, addr string) *hanging {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening on the webhook's address %s: %v", addr, err)
	}
	h := &hanging{l: l, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, conn)
			h.mu.Unlock()
		}
	}()
	t.Cleanup(func() { h.close() })
	return h
}

// close stops listening, closes the held connections and returns how many
// there were.
func (h *hanging) close() int {
	_ = h.l.Close()
	<-h.done
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(h.conns)
	for _, c := range h.conns {
		_ = c.Close()
	}
	h.conns = nil
	return n
}
