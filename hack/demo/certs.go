package main

import (
	"net"
	"os"
	"path/filepath"

	"github.com/stateguard/stateguard/internal/controlplane"
)

// writeWebhookCerts generates a fresh CA and a serving certificate for the
// webhook, signed by it, for the given IPs and DNS names (controlplane.CA).
// It writes ca.crt, tls.crt and tls.key into dir (the layout `stateguard
// serve --cert-dir` and cert-manager use) and returns the CA certificate in
// PEM: the caBundle of the webhook configurations.
func writeWebhookCerts(dir string, ips []net.IP, dnsNames []string) (caPEM []byte, err error) {
	ca, err := controlplane.NewCA("stateguard-demo-ca")
	if err != nil {
		return nil, err
	}
	serving, err := ca.Issue(ips, dnsNames)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{"ca.crt": ca.CertPEM, "tls.crt": serving.CertPEM, "tls.key": serving.KeyPEM}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	return ca.CertPEM, nil
}
