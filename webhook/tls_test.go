package webhook

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
)

// The serving TLS configuration: TLS 1.2 or newer, only AEAD cipher suites
// with forward secrecy, and HTTP/1.1 only (no HTTP/2, so no rapid-reset
// CVE-2023-44487 and no HTTP/2 stream multiplexing to exhaust the server
// with). These tests probe a live server from the outside, with clients
// that want something else, and check they are refused.

// hardenedSuites are the TLS 1.2 suites the server may agree to.
var hardenedSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// selfSigned makes a self-signed serving certificate for 127.0.0.1 with the
// standard library: ECDSA P-256, or RSA 2048 when rsaKey is set (the ECDHE_RSA
// suites need an RSA certificate, the ECDHE_ECDSA ones an ECDSA one).
func selfSigned(t testing.TB, rsaKey bool) (tls.Certificate, *x509.Certificate, []byte, []byte) {
	t.Helper()
	var key crypto.Signer
	var err error
	if rsaKey {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "stateguard-webhook.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:    []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	return pair, cert, certPEM, keyPEM
}

// TestTLSHardening serves the webhooks on httptest with the TLS config Run
// gives controller-runtime's server (its default, {NextProtos: [h2]}, then
// hardenTLS), with an ECDSA and an RSA certificate so that every ECDHE suite
// could be served, and probes it.
func TestTLSHardening(t *testing.T) {
	ecCert, ecX509, _, _ := selfSigned(t, false)
	rsaCert, rsaX509, _, _ := selfSigned(t, true)
	roots := x509.NewCertPool()
	roots.AddCert(ecX509)
	roots.AddCert(rsaX509)

	mux := http.NewServeMux()
	for path, h := range tlsHandlers(t) {
		mux.Handle(path, h)
	}
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)  // the refused handshakes
	srv.TLS = &tls.Config{NextProtos: []string{"h2"}} // controller-runtime's starting point
	hardenTLS(srv.TLS)
	srv.TLS.Certificates = []tls.Certificate{ecCert, rsaCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	probeTLS(t, srv.Listener.Addr().String(), roots, true)
}

// TestWebhookServerTLSHardening does the same against controller-runtime's
// own webhook server, built as Run builds it (webhook.NewServer with
// TLSOpts: hardenTLS, certificate files in CertDir), so that nothing
// controller-runtime does after the options (its certificate watcher, its
// listener) undoes them.
func TestWebhookServerTLSHardening(t *testing.T) {
	_, ecX509, certPEM, keyPEM := selfSigned(t, false)
	roots := x509.NewCertPool()
	roots.AddCert(ecX509)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tls.crt"), certPEM, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tls.key"), keyPEM, 0o600))

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())

	server := webhook.NewServer(webhook.Options{
		Host:    "127.0.0.1",
		Port:    port,
		CertDir: dir,
		TLSOpts: []func(*tls.Config){hardenTLS},
	})
	for path, h := range tlsHandlers(t) {
		server.Register(path, h)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- server.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			assert.NoError(t, err)
		case <-time.After(time.Minute):
			t.Error("the webhook server did not stop")
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	require.Eventually(t, func() bool {
		select {
		case err := <-errc:
			t.Fatalf("the webhook server stopped: %v", err)
		default:
		}
		return server.StartedChecker()(nil) == nil
	}, 30*time.Second, 20*time.Millisecond, "the webhook server did not start")

	probeTLS(t, addr, roots, false)
}

// tlsHandlers are the admission webhooks as Run registers them.
func tlsHandlers(t testing.TB) map[string]http.Handler {
	h, _ := hostileHandlers(t)
	out := map[string]http.Handler{}
	for path, handler := range h.ForPath() {
		out[path] = mountAsRun(handler, true)
	}
	return out
}

// probeTLS checks a hardened server at addr from the outside. withRSA says
// whether it has an RSA certificate besides the ECDSA one (without, the
// ECDHE_RSA suites cannot be served whatever the config).
func probeTLS(t *testing.T, addr string, roots *x509.CertPool, withRSA bool) {
	dial := func(cfg *tls.Config) (tls.ConnectionState, error) {
		cfg.RootCAs = roots
		cfg.ServerName = "127.0.0.1"
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: cfg}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return tls.ConnectionState{}, err
		}
		defer conn.Close()
		return conn.(*tls.Conn).ConnectionState(), nil
	}

	t.Run("a default client connects, TLS 1.3", func(t *testing.T) {
		state, err := dial(&tls.Config{})
		require.NoError(t, err)
		assert.Equal(t, uint16(tls.VersionTLS13), state.Version)
	})

	t.Run("TLS 1.2 is accepted with a hardened suite", func(t *testing.T) {
		state, err := dial(&tls.Config{MaxVersion: tls.VersionTLS12})
		require.NoError(t, err)
		assert.Equal(t, uint16(tls.VersionTLS12), state.Version)
		assert.Contains(t, hardenedSuites, state.CipherSuite, tls.CipherSuiteName(state.CipherSuite))
	})

	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		t.Run(tls.VersionName(v)+" is refused", func(t *testing.T) {
			var suites []uint16
			for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
				if slices.Contains(s.SupportedVersions, v) {
					suites = append(suites, s.ID)
				}
			}
			_, err := dial(&tls.Config{MinVersion: v, MaxVersion: v, CipherSuites: suites})
			require.Error(t, err)
			assert.Contains(t, err.Error(), "protocol version")
		})
	}

	// Every TLS 1.2 suite the standard library knows, one at a time: the
	// hardened ones connect, every other (CBC, RSA key exchange, RC4, 3DES)
	// is refused.
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if !slices.Contains(s.SupportedVersions, tls.VersionTLS12) {
			continue
		}
		if !slices.Contains(hardenedSuites, s.ID) {
			t.Run(s.Name+" is refused", func(t *testing.T) {
				_, err := dial(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{s.ID}})
				require.Error(t, err, "a client restricted to %s connected", s.Name)
			})
			continue
		}
		t.Run(s.Name+" is accepted", func(t *testing.T) {
			if !withRSA && strings.Contains(s.Name, "_ECDHE_RSA_") {
				t.Skip("this server has only an ECDSA certificate")
			}
			state, err := dial(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{s.ID}})
			require.NoError(t, err)
			assert.Equal(t, s.ID, state.CipherSuite)
		})
	}

	t.Run("a client offering only h2 does not get HTTP/2", func(t *testing.T) {
		state, err := dial(&tls.Config{NextProtos: []string{"h2"}})
		if err == nil {
			assert.NotEqual(t, "h2", state.NegotiatedProtocol)
		} else {
			// Go refuses a handshake whose ALPN offers have no overlap.
			assert.Contains(t, err.Error(), "no application protocol")
		}
	})

	t.Run("a client offering h2 and http/1.1 gets http/1.1", func(t *testing.T) {
		state, err := dial(&tls.Config{NextProtos: []string{"h2", "http/1.1"}})
		require.NoError(t, err)
		assert.Equal(t, "http/1.1", state.NegotiatedProtocol)
	})

	t.Run("an HTTP/2-capable client is served over HTTP/1.1", func(t *testing.T) {
		transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}, ForceAttemptHTTP2: true}
		defer transport.CloseIdleConnections()
		client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
		sts := fixtureJSON(t, statefulSetYAML, &appsv1.StatefulSet{})
		body := reviewJSON(t, "admission.k8s.io/v1", rawRequest("tls", admissionv1.Create, stsKind, sts, nil))
		resp, err := client.Post("https://"+addr+MutateStatefulSetPath, "application/json", bytes.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, 1, resp.ProtoMajor, resp.Proto)
		var review admissionv1.AdmissionReview
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&review))
		require.NotNil(t, review.Response)
		assert.Equal(t, "uid-tls", string(review.Response.UID))
		assert.True(t, review.Response.Allowed)
		assert.NotEmpty(t, review.Response.Patch)
	})
}
