package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stateguard/stateguard/test/cluster"
	"github.com/stateguard/stateguard/test/serve"
)

// storageClasses are AKS's built-in classes as the cluster holds them; the
// CLI's aks catalog describes the same ones.
const storageClasses = `
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: managed-csi}
provisioner: disk.csi.azure.com
reclaimPolicy: Delete
volumeBindingMode: WaitForFirstConsumer
allowVolumeExpansion: true
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: azurefile-csi}
provisioner: file.csi.azure.com
reclaimPolicy: Delete
volumeBindingMode: Immediate
allowVolumeExpansion: true
`

// app renders a headless Service and a StatefulSet, both named name, with
// edits applied to the defaults.
type app struct {
	name         string
	service      string // "" = no Service; else the Service's spec block
	label        string // snapshot-schedule label value; "" = none
	accessMode   string
	class        string // "" = absent
	extraMount   string // a volumeMount with no volume or claim template
	serviceName  string // spec.serviceName; default name
	podLabel     string
	templateName string
}

const headless = "clusterIP: None\n  publishNotReadyAddresses: true\n  selector: {app: %s}\n  ports: [{port: 80, name: web}]"

func (a app) yaml() string {
	if a.accessMode == "" {
		a.accessMode = "ReadWriteOnce"
	}
	if a.serviceName == "" {
		a.serviceName = a.name
	}
	if a.podLabel == "" {
		a.podLabel = a.name
	}
	if a.templateName == "" {
		a.templateName = "data"
	}
	var b strings.Builder
	if a.service != "" {
		fmt.Fprintf(&b, "apiVersion: v1\nkind: Service\nmetadata: {name: %s}\nspec:\n  %s\n---\n", a.name, fmt.Sprintf(a.service, a.name))
	}
	labels := ""
	if a.label != "" {
		labels = fmt.Sprintf("\n  labels: {stateguard.dev/snapshot-schedule: %s}", a.label)
	}
	class := ""
	if a.class != "" {
		class = fmt.Sprintf("\n      storageClassName: %s", a.class)
	}
	extra := ""
	if a.extraMount != "" {
		extra = fmt.Sprintf("\n        - {name: %s, mountPath: /extra}", a.extraMount)
	}
	fmt.Fprintf(&b, `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: %s%s
spec:
  serviceName: %s
  replicas: 1
  selector: {matchLabels: {app: %s}}
  template:
    metadata: {labels: {app: %s}}
    spec:
      containers:
      - name: main
        image: registry.k8s.io/pause:3.10
        volumeMounts:
        - {name: %s, mountPath: /data}%s
  volumeClaimTemplates:
  - metadata: {name: %s}
    spec:
      accessModes: [%s]%s
      resources: {requests: {storage: 1Gi}}
`, a.name, labels, a.serviceName, a.podLabel, a.podLabel, a.templateName, extra, a.templateName, a.accessMode, class)
	return b.String()
}

// verdictCase is one manifest and what both the API server and `stateguard
// check` must decide about it.
type verdictCase struct {
	name     string
	manifest string
	denied   bool
	// message must appear in the denial (kubectl) and in check's output.
	message string
}

func verdictCases() []verdictCase {
	good := app{name: "db", service: headless, label: "daily"}
	withSvc := func(spec string) app { a := good; a.service = spec; return a }
	return []verdictCase{
		{name: "good", manifest: good.yaml()},
		{name: "shared-class-filled", manifest: app{name: "db", service: headless, label: "hourly", accessMode: "ReadWriteMany"}.yaml()},
		{name: "dangling-mount", manifest: app{name: "db", service: headless, label: "weekly", extraMount: "logs"}.yaml()},
		{name: "no-service", manifest: app{name: "db", label: "daily"}.yaml(), denied: true, message: `[headless-service] Service "db" not found`},
		{name: "not-headless", manifest: withSvc("selector: {app: %s}\n  ports: [{port: 80}]").yaml(), denied: true, message: "is not headless"},
		{name: "selector-mismatch", manifest: withSvc("clusterIP: None\n  selector: {app: %s-other}\n  ports: [{port: 80}]").yaml(), denied: true, message: `lack app=db-other, which Service "db" selects`},
		{name: "disk-for-rwx", manifest: app{name: "db", service: headless, label: "daily", accessMode: "ReadWriteMany", class: "managed-csi"}.yaml(), denied: true, message: "serves no ReadWriteMany Filesystem volumes"},
		{name: "unknown-class", manifest: app{name: "db", service: headless, label: "daily", class: "fast"}.yaml(), denied: true, message: `StorageClass "fast" not found`},
		{name: "no-schedule", manifest: app{name: "db", service: headless}.yaml(), denied: true, message: "[snapshot-schedule]"},
		{name: "unknown-schedule", manifest: app{name: "db", service: headless, label: "every-minute"}.yaml(), denied: true, message: `"every-minute" is not a known snapshot schedule`},
	}
}

// TestWebhook runs every scenario against one control plane with the chart's
// webhook configurations registered and a real `stateguard serve` behind them.
func TestWebhook(t *testing.T) {
	webhooks := serve.ChartWebhooks(t)
	c := cluster.Start(t, cluster.Options{ControllerManager: true, Webhooks: webhooks})
	c.MustKubectl(t, storageClasses, "apply", "-f", "-")
	srv := serve.Start(t, c)

	namespace := func(t *testing.T, name string, labels ...string) string {
		c.MustKubectl(t, "", "create", "namespace", name)
		if len(labels) > 0 {
			c.MustKubectl(t, "", append([]string{"label", "namespace", name}, labels...)...)
		}
		return name
	}

	t.Run("same verdicts as stateguard check", func(t *testing.T) {
		for i, tc := range verdictCases() {
			t.Run(tc.name, func(t *testing.T) {
				ns := namespace(t, fmt.Sprintf("verdict-%d", i))
				code, out := runCheck(t, tc.manifest, "-n", ns)
				_, stderr, err := c.Kubectl(t, tc.manifest, "apply", "-n", ns, "-f", "-")
				if tc.denied {
					assert.Equal(t, 1, code, "check exit code; output:\n%s", out)
					require.Error(t, err, "the API server admitted it")
					assert.Contains(t, stderr, tc.message)
					// check prints the policy as a column, not in brackets.
					_, bare, _ := strings.Cut(tc.message, "] ")
					if bare == "" {
						bare = strings.Trim(tc.message, "[]")
					}
					assert.Contains(t, out, bare)
				} else {
					assert.Equal(t, 0, code, "check exit code; output:\n%s", out)
					require.NoError(t, err, "the API server denied it: %s", stderr)
				}
			})
		}
	})

	t.Run("stored object and real PVCs carry the class and the label", func(t *testing.T) {
		ns := namespace(t, "stored")
		a := app{name: "web", service: headless, label: "daily", extraMount: "logs"}
		c.MustKubectl(t, a.yaml(), "apply", "-n", ns, "-f", "-")
		classes := c.MustKubectl(t, "", "get", "sts", "web", "-n", ns, "-o", `jsonpath={range .spec.volumeClaimTemplates[*]}{.metadata.name}={.spec.storageClassName}/{.metadata.labels.stateguard\.dev/snapshot-schedule} {end}`)
		assert.Equal(t, "data=managed-csi/daily logs=managed-csi/daily ", classes)
		c.Eventually(t, 60*time.Second, func() error {
			out, _, err := c.Kubectl(t, "", "get", "pvc", "-n", ns, "-o", `jsonpath={range .items[*]}{.metadata.name}={.spec.storageClassName}/{.metadata.labels.stateguard\.dev/snapshot-schedule} {end}`)
			if err != nil {
				return err
			}
			if out != "data-web-0=managed-csi/daily logs-web-0=managed-csi/daily " {
				return fmt.Errorf("PVCs: %q", out)
			}
			return nil
		})
	})

	t.Run("re-apply, scale, image change pass; removing the schedule is denied", func(t *testing.T) {
		ns := namespace(t, "reapply")
		manifest := app{name: "web", service: headless, label: "daily", extraMount: "logs"}.yaml()
		c.MustKubectl(t, manifest, "apply", "-n", ns, "-f", "-")
		c.MustKubectl(t, manifest, "apply", "-n", ns, "-f", "-")
		c.MustKubectl(t, manifest, "apply", "--server-side", "--force-conflicts", "-n", ns, "-f", "-")
		c.MustKubectl(t, manifest, "replace", "-n", ns, "-f", "-")
		c.MustKubectl(t, "", "scale", "sts", "web", "-n", ns, "--replicas=3")
		c.MustKubectl(t, "", "set", "image", "sts/web", "-n", ns, "main=registry.k8s.io/pause:3.9")
		_, stderr, err := c.Kubectl(t, "", "label", "sts", "web", "-n", ns, "stateguard.dev/snapshot-schedule-")
		require.Error(t, err)
		assert.Contains(t, stderr, "[snapshot-schedule] removing the snapshot schedule")
		_, stderr, err = c.Kubectl(t, "", "label", "sts", "web", "-n", ns, "--overwrite", "stateguard.dev/snapshot-schedule=weekly")
		require.NoError(t, err, stderr)
		assert.Contains(t, stderr, "existing claims keep")
	})

	t.Run("server dry-run gives the same verdicts and creates nothing", func(t *testing.T) {
		ns := namespace(t, "dry-run")
		// A dry run persists nothing, so the Service a StatefulSet needs must
		// exist for real before the StatefulSet's dry run.
		withService := app{name: "db", service: headless, label: "daily"}.yaml()
		service, statefulSet, _ := strings.Cut(withService, "---\n")
		c.MustKubectl(t, service, "apply", "-n", ns, "-f", "-")
		_, stderr, err := c.Kubectl(t, app{name: "db"}.yaml(), "apply", "--dry-run=server", "-n", ns, "-f", "-")
		require.Error(t, err)
		assert.Contains(t, stderr, "[snapshot-schedule]")
		out := c.MustKubectl(t, statefulSet, "apply", "--dry-run=server", "-n", ns, "-f", "-", "-o", "jsonpath={.spec.volumeClaimTemplates[0].spec.storageClassName}")
		assert.Equal(t, "managed-csi", out, "dry-run shows the mutation")
		_, _, err = c.Kubectl(t, "", "get", "sts", "db", "-n", ns)
		assert.Error(t, err, "dry-run created the StatefulSet")
		assert.True(t, srv.Scrape(t).Has("stateguard_admission_decisions_total", "decision=deny", "dry_run=true"))
	})

	t.Run("warn mode admits with warnings; a disabled policy is off", func(t *testing.T) {
		warn := namespace(t, "warn-mode", "stateguard.dev/mode=warn")
		_, stderr, err := c.Kubectl(t, app{name: "db"}.yaml(), "apply", "-n", warn, "-f", "-")
		require.NoError(t, err, stderr)
		assert.Contains(t, stderr, "Warning: [headless-service]")
		assert.Contains(t, stderr, "Warning: [snapshot-schedule]")

		off := namespace(t, "snapshots-off", "stateguard.dev/mode.snapshot-schedule=disabled")
		_, stderr, err = c.Kubectl(t, app{name: "db", service: headless}.yaml(), "apply", "-n", off, "-f", "-")
		require.NoError(t, err, stderr)
		assert.NotContains(t, stderr, "snapshot-schedule")
	})

	t.Run("deleting a headless Service a StatefulSet names is denied", func(t *testing.T) {
		ns := namespace(t, "guard")
		c.MustKubectl(t, app{name: "db", service: headless, label: "daily"}.yaml(), "apply", "-n", ns, "-f", "-")
		_, stderr, err := c.Kubectl(t, "", "delete", "service", "db", "-n", ns)
		require.Error(t, err)
		assert.Contains(t, stderr, `StatefulSet db`)
		c.MustKubectl(t, "", "delete", "sts", "db", "-n", ns)
		c.Eventually(t, 30*time.Second, func() error {
			_, _, err := c.Kubectl(t, "", "delete", "service", "db", "-n", ns)
			return err
		})
	})

	t.Run("100 Service+StatefulSet pairs back to back: no false denial", func(t *testing.T) {
		ns := namespace(t, "burst")
		var b strings.Builder
		for i := 0; i < 100; i++ {
			fmt.Fprintf(&b, "%s---\n", app{name: fmt.Sprintf("db-%03d", i), service: headless, label: "daily"}.yaml())
		}
		before := int(srv.Metric(t, "stateguard_admission_decisions_total", "operation=CREATE"))
		_, stderr, err := c.Kubectl(t, b.String(), "apply", "-n", ns, "-f", "-")
		require.NoError(t, err, stderr)
		n := c.MustKubectl(t, "", "get", "sts", "-n", ns, "-o", "name")
		assert.Len(t, strings.Fields(n), 100)
		// One decision per policy per reviewed request, and nothing else: the
		// metrics add up to exactly the requests made.
		assert.Equal(t, 3*100, int(srv.Metric(t, "stateguard_admission_decisions_total", "operation=CREATE"))-before)
	})

	t.Run("graceful shutdown: unready first, still serving while endpoints drain", func(t *testing.T) {
		ns := namespace(t, "shutdown")
		srv.Stop(t)
		srv = serve.Start(t, c, "--shutdown-delay", "30s")
		require.NoError(t, srv.Signal(syscall.SIGTERM))
		c.Eventually(t, 10*time.Second, func() error {
			resp, err := http.Get("http://" + srv.ProbeAddr + "/readyz")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return fmt.Errorf("still ready after SIGTERM")
			}
			return nil
		})
		// Unready, but the API server's reviews are still answered.
		_, stderr, err := c.Kubectl(t, app{name: "db", service: headless, label: "daily"}.yaml(), "apply", "-n", ns, "-f", "-")
		require.NoError(t, err, stderr)
		_, stderr, err = c.Kubectl(t, app{name: "nolabel", service: headless}.yaml(), "apply", "-n", ns, "-f", "-")
		require.Error(t, err, "still enforcing while draining")
		assert.Contains(t, stderr, "[snapshot-schedule]")
		require.NoError(t, srv.Signal(syscall.SIGTERM)) // a second signal exits at once
		srv.Stop(t)
		srv = serve.Start(t, c)
	})

	t.Run("failurePolicy Fail: webhook down refuses creates, back up admits them", func(t *testing.T) {
		ns := namespace(t, "outage")
		srv.Stop(t)
		manifest := app{name: "db", service: headless, label: "daily"}.yaml()
		_, stderr, err := c.Kubectl(t, manifest, "apply", "-n", ns, "-f", "-")
		require.Error(t, err)
		assert.Contains(t, stderr, "failed calling webhook")
		srv = serve.Start(t, c)
		c.MustKubectl(t, manifest, "apply", "-n", ns, "-f", "-")
	})
}
