package faults

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stateguard/stateguard/test/cluster"
	"github.com/stateguard/stateguard/test/load/reviews"
	"github.com/stateguard/stateguard/test/serve"
)

// TestGracefulShutdown sends SIGTERM to `stateguard serve` under a steady
// load of reviews (200/s on four kept-alive connections, plus a probe
// opening a new connection every 20ms) and requires, in this order:
//
//   - /readyz turns unready at once (and never ready again), while
//     /healthz still answers;
//   - every review of the load succeeds; the load stops 1s after the
//     readiness change (as the API server stops sending once endpoints drop
//     the pod), within --shutdown-delay;
//   - the probe's reviews all succeed until connections are refused, which
//     happens no earlier than --shutdown-delay after the signal;
//   - reviews in flight when the server stops accepting (their bodies
//     half sent before, finished after) are answered in full, including one
//     that needs a live read from the API server (a Service missing from the
//     cache);
//   - the process exits with status 0 within --shutdown-delay +
//     --shutdown-grace of the signal.
func TestGracefulShutdown(t *testing.T) {
	const (
		delay = 3 * time.Second
		grace = 10 * time.Second
		rate  = 200 // reviews/s
		conns = 4
	)
	c := cluster.Start(t, cluster.Options{})
	serve.Seed(t, serve.Clientset(t, c), "shop", "db")
	srv := serve.Start(t, c, "--shutdown-delay", delay.String(), "--shutdown-grace", grace.String())

	all := reviews.All("shop", "db")
	// A StatefulSet naming a Service that exists nowhere: the cache misses,
	// the webhook reads live, and denies it for the missing Service.
	ghost, err := reviews.Find(reviews.All("shop", "ghost"), "validate-statefulset/create")
	if err != nil {
		t.Fatal(err)
	}

	// The steady load, open loop at a fixed rate.
	var (
		loadFails failures
		loadDone  atomic.Int64
		lastLoad  atomic.Int64 // unix nanos of the last load response
	)
	loadCtx, stopLoad := context.WithCancel(context.Background())
	var loadWG sync.WaitGroup
	start := time.Now()
	interval := time.Second * conns / rate
	for w := 0; w < conns; w++ {
		cl := newReviewClient(srv.URL(), &http.Transport{TLSClientConfig: srv.TLSConfig()}, false)
		loadWG.Add(1)
		go func() {
			defer loadWG.Done()
			defer cl.close()
			for i := 0; ; i++ {
				next := start.Add(time.Duration(i)*interval + time.Duration(w)*interval/conns)
				select {
				case <-loadCtx.Done():
					return
				case <-time.After(time.Until(next)):
				}
				r := all[(i*conns+w)%len(all)]
				_, ar, err := cl.post(context.Background(), r) // never cut short by the test
				if err == nil {
					err = expect(r, ar)
				}
				if err != nil {
					loadFails.add(err)
				}
				loadDone.Add(1)
				lastLoad.Store(time.Now().UnixNano())
			}
		}()
	}

	// The probe: a new connection every 20ms until one is refused. A
	// connection the kernel completed just as the listener closed is reset
	// before its TLS handshake: not accepted either, unless a later probe is
	// answered (then it counts as a failure).
	var (
		probeFails failures
		probes     atomic.Int64
		refusedAt  atomic.Int64
		boundary   []error // handshake never completed, pending judgement
	)
	refused := make(chan struct{})
	go func() {
		defer close(refused)
		for {
			cl := newReviewClient(srv.URL(), &http.Transport{TLSClientConfig: srv.TLSConfig()}, true)
			r := all[int(probes.Load())%len(all)]
			var handshook atomic.Bool
			trace := &httptrace.ClientTrace{TLSHandshakeDone: func(_ tls.ConnectionState, err error) { handshook.Store(err == nil) }}
			_, ar, err := cl.post(httptrace.WithClientTrace(context.Background(), trace), r)
			cl.close()
			switch {
			case errors.Is(err, syscall.ECONNREFUSED):
				refusedAt.Store(time.Now().UnixNano())
				if len(boundary) > 0 {
					t.Logf("not accepted as the listener closed (reset before the TLS handshake): %v", boundary)
				}
				return
			case err != nil && !handshook.Load():
				boundary = append(boundary, err)
			default:
				if err == nil {
					err = expect(r, ar)
				}
				if err != nil {
					probeFails.add(err)
				}
				if err == nil && len(boundary) > 0 { // answered after all: they were failures
					for _, b := range boundary {
						probeFails.add(b)
					}
					boundary = nil
				}
			}
			probes.Add(1)
			if srv.Exited() {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	// Readiness, every 10ms until the process exits.
	var (
		unreadyAt    atomic.Int64
		readyAgain   atomic.Int64
		healthFailed atomic.Int64
	)
	probesDone := make(chan struct{})
	go func() {
		defer close(probesDone)
		for !srv.Exited() && refusedAt.Load() == 0 {
			err := srv.Ready()
			switch {
			case err != nil && unreadyAt.Load() == 0 && strings.Contains(err.Error(), "HTTP 5"):
				unreadyAt.Store(time.Now().UnixNano())
			case err == nil && unreadyAt.Load() != 0:
				readyAgain.Add(1)
			}
			if unreadyAt.Load() != 0 && srv.Healthy() != nil && refusedAt.Load() == 0 {
				healthFailed.Add(1)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()

	c.Eventually(t, 10*time.Second, func() error { // steady state
		if loadDone.Load() < 2*rate/5 {
			return fmt.Errorf("%d load reviews so far", loadDone.Load())
		}
		return nil
	})
	if err := srv.Ready(); err != nil {
		t.Fatalf("not ready before SIGTERM: %v", err)
	}
	sigterm := time.Now()
	if err := srv.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	c.Eventually(t, 2*time.Second, func() error {
		if unreadyAt.Load() == 0 {
			return errors.New("/readyz still ready after SIGTERM")
		}
		return nil
	})
	unready := time.Unix(0, unreadyAt.Load())

	// Endpoints would drop the pod now; the load stops a second later.
	time.Sleep(time.Until(unready.Add(time.Second)))
	stopLoad()
	loadWG.Wait()
	loadStopped := time.Unix(0, lastLoad.Load())

	// Reviews in flight when the server stops accepting.
	inflight := []inflightCase{
		{review: mustFind(t, all, "validate-statefulset/create-mutated"), allowed: true},
		{review: mustFind(t, all, "mutate-statefulset/create"), allowed: true, patch: true},
		{review: ghost, allowed: false, message: `Service "ghost" not found`},
	}
	for i := range inflight {
		inflight[i].begin(t, srv)
	}
	<-refused
	if refusedAt.Load() == 0 {
		t.Fatalf("the process exited before connections were refused: %v", srv.ExitErr())
	}
	stoppedAccepting := time.Unix(0, refusedAt.Load())
	time.Sleep(300 * time.Millisecond) // well inside the shutdown, before the rest of the bodies
	var inflightWG sync.WaitGroup
	for i := range inflight {
		inflightWG.Add(1)
		go func() { defer inflightWG.Done(); inflight[i].finish() }()
	}
	inflightWG.Wait()

	if !srv.Wait(delay + grace + 5*time.Second) {
		t.Fatalf("still running %s after SIGTERM", time.Since(sigterm))
	}
	exited := srv.ExitedAt()
	<-probesDone

	t.Logf("graceful shutdown (delay %s, grace %s): unready %s after SIGTERM; load (%d reviews at %d/s) stopped at +%s; %d probes on new connections until refused at +%s; in-flight reviews answered; exit at +%s (%v)",
		delay, grace, unready.Sub(sigterm).Round(time.Millisecond), loadDone.Load(), rate, loadStopped.Sub(sigterm).Round(time.Millisecond),
		probes.Load(), stoppedAccepting.Sub(sigterm).Round(time.Millisecond), exited.Sub(sigterm).Round(time.Millisecond), srv.ExitErr())

	if d := unready.Sub(sigterm); d > time.Second {
		t.Errorf("/readyz turned unready %s after SIGTERM, want at once", d)
	}
	if n := readyAgain.Load(); n > 0 {
		t.Errorf("/readyz answered ready %d times after turning unready", n)
	}
	if n := healthFailed.Load(); n > 0 {
		t.Errorf("/healthz failed %d times while the server was draining", n)
	}
	if n := loadFails.count(); n > 0 {
		t.Errorf("%d of %d load reviews failed:\n%s", n, loadDone.Load(), loadFails.String())
	}
	if n := probeFails.count(); n > 0 {
		t.Errorf("%d of %d reviews on new connections failed before the server stopped accepting:\n%s", n, probes.Load(), probeFails.String())
	}
	if !unready.Before(stoppedAccepting) || !loadStopped.Before(stoppedAccepting) {
		t.Errorf("order: unready at +%s and load stopped at +%s must both precede refusing connections at +%s",
			unready.Sub(sigterm), loadStopped.Sub(sigterm), stoppedAccepting.Sub(sigterm))
	}
	if d := stoppedAccepting.Sub(sigterm); d < delay {
		t.Errorf("connections refused %s after SIGTERM, before --shutdown-delay %s", d, delay)
	}
	for _, ic := range inflight {
		if ic.err != nil {
			t.Errorf("in-flight %s: %v", ic.review.Name, ic.err)
		}
	}
	if err := srv.ExitErr(); err != nil {
		t.Errorf("exit status: %v\n%s", err, srv.LogTail(30))
	}
	if d := exited.Sub(sigterm); d > delay+grace {
		t.Errorf("exited %s after SIGTERM, more than --shutdown-delay + --shutdown-grace = %s", d, delay+grace)
	}
}

func mustFind(t *testing.T, all []reviews.Review, name string) reviews.Review {
	t.Helper()
	r, err := reviews.Find(all, name)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// inflightCase is a review sent in two halves on its own connection: the
// headers and half the body (begin), then the rest (finish), so that it is
// in flight across a moment of the test's choosing.
type inflightCase struct {
	review  reviews.Review
	allowed bool
	patch   bool
	message string // in the denial

	conn *tls.Conn
	err  error
}

func (ic *inflightCase) begin(t *testing.T, srv *serve.Server) {
	t.Helper()
	conn, err := tls.Dial("tcp", srv.Addr(), srv.TLSConfig())
	if err != nil {
		t.Fatalf("in-flight %s: %v", ic.review.Name, err)
	}
	ic.conn = conn
	body := ic.review.Body
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", ic.review.Path, srv.Addr(), len(body))
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(body[:len(body)/2]); err != nil {
		t.Fatal(err)
	}
}

func (ic *inflightCase) finish() {
	defer ic.conn.Close()
	body := ic.review.Body
	if _, err := ic.conn.Write(body[len(body)/2:]); err != nil {
		ic.err = fmt.Errorf("sending the rest of the body: %w", err)
		return
	}
	_ = ic.conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(ic.conn), nil)
	if err != nil {
		ic.err = fmt.Errorf("reading the response: %w", err)
		return
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		ic.err = fmt.Errorf("reading the response: %w", err)
		return
	}
	ar, err := decodeReview(resp.StatusCode, data, ic.review.UID)
	if err != nil {
		ic.err = err
		return
	}
	msg := ""
	if ar.Result != nil {
		msg = ar.Result.Message
	}
	switch {
	case ar.Allowed != ic.allowed:
		ic.err = fmt.Errorf("allowed=%t, want %t: %s", ar.Allowed, ic.allowed, msg)
	case (len(ar.Patch) > 0) != ic.patch:
		ic.err = fmt.Errorf("patch %t, want %t", len(ar.Patch) > 0, ic.patch)
	case !strings.Contains(msg, ic.message):
		ic.err = fmt.Errorf("message %q lacks %q", msg, ic.message)
	}
}
