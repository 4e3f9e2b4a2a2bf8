package kubeproxy

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestMinSync(t *testing.T) {
	ctx := context.Background()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system"},
		Data: map[string]string{"config.conf": "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: iptables\niptables:\n  minSyncPeriod: 3s\n"}}
	d, src := MinSync(ctx, fake.NewClientset(cm))
	require.NotNil(t, d)
	assert.Equal(t, 3*time.Second, d.Duration)
	assert.Equal(t, "ConfigMap kube-system/kube-proxy, config.conf", src)

	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy-x", Namespace: "kube-system", Labels: map[string]string{"k8s-app": "kube-proxy"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "kube-proxy", Command: []string{"kube-proxy", "--iptables-min-sync-period", "2s"}}}}}
	d, src = MinSync(ctx, fake.NewClientset(pod))
	require.NotNil(t, d)
	assert.Equal(t, 2*time.Second, d.Duration)
	assert.Equal(t, "flag of pod kube-system/kube-proxy-x", src)

	d, src = MinSync(ctx, fake.NewClientset())
	assert.Nil(t, d)
	assert.Contains(t, src, "no kube-system/kube-proxy ConfigMap")
}
