package check

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
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
