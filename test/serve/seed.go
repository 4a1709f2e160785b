package serve

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/stateguard/stateguard/policies"
	"github.com/stateguard/stateguard/test/cluster"
	"github.com/stateguard/stateguard/test/load/reviews"
)

// Clientset returns a cluster-admin client without client-side rate
// limiting (client-go's default of 5 requests/s would be what a test
// measures) and without printing admission warnings.
func Clientset(t testing.TB, c *cluster.Cluster) *kubernetes.Clientset {
	t.Helper()
	cfg := rest.CopyConfig(c.Config)
	cfg.QPS, cfg.Burst = -1, 0
	cfg.WarningHandler = rest.NoWarnings{}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// Seed creates what the reviews of test/load/reviews expect to find in the
// cluster: the default profile's StorageClasses, the namespace, the headless
// Services and the StatefulSet (reviews.Cluster), so that every review sent
// to the webhook is decided as reviews.All says.
func Seed(t testing.TB, cs kubernetes.Interface, namespace, name string) {
	t.Helper()
	ctx := context.Background()
	engine, err := policies.NewEngine(policies.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range engine.Config().CatalogStorageClasses() {
		if _, err := cs.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating StorageClass %s: %v", sc.Name, err)
		}
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", namespace, err)
	}
	services, statefulSets := reviews.Cluster(namespace, name)
	for _, svc := range services {
		svc = svc.DeepCopy()
		svc.ResourceVersion, svc.UID, svc.ManagedFields, svc.CreationTimestamp = "", "", nil, metav1.Time{}
		svc.Spec.ClusterIPs, svc.Spec.IPFamilies, svc.Spec.IPFamilyPolicy = nil, nil, nil
		if _, err := cs.CoreV1().Services(namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating Service %s: %v", svc.Name, err)
		}
	}
	for _, sts := range statefulSets {
		sts = sts.DeepCopy()
		sts.ResourceVersion, sts.UID, sts.ManagedFields, sts.CreationTimestamp, sts.Generation = "", "", nil, metav1.Time{}, 0
		if _, err := cs.AppsV1().StatefulSets(namespace).Create(ctx, sts, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating StatefulSet %s: %v", sts.Name, err)
		}
	}
}
