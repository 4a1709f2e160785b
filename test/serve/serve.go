package serve

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/stateguard/stateguard/internal/controlplane"
	"github.com/stateguard/stateguard/test/cluster"
)

// Default timeouts.
const (
	// DefaultReadyTimeout bounds Start's wait for /readyz.
	DefaultReadyTimeout = 2 * time.Minute
	// DefaultStopTimeout is how long Stop waits after SIGTERM before it
	// kills the process (and fails the test).
	DefaultStopTimeout = 60 * time.Second
	// logTailLines is how much of the log a failed test shows.
	logTailLines = 60
)

// Options configures StartWith. Zero values take envtest's webhook serving
// address and certificate from the cluster.
type Options struct {
	// Args are extra `stateguard serve` flags. They come after Start's
	// defaults, so they override them (the last value of a flag wins).
	Args []string
	// Env are extra environment variables (KEY=value) for the process.
	Env []string
	// Port is the webhook port (default: c.Webhooks.LocalServingPort).
	Port int
	// CertDir holds tls.crt and tls.key (default: c.Webhooks.LocalServingCertDir).
	CertDir string
	// CAData is the PEM a client must trust to reach the webhook (default:
	// c.Webhooks.LocalServingCAData); see Server.TLSConfig and CAFile.
	CAData []byte
	// NoWait returns as soon as the process started, without waiting for
	// /readyz (call WaitReady).
	NoWait bool
	// ReadyTimeout bounds the wait for /readyz (default DefaultReadyTimeout).
	ReadyTimeout time.Duration
}

// Server is a running `stateguard serve` process.
type Server struct {
	// Port is the HTTPS port of the webhooks, on 127.0.0.1.
	Port int
	// CertDir is the directory of the serving certificate.
	CertDir string
	// CAFile is a PEM file of Options.CAData, for clients such as hack/loadgen.
	CAFile string
	// ProbeAddr serves /healthz and /readyz; MetricsAddr /metrics (host:port).
	ProbeAddr, MetricsAddr string
	// Args are the process's arguments (after the binary).
	Args []string

	caData   []byte
	cmd      *exec.Cmd
	log      *LogBuffer
	done     chan struct{}
	exitErr  error
	exitedAt time.Time
	http     *http.Client
}

// Start runs `stateguard serve` against c with envtest's webhook port and
// certificate, args appended to the defaults (--kubeconfig, --cert-dir,
// --port, free --health-probe-bind-address and --metrics-bind-address on
// 127.0.0.1, --log-format text, --shutdown-delay 0s: nothing routes to it
// through endpoints here), and waits until /readyz says ready. The test's
// Cleanup stops it (SIGTERM) and, if the test failed, logs its output's tail.
func Start(t testing.TB, c *cluster.Cluster, args ...string) *Server {
	t.Helper()
	return StartWith(t, c, Options{Args: args})
}

// StartWith is Start with Options.
func StartWith(t testing.TB, c *cluster.Cluster, opts Options) *Server {
	t.Helper()
	bin := Binary(t)
	if opts.Port == 0 {
		opts.Port = c.Webhooks.LocalServingPort
	}
	if opts.CertDir == "" {
		opts.CertDir = c.Webhooks.LocalServingCertDir
	}
	if opts.CAData == nil {
		opts.CAData = c.Webhooks.LocalServingCAData
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = DefaultReadyTimeout
	}
	s := &Server{
		Port: opts.Port, CertDir: opts.CertDir, caData: opts.CAData,
		ProbeAddr: FreeAddr(t), MetricsAddr: FreeAddr(t),
		log: &LogBuffer{}, done: make(chan struct{}),
		http: &http.Client{Timeout: 5 * time.Second},
	}
	if len(opts.CAData) > 0 {
		s.CAFile = filepath.Join(t.TempDir(), "ca.crt")
		if err := os.WriteFile(s.CAFile, opts.CAData, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s.Args = append([]string{"serve",
		"--kubeconfig", c.Kubeconfig,
		"--cert-dir", opts.CertDir,
		"--port", strconv.Itoa(opts.Port),
		"--health-probe-bind-address", s.ProbeAddr,
		"--metrics-bind-address", s.MetricsAddr,
		"--log-format", "text",
		"--shutdown-delay", "0s",
	}, opts.Args...)
	s.cmd = exec.Command(bin, s.Args...)
	s.cmd.Env = append(os.Environ(), opts.Env...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.SysProcAttr = childProcAttr()
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting stateguard serve: %v", err)
	}
	go func() {
		err := s.cmd.Wait()
		s.exitErr, s.exitedAt = err, time.Now()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.Stop(t)
		s.http.CloseIdleConnections()
		if t.Failed() {
			t.Logf("stateguard serve %s log (last %d lines):\n%s", s.Addr(), logTailLines, s.LogTail(logTailLines))
		}
	})
	if !opts.NoWait {
		s.WaitReady(t, opts.ReadyTimeout)
	}
	return s
}

// Addr is the webhooks' address, 127.0.0.1:Port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// URL is the webhooks' base URL, https://127.0.0.1:Port.
func (s *Server) URL() string { return "https://" + s.Addr() }

// Pid is the process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Log returns the process's output so far (stdout and stderr; the head is
// dropped past LogBufferMax).
func (s *Server) Log() string { return s.log.String() }

// LogTail returns the last n lines of Log.
func (s *Server) LogTail(n int) string { return controlplane.Tail([]byte(s.log.String()), n) }

// Done is closed when the process has exited; ExitErr and ExitedAt then
// tell how and when.
func (s *Server) Done() <-chan struct{} { return s.done }

// Exited reports whether the process has exited.
func (s *Server) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// ExitErr is the process's exit error (nil for status 0), once Done is closed.
func (s *Server) ExitErr() error { <-s.done; return s.exitErr }

// ExitedAt is when the process's exit was seen, once Done is closed.
func (s *Server) ExitedAt() time.Time { <-s.done; return s.exitedAt }

// Signal sends sig to the process (not its group).
func (s *Server) Signal(sig os.Signal) error {
	if s.Exited() {
		return errors.New("stateguard serve has exited")
	}
	return s.cmd.Process.Signal(sig)
}

// Wait waits up to timeout for the process to exit, returning whether it did.
func (s *Server) Wait(timeout time.Duration) bool {
	select {
	case <-s.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Stop sends SIGTERM and waits up to DefaultStopTimeout for the process to
// exit, then kills it and fails the test. A no-op once it has exited. The
// exit status is not checked (see ExitErr).
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if s.Exited() {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	if !s.Wait(DefaultStopTimeout) {
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Errorf("stateguard serve did not exit within %s of SIGTERM; killed", DefaultStopTimeout)
	}
}

// Kill kills the process at once and waits for it.
func (s *Server) Kill() {
	if !s.Exited() {
		_ = s.cmd.Process.Kill()
	}
	<-s.done
}

// Ready probes /readyz once: nil if it answered 200, else why not.
func (s *Server) Ready() error {
	return s.probe("/readyz")
}

// Healthy probes /healthz once.
func (s *Server) Healthy() error {
	return s.probe("/healthz")
}

func (s *Server) probe(path string) error {
	resp, err := s.http.Get("http://" + s.ProbeAddr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", path, resp.StatusCode)
	}
	return nil
}

// WaitReady polls /readyz until it answers 200, failing the test (with the
// log's tail) if the process exits or timeout passes first.
func (s *Server) WaitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		if s.Exited() {
			return false, fmt.Errorf("stateguard serve exited: %v", s.exitErr)
		}
		last = s.Ready()
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("stateguard serve never became ready (last probe: %v): %v\n%s", last, err, s.LogTail(logTailLines))
	}
}

// TLSConfig is a client configuration trusting the server's CA (as the API
// server does with the registered caBundle), HTTP/1.1 only, as the API
// server speaks to webhooks.
func (s *Server) TLSConfig() *tls.Config {
	return ClientTLS(s.caData)
}

// ClientTLS is a client TLS configuration trusting the PEM certificates in
// caData, HTTP/1.1 only.
func ClientTLS(caData []byte) *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caData)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}, ServerName: "127.0.0.1"}
}

// FreeAddr returns a 127.0.0.1:port address that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}

// FreePort returns a port of 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := controlplane.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// LogBufferMax is how much of a process's output a LogBuffer keeps.
const LogBufferMax = 16 << 20

// LogBuffer collects a process's output, safe for concurrent use, keeping
// the last LogBufferMax bytes.
type LogBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - LogBufferMax; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
