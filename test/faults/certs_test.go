package faults

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stateguard/stateguard/internal/controlplane"
)

// newTestCA is a certificate authority of the test's own: envtest keeps its
// webhook CA's key to itself (LocalServingCAData is the serving certificate),
// so a rotated certificate "from the same CA" needs a CA we hold.
func newTestCA(t *testing.T) *controlplane.CA {
	t.Helper()
	ca, err := controlplane.NewCA("stateguard-faults-ca")
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// issue signs a serving certificate for 127.0.0.1 and localhost with a new key.
func issue(t *testing.T, ca *controlplane.CA) controlplane.ServingCert {
	t.Helper()
	pair, err := ca.Issue([]net.IP{net.ParseIP("127.0.0.1")}, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// secretVolume writes tls.crt and tls.key the way the kubelet updates a
// Secret volume (what a cert-manager Certificate's Secret is mounted as):
// the files are symlinks through ..data to a timestamped directory, and an
// update writes a new directory and swaps ..data with an atomic rename.
type secretVolume struct {
	dir string
	gen int
}

func newSecretVolume(t *testing.T, pair controlplane.ServingCert) *secretVolume {
	t.Helper()
	v := &secretVolume{dir: t.TempDir()}
	v.update(t, pair)
	for _, name := range []string{"tls.crt", "tls.key"} {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(v.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

func (v *secretVolume) update(t *testing.T, pair controlplane.ServingCert) {
	t.Helper()
	v.gen++
	gen := filepath.Join(v.dir, "..gen-"+time.Now().Format("2006_01_02_15_04_05.000000000"))
	if err := os.Mkdir(gen, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(gen, "tls.crt"), pair.CertPEM)
	writeFile(t, filepath.Join(gen, "tls.key"), pair.KeyPEM)
	old, _ := os.Readlink(filepath.Join(v.dir, "..data"))
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(gen), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(v.dir, old)); err != nil {
			t.Fatal(err)
		}
	}
}

// overwrite replaces the files' contents in place, the certificate first:
// a reader can see a truncated file or a certificate with the old key.
func (v *secretVolume) overwrite(t *testing.T, pair controlplane.ServingCert) {
	t.Helper()
	crt, _ := filepath.EvalSymlinks(filepath.Join(v.dir, "tls.crt"))
	key, _ := filepath.EvalSymlinks(filepath.Join(v.dir, "tls.key"))
	writeFile(t, crt, pair.CertPEM)
	writeFile(t, key, pair.KeyPEM)
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
