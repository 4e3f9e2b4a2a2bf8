package disrupt

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// Each node's lag is the difference between its kube-proxy's histogram at the start and at the end of
// the run; a node whose page cannot be read is reported as not measured, never as no lag.
func TestPropagationPerNode(t *testing.T) {
	pages := []string{
		`kubeproxy_network_programming_duration_seconds_bucket{ip_family="IPv4",le="0.5"} 1
kubeproxy_network_programming_duration_seconds_bucket{ip_family="IPv4",le="1"} 2
kubeproxy_network_programming_duration_seconds_bucket{ip_family="IPv4",le="2"} 2
kubeproxy_network_programming_duration_seconds_bucket{ip_family="IPv4",le="+Inf"} 2
`,
		`kubeproxy_network_programming_duration_seconds_bucket{ip_family="IPv4",le="0.5"} 3
kubeproxy_network_programming_duration_seconds_bucket{ip_family="IPv4",le="1"} 10
kubeproxy_network_programming_duration_seconds_bucket{ip_family="IPv4",le="2"} 12
kubeproxy_network_programming_duration_seconds_bucket{ip_family="IPv4",le="+Inf"} 12
`}
	var reads atomic.Int32
	node1 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(pages[min(int(reads.Add(1))-1, 1)]))
	}))
	defer node1.Close()
	node2 := httptest.NewServer(http.NotFoundHandler())
	defer node2.Close()
	urls := map[string]string{"node1": node1.URL, "node2": node2.URL}
	before, errs := readProgramming(urls)
	got := propagation(urls, before, errs)
	require.Len(t, got, 2)
	assert.Equal(t, Propagation{Node: "node1", Changes: 10, P50: time.Second, P99: 2 * time.Second, Max: 2 * time.Second}, got[0])
	assert.Equal(t, "node2", got[1].Node)
	assert.Contains(t, got[1].Error, "404", "a page that cannot be read")
	assert.True(t, strings.HasPrefix(got[1].String(), "kube-proxy node2: not measured"), got[1].String())
	assert.Equal(t, "kube-proxy node1: 10 endpoint changes programmed, lag p50 ≤ 1s, p99 ≤ 2s, max ≤ 2s", got[0].String())
}

// The preStop delay the lag is compared with is read from the Deployment's manifest, whatever its form.
func TestPreStopOf(t *testing.T) {
	dep := func(lc *corev1.Lifecycle, env ...corev1.EnvVar) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "shop"},
			Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Lifecycle: lc, Env: env}}}}}}
	}
	inApp := corev1.EnvVar{Name: "GO_SERVICE_SHUTDOWN_DELAY", Value: "5s"}
	for _, tc := range []struct {
		name  string
		dep   *appsv1.Deployment
		what  string
		delay time.Duration
		known bool
	}{
		{"sleep action", dep(&corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 5}}}), "sleep 5s", 5 * time.Second, true},
		{"exec sleep", dep(&corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sleep", "7"}}}}), "exec 7s", 7 * time.Second, true},
		{"httpGet", dep(&corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/prestop"}}}), "httpGet, its delay not in the manifest", 0, false},
		{"httpGet, the app's delay declared", dep(&corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/prestop"}}}, inApp), "httpGet, in-app 5s (GO_SERVICE_PRESTOP_DELAY, GO_SERVICE_SHUTDOWN_DELAY)", 5 * time.Second, true},
		{"httpGet, as the chart renders it", dep(&corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/prestop"}}},
			corev1.EnvVar{Name: "GO_SERVICE_PRESTOP_DELAY", Value: "5s"}, corev1.EnvVar{Name: "GO_SERVICE_SHUTDOWN_DELAY", Value: "0s"}), "httpGet, in-app 5s (GO_SERVICE_PRESTOP_DELAY, GO_SERVICE_SHUTDOWN_DELAY)", 5 * time.Second, true},
		{"none, the app's own delay (preStop mode none)", dep(nil, inApp), "in-app 5s (GO_SERVICE_SHUTDOWN_DELAY)", 5 * time.Second, true},
		{"none", dep(nil), "none", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			what, delay, known := preStopOf(fake.NewClientset(tc.dep), "shop", "api")
			assert.Equal(t, tc.what, what)
			assert.Equal(t, tc.delay, delay)
			assert.Equal(t, tc.known, known)
		})
	}
}

func TestOutlasted(t *testing.T) {
	prop := []Propagation{
		{Node: "node1", Changes: 4, P50: time.Second, P99: 3 * time.Second, Max: 3 * time.Second},
		{Node: "node2", Changes: 4, P50: time.Second, P99: 2 * time.Second, Max: 2 * time.Second},
		{Node: "node3", Error: "connection refused"},
		{Node: "node4"},
	}
	got := outlasted(prop, "sleep 2s", 2*time.Second)
	require.Len(t, got, 1, "only node1's lag passed the delay")
	assert.Contains(t, got[0], "kube-proxy on node1 took up to 3s")
	assert.Empty(t, outlasted(prop, "sleep 5s", 5*time.Second))
}
