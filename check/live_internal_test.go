package check

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
		{"delay outlasts the measured lag", ClusterFacts{Services: []string{"api"}, RecommendedDelay: &metav1.Duration{Duration: 4 * time.Second}}, 5, nil},
		{"delay as long as the recommendation", ClusterFacts{Services: []string{"api"}, RecommendedDelay: &metav1.Duration{Duration: 5 * time.Second}}, 5, nil},
		{"delay shorter than the measured lag", ClusterFacts{Services: []string{"api"}, RecommendedDelay: &metav1.Duration{Duration: 7 * time.Second}}, 5, []string{"cluster.measured-lag"}},
		{"no delay at all: shutdown.prestop's finding", ClusterFacts{Services: []string{"api"}, RecommendedDelay: &metav1.Duration{Duration: 7 * time.Second}}, 0, nil},
		{"a node's lag past the histogram", ClusterFacts{Services: []string{"api"}, Unbounded: []string{"node3"}}, 30, []string{"cluster.measured-lag"}},
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

// The lag is read from each node's kube-proxy page: the recommendation is the largest p99 plus a
// second, rounded up to whole seconds; a page that cannot be read says so and how to give it, and a node
// that programmed nothing adds nothing.
func TestMeasureLag(t *testing.T) {
	page := func(counts ...int) string {
		var b strings.Builder
		for i, le := range []string{"0.5", "1", "2", "4", "+Inf"} {
			fmt.Fprintf(&b, "kubeproxy_network_programming_duration_seconds_bucket{le=%q} %d\n", le, counts[i])
		}
		return b.String()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/node1", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, page(50, 90, 99, 100, 100)) }) // p99 ≤ 2s
	mux.HandleFunc("/node2", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, page(10, 20, 30, 100, 100)) }) // p99 ≤ 4s
	mux.HandleFunc("/idle", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, page(0, 0, 0, 0, 0)) })
	mux.HandleFunc("/inf", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, page(10, 20, 30, 90, 100)) }) // p99 past 4s
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, tc := range []struct {
		name string
		urls map[string]string
		rec  time.Duration // 0: none
		errs int
	}{
		{"two nodes", map[string]string{"node1": srv.URL + "/node1", "node2": srv.URL + "/node2"}, 5 * time.Second, 0},
		{"one node, the other unreadable", map[string]string{"node1": srv.URL + "/node1", "node2": srv.URL + "/missing"}, 3 * time.Second, 1},
		{"nothing programmed", map[string]string{"node1": srv.URL + "/idle"}, 0, 0},
		{"a node past the last bucket: no recommendation from it", map[string]string{"node1": srv.URL + "/node1", "node3": srv.URL + "/inf"}, 3 * time.Second, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f ClusterFacts
			f.measureLag(context.Background(), nil, tc.urls)
			require.Len(t, f.Propagation, len(tc.urls))
			errs := 0
			for _, l := range f.Propagation {
				if l.Error != "" {
					errs++
					assert.Contains(t, l.Error, "--proxy-metrics NODE=URL")
				}
				t.Log(l)
			}
			assert.Equal(t, tc.errs, errs)
			if strings.Contains(tc.name, "past the last bucket") {
				assert.Equal(t, []string{"node3"}, f.Unbounded)
			}
			if tc.rec == 0 {
				assert.Nil(t, f.RecommendedDelay)
				return
			}
			require.NotNil(t, f.RecommendedDelay)
			assert.Equal(t, tc.rec, f.RecommendedDelay.Duration)
		})
	}
	assert.Equal(t, "node1: 100 endpoint changes programmed since kube-proxy started, lag p50 ≤ 500ms, p99 ≤ 2s (u)",
		NodeLag{Node: "node1", Source: "u", Changes: 100, P50: &metav1.Duration{Duration: 500 * time.Millisecond}, P99: &metav1.Duration{Duration: 2 * time.Second}}.String())
}
