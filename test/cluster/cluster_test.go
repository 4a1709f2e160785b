package cluster_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stateguard/stateguard/test/cluster"
)

const statefulSetManifest = `
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: fast-disk
provisioner: example.com/no-such-provisioner
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: v1
kind: Service
metadata:
  name: nginx
  namespace: default
spec:
  clusterIP: None
  selector:
    app: nginx
  ports:
  - name: web
    port: 80
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
  namespace: default
spec:
  serviceName: nginx
  replicas: 1
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: registry.k8s.io/nginx-slim:0.8
        volumeMounts:
        - name: www
          mountPath: /usr/share/nginx/html
  volumeClaimTemplates:
  - metadata:
      name: www
      labels:
        stateguard.dev/snapshot-schedule: daily
    spec:
      accessModes: [ReadWriteOnce]
      storageClassName: fast-disk
      resources:
        requests:
          storage: 1Gi
`

// The StatefulSet controller of the real kube-controller-manager creates the
// claim from the template, with its class and labels.
func TestStatefulSetControllerCreatesClaims(t *testing.T) {
	t.Parallel()
	c := cluster.Start(t, cluster.Options{ControllerManager: true})

	out := c.MustKubectl(t, statefulSetManifest, "apply", "-f", "-")
	for _, want := range []string{"storageclass.storage.k8s.io/fast-disk created", "service/nginx created", "statefulset.apps/web created"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl apply output lacks %q:\n%s", want, out)
		}
	}

	const jsonpath = `-o=jsonpath={.spec.storageClassName}|{.metadata.labels.stateguard\.dev/snapshot-schedule}`
	c.Eventually(t, 60*time.Second, func() error {
		stdout, stderr, err := c.Kubectl(t, "", "get", "pvc", "www-web-0", "-n", "default", jsonpath)
		if err != nil {
			return fmt.Errorf("%v: %s", err, stderr)
		}
		if stdout != "fast-disk|daily" {
			return fmt.Errorf("pvc www-web-0: class|label = %q, want %q", stdout, "fast-disk|daily")
		}
		return nil
	})

	// The pod object exists too (it never runs: there are no nodes).
	c.Eventually(t, 30*time.Second, func() error {
		_, stderr, err := c.Kubectl(t, "", "get", "pod", "web-0", "-n", "default")
		if err != nil {
			return fmt.Errorf("%v: %s", err, stderr)
		}
		return nil
	})
}

// Server-side dry run goes through the API server's validation and
// admission but persists nothing.
func TestKubectlServerDryRun(t *testing.T) {
	t.Parallel()
	c := cluster.Start(t, cluster.Options{})

	const cm = `
apiVersion: v1
kind: ConfigMap
metadata:
  name: dry
  namespace: default
data:
  k: v
`
	out := c.MustKubectl(t, cm, "apply", "--dry-run=server", "-f", "-")
	if !strings.Contains(out, "configmap/dry created (server dry run)") {
		t.Errorf("unexpected dry-run output: %q", out)
	}
	_, stderr, err := c.Kubectl(t, "", "get", "configmap", "dry", "-n", "default")
	if err == nil || !strings.Contains(stderr, "NotFound") {
		t.Errorf("dry-run persisted the ConfigMap? err=%v stderr=%q", err, stderr)
	}

	// Invalid objects are rejected by the server, not by kubectl: a
	// StatefulSet whose selector does not match its template labels.
	const bad = `
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: bad
  namespace: default
spec:
  serviceName: bad
  selector:
    matchLabels:
      app: one
  template:
    metadata:
      labels:
        app: two
    spec:
      containers:
      - name: c
        image: busybox
`
	_, stderr, err = c.Kubectl(t, bad, "apply", "--dry-run=server", "-f", "-")
	if err == nil || !strings.Contains(stderr, "Invalid") {
		t.Errorf("want server-side validation error, got err=%v stderr=%q", err, stderr)
	}
}
