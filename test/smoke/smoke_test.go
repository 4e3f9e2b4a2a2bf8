// Package smoke_test checks the cluster the live suites run on: a pod from a locally built image behind a
// Service answers through the ClusterIP and a NodePort, from the host and from another pod; the kubelet
// runs its probes; and (on the local cluster) no packet to a cluster address can leave the machine.
package smoke_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/go-service/go-service/cluster"
	"github.com/go-service/go-service/cluster/image"
	"github.com/go-service/go-service/test/kube"
)

var env *kube.Env

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	var err error
	env, err = kube.Connect(ctx, cluster.Options{Nodes: nodesWanted()})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "smoke suite: FAIL:", err)
		os.Exit(1)
	}
	code := m.Run()
	if env.Local != nil {
		// Figures, not assertions: how fast the cluster came up and what it costs.
		how := "started"
		if env.Local.Reused {
			how = "reused"
		}
		fmt.Printf("local cluster: %d node(s), %s in %s\n", len(env.Local.Nodes), how, env.Local.StartedIn.Round(100*time.Millisecond))
		if mem, _, err := cluster.Memory(cluster.Options{}); err == nil {
			fmt.Print("local cluster memory after the smoke suite (PSS):\n" + mem)
		}
	}
	os.Exit(code)
}

// nodesWanted is GO_SERVICE_NODES (default 1): the local cluster's node count.
func nodesWanted() int {
	if n, err := strconv.Atoi(os.Getenv("GO_SERVICE_NODES")); err == nil {
		return n
	}
	return 1
}

func testappImage(t *testing.T) string {
	return env.Image(t, image.Spec{Ref: "go-service-smoke/testapp:1", Package: "./test/smoke/testapp", Binary: "/testapp"})
}

// deploy runs two testapp pods (on one node when node is set) behind a NodePort Service.
func deploy(t *testing.T, ns, node string) *corev1.Service {
	t.Helper()
	ctx := context.Background()
	labels := map[string]string{"app": "testapp"}
	replicas := int32(2)
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}}, PeriodSeconds: 1}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "testapp"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name: "app", Image: testappImage(t), ImagePullPolicy: corev1.PullNever,
						Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
						ReadinessProbe: probe, LivenessProbe: probe,
					}},
				},
			},
		},
	}
	if node != "" {
		d.Spec.Template.Spec.NodeSelector = map[string]string{corev1.LabelHostname: node}
	}
	_, err := env.Client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	require.NoError(t, err)
	svc, err := env.Client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "testapp"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: labels,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	env.WaitRolledOut(t, ns, "testapp", *d.Spec.Replicas, 2*time.Minute)
	return svc
}

// getOK polls url from this machine until it answers 200 (kube-proxy needs a sync to program a new
// Service) and returns the body.
func getOK(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var body string
	err := kube.Poll(context.Background(), 30*time.Second, 200*time.Millisecond, func() (bool, error) {
		resp, err := client.Get(url)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		body = string(b)
		return err == nil && resp.StatusCode == http.StatusOK, fmt.Errorf("HTTP %d", resp.StatusCode)
	})
	require.NoError(t, err, "GET %s", url)
	return body
}

// runClientPod runs `testapp get url` in a pod (on node when set) and returns its output.
func runClientPod(t *testing.T, ns, name, node, url string) string {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "client", Image: testappImage(t), ImagePullPolicy: corev1.PullNever,
				Command: []string{"/testapp", "get", url}}},
		},
	}
	if node != "" {
		pod.Spec.NodeSelector = map[string]string{corev1.LabelHostname: node}
	}
	_, err := env.Client.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
	require.NoError(t, err)
	env.WaitPodPhase(t, ns, name, corev1.PodSucceeded, 90*time.Second)
	return env.Logs(t, ns, name)
}

func nodeAddress(t *testing.T, name string) string {
	t.Helper()
	n, err := env.Client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	t.Fatalf("node %s has no InternalIP", name)
	return ""
}

func firstNode(t *testing.T) string {
	t.Helper()
	nodes, err := env.Client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, nodes.Items)
	return nodes.Items[0].Name
}

func TestServiceFromHostAndPod(t *testing.T) {
	ns := env.Namespace(t, "smoke")
	svc := deploy(t, ns, "")
	clusterURL := fmt.Sprintf("http://%s:80/", svc.Spec.ClusterIP)
	nodePort := svc.Spec.Ports[0].NodePort
	require.NotZero(t, nodePort)
	nodeIP := nodeAddress(t, firstNode(t))

	t.Run("ClusterIP from the host", func(t *testing.T) {
		// Both endpoints answer once kube-proxy has programmed them (it syncs at most every second).
		seen := map[string]bool{}
		err := kube.Poll(context.Background(), 30*time.Second, 50*time.Millisecond, func() (bool, error) {
			seen[strings.TrimSpace(getOK(t, clusterURL))] = true
			return len(seen) == 2, nil
		})
		assert.NoError(t, err, "new connections reach both pods: %v", seen)
	})
	t.Run("NodePort from the host", func(t *testing.T) {
		assert.Contains(t, getOK(t, fmt.Sprintf("http://%s:%d/", nodeIP, nodePort)), "pod=testapp-")
		if env.Local != nil {
			assert.Contains(t, getOK(t, fmt.Sprintf("http://127.0.0.1:%d/", nodePort)), "pod=testapp-", "localhost NodePorts")
		}
	})
	t.Run("ClusterIP from a pod", func(t *testing.T) {
		assert.Contains(t, runClientPod(t, ns, "client-clusterip", "", clusterURL), "HTTP 200 pod=testapp-")
	})
	t.Run("NodePort from a pod", func(t *testing.T) {
		assert.Contains(t, runClientPod(t, ns, "client-nodeport", "", fmt.Sprintf("http://%s:%d/", nodeIP, nodePort)), "HTTP 200 pod=testapp-")
	})
	t.Run("probes run by the kubelet", func(t *testing.T) {
		var last string
		err := kube.Poll(context.Background(), 30*time.Second, 500*time.Millisecond, func() (bool, error) {
			last = getOK(t, clusterURL+"probes")
			return !strings.Contains(last, "probes=0 "), nil
		})
		require.NoError(t, err, "no probe seen: %s", last)
		assert.Contains(t, last, "ua=kube-probe/1.34", "the probes come from the kubelet")
	})
}

// The egress guard: traffic to a ClusterIP nobody owns and to a pod IP no node owns is refused on this
// machine (it would otherwise leave through the default gateway).
func TestClusterTrafficStaysLocal(t *testing.T) {
	if env.Local == nil {
		t.Skip("the egress guard belongs to the project's local cluster; KUBECONFIG names another cluster")
	}
	ctx := context.Background()
	svcs, err := env.Client.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	const unusedClusterIP, unusedPodIP = "10.96.255.254", "10.244.200.9"
	for _, s := range svcs.Items {
		require.NotEqual(t, unusedClusterIP, s.Spec.ClusterIP, "test address in use")
	}
	before, err := cluster.GuardRejected(ctx)
	require.NoError(t, err, "the guard chain is installed")
	for _, addr := range []string{unusedClusterIP, unusedPodIP} {
		start := time.Now()
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(addr, "80"), 3*time.Second)
		if conn != nil {
			conn.Close()
		}
		require.Error(t, err, "%s must not be reachable", addr)
		assert.True(t, errors.Is(err, syscall.ECONNREFUSED), "%s: refused locally, got %v", addr, err)
		assert.Less(t, time.Since(start), 2*time.Second, "%s: refused at once, not timed out somewhere", addr)
	}
	after, err := cluster.GuardRejected(ctx)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, after-before, int64(2), "the guard rejected the packets")
}

// With two nodes: pods on the second node (its own network namespace) serve through the ClusterIP from
// the host and from a pod on the first node, and through the second node's NodePort.
func TestCrossNodeService(t *testing.T) {
	nodes, err := env.Client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	if len(nodes.Items) < 2 {
		t.Skipf("the cluster has %d node; run with GO_SERVICE_NODES=2 (make test-live NODES=2)", len(nodes.Items))
	}
	first, second := nodes.Items[0].Name, nodes.Items[1].Name
	ns := env.Namespace(t, "crossnode")
	svc := deploy(t, ns, second)
	for _, p := range env.PodsOf(t, ns, map[string]string{"app": "testapp"}) {
		require.Equal(t, second, p.Spec.NodeName)
	}
	clusterURL := fmt.Sprintf("http://%s:80/", svc.Spec.ClusterIP)
	nodePortURL := fmt.Sprintf("http://%s:%d/", nodeAddress(t, second), svc.Spec.Ports[0].NodePort)

	assert.Contains(t, getOK(t, clusterURL), "pod=testapp-", "ClusterIP from the host to pods on %s", second)
	assert.Contains(t, getOK(t, nodePortURL), "pod=testapp-", "NodePort of %s from the host", second)
	assert.Contains(t, runClientPod(t, ns, "client-"+first, first, clusterURL), "HTTP 200 pod=testapp-", "from a pod on %s", first)
}
