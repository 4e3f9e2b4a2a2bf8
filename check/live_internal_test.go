package check

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

func deploymentWithPreStop(secs int64) *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "shop"}}
	d.Spec.Template.Spec.Containers = []corev1.Container{{
		Name:      "app",
		Ports:     []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
		Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: secs}}},
	}}
	return d
}

func TestClusterViolations(t *testing.T) {
	sync := &metav1.Duration{Duration: 5 * time.Second}
	for _, tc := range []struct {
		name  string
		facts ClusterFacts
		delay int64
		want  []string
	}{
		{"delay outlasts the sync", ClusterFacts{KubeProxyMinSync: sync, Services: []string{"api"}}, 6, nil},
		{"delay equal to the sync", ClusterFacts{KubeProxyMinSync: sync, Services: []string{"api"}}, 5, []string{"cluster.propagation"}},
		{"sync not readable", ClusterFacts{Services: []string{"api"}}, 1, nil},
		{"no Service", ClusterFacts{}, 10, []string{"cluster.service"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, v := range tc.facts.violations([]runtime.Object{deploymentWithPreStop(tc.delay)}) {
				got = append(got, v.Rule)
				assert.Equal(t, "Deployment/shop/api", v.Object)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestKubeProxySync(t *testing.T) {
	ctx := context.Background()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system"},
		Data: map[string]string{"config.conf": "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: iptables\niptables:\n  minSyncPeriod: 3s\n"}}
	d, src := kubeProxySync(ctx, fake.NewClientset(cm))
	require.NotNil(t, d)
	assert.Equal(t, 3*time.Second, d.Duration)
	assert.Equal(t, "ConfigMap kube-system/kube-proxy, config.conf", src)

	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy-x", Namespace: "kube-system", Labels: map[string]string{"k8s-app": "kube-proxy"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "kube-proxy", Command: []string{"kube-proxy", "--iptables-min-sync-period", "2s"}}}}}
	d, src = kubeProxySync(ctx, fake.NewClientset(pod))
	require.NotNil(t, d)
	assert.Equal(t, 2*time.Second, d.Duration)
	assert.Equal(t, "flag of pod kube-system/kube-proxy-x", src)

	d, src = kubeProxySync(ctx, fake.NewClientset())
	assert.Nil(t, d)
	assert.Contains(t, src, "no kube-system/kube-proxy ConfigMap")
}
