package live

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gruntwork-io/terratest/modules/helm"
	"github.com/gruntwork-io/terratest/modules/k8s"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/go-service/go-service/disrupt"
	"github.com/go-service/go-service/load"
	"github.com/go-service/go-service/test/kube"
	"github.com/go-service/go-service/test/render"
	"github.com/go-service/go-service/test/tools"
)

// rollouts triggers n rollouts in a row (a pod annotation change each), with the settle time between.
func rollouts(t *testing.T, r *release, tr *disrupt.Traffic, n int, what string) {
	t.Helper()
	for i := 1; i <= n; i++ {
		if i > 1 {
			tr.Settle()
		}
		tr.Rollout(t, fmt.Sprintf("%s %d", what, i), 3*time.Minute, func() {
			r.upgrade(map[string]string{"podAnnotations.rollout": fmt.Sprintf("%d-%d", time.Now().UnixNano(), i)})
		})
	}
}

// 1. Rolling updates of 3 replicas with the chart's defaults lose nothing, for every client: host and
// in-cluster, new connection per request and keep-alive POSTs.
func TestRollingUpdate(t *testing.T) {
	concurrent(t)
	attempts(t, testRollingUpdate)
}

func testRollingUpdate(t *testing.T) {
	ns := env.Namespace(t, "rollout")
	r := install(t, ns, map[string]string{"replicaCount": "3"}, true)
	hook := r.pods()[0].Spec.Containers[0].Lifecycle.PreStop
	if v, err := env.Client.Discovery().ServerVersion(); err == nil && v.Major == "1" && minor(v.Minor) >= 30 {
		require.NotNil(t, hook.Sleep, "preStop mode auto is the native sleep action on Kubernetes %s.%s", v.Major, v.Minor)
	} else {
		require.NotNil(t, hook.Exec, "preStop mode auto is exec before Kubernetes 1.30")
	}
	tr := traffic(t, r)
	rollouts(t, r, tr, 3, "rollout")
	stop(t, tr, "rolling update x3 (defaults)", disrupt.ZeroFailures, rolloutFloor(3, 3, 1, 5))
}

// 2. The negative control: the same rollouts with naive settings (no preStop delay, an app that stops
// listening at SIGTERM) must drop new connections inside the rollouts, refused, reset or cut off, or
// timed out (a connection sent to the IP of a pod that is already gone), from the host and from a pod,
// or the test could not see a drop at all.
func TestNegativeControl(t *testing.T) {
	concurrent(t)
	ns := env.Namespace(t, "naive")
	r := install(t, ns, naiveValues("naive"), true)
	tr := traffic(t, r)
	rollouts(t, r, tr, 3, "naive rollout")
	stop(t, tr, "negative control: naive rollout x3", disrupt.FailuresOf(load.KindRefused, load.KindReset, load.KindEOF, load.KindTimeout).On("new-conn"), 0)
}

// naiveValues are the negative controls' settings: 3 replicas, no preStop delay, no minReadySeconds, and
// the reference app in the given GO_SERVICE_MODE.
func naiveValues(mode string) map[string]string {
	return map[string]string{
		"replicaCount": "3", "shutdown.preStop.mode": "none", "shutdown.preStop.delaySeconds": "0",
		"env[0].name": "GO_SERVICE_MODE", "env[0].value": mode, "minReadySeconds": "0",
	}
}

// 2b. The keep-alive clients' negative control: an app that dies at SIGTERM (no handler), no preStop
// delay, and POSTs that take 250 ms, so pooled connections always carry requests when a pod goes. The
// keep-alive clients must see those requests fail (reset, EOF) well above the control gate's floor (1% of
// the requests inside the rollouts: with 100 ms POSTs a CI run saw 1.7%), or they could not see a drop.
// (The naive rollout above drops keep-alive requests only when one happens to be in flight.)
func TestKeepAliveNegativeControl(t *testing.T) {
	concurrent(t)
	ns := env.Namespace(t, "naive-keepalive")
	r := install(t, ns, naiveValues("no-signal"), true)
	tr := trafficTo(t, r.target(r.fullname()), disrupt.Options{KeepAliveQuery: "sleep=250ms"})
	rollouts(t, r, tr, 2, "rollout")
	stop(t, tr, "negative control: app killed at SIGTERM, slow POSTs", disrupt.FailuresOf(load.KindReset, load.KindEOF, load.KindRefused).On("keep-alive"), 0)
}

// 3. One upgrade that changes the image and the config (the ConfigMap's checksum annotation) rolls the
// pods once, without a drop, and the new pods run both.
func TestImageAndConfigChange(t *testing.T) {
	concurrent(t)
	attempts(t, testImageAndConfigChange)
}

func testImageAndConfigChange(t *testing.T) {
	ns := env.Namespace(t, "config")
	r := install(t, ns, map[string]string{"replicaCount": "3", "config.data.GREETING": "hello"}, true)
	before := r.deployment().Spec.Template.Annotations["checksum/config"]
	next := appImageTagged(t, "0.1.1")
	tr := traffic(t, r)
	tr.Rollout(t, "image 0.1.1 and config change", 3*time.Minute, func() {
		r.upgrade(map[string]string{"config.data.GREETING": "bonjour", "image.tag": next})
	})
	stop(t, tr, "image and config change", disrupt.ZeroFailures, rolloutFloor(1, 3, 1, 5))
	after := r.deployment().Spec.Template.Annotations["checksum/config"]
	assert.NotEqual(t, before, after, "the checksum changed")
	cm, err := env.Client.CoreV1().ConfigMaps(ns).Get(context.Background(), r.fullname(), metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "bonjour", cm.Data["GREETING"])
	for _, p := range r.pods() {
		assert.Equal(t, after, p.Annotations["checksum/config"], "pod %s runs the new config", p.Name)
		assert.Equal(t, "go-service:"+next, p.Spec.Containers[0].Image, "pod %s runs the new image", p.Name)
	}
}

// 4. Scaling down (4 to 2, by the chart and by the HPA) loses nothing.
func TestScaleDown(t *testing.T) {
	concurrent(t)
	t.Run("replicas", repeated(func(t *testing.T) {
		ns := env.Namespace(t, "scale")
		r := install(t, ns, map[string]string{"replicaCount": "4"}, true)
		tr := traffic(t, r)
		tr.Scale(t, "scale 4 to 2", 2, 2*time.Minute, func() { r.upgrade(map[string]string{"replicaCount": "2"}) })
		stop(t, tr, "scale down 4 to 2", disrupt.ZeroFailures, 0)
	}))
	t.Run("HPA", repeated(func(t *testing.T) {
		ns := env.Namespace(t, "hpa")
		r := install(t, ns, map[string]string{"autoscaling.enabled": "true", "autoscaling.minReplicas": "4", "autoscaling.maxReplicas": "4"}, false)
		waitReplicas(t, r, 4)
		tr := traffic(t, r)
		tr.Scale(t, "HPA max 4 to 2", 2, 2*time.Minute, func() {
			r.upgrade(map[string]string{"autoscaling.minReplicas": "2", "autoscaling.maxReplicas": "2"})
			waitReplicas(t, r, 2)
		})
		stop(t, tr, "HPA scale down 4 to 2", disrupt.ZeroFailures, 0)
	}))
}

// waitReplicas waits until the HPA has set the Deployment to n replicas and the rollout is complete.
func waitReplicas(t *testing.T, r *release, n int32) {
	t.Helper()
	waitScaled(t, r, nil, fmt.Sprint(n), func(got int32) bool { return got == n })
}

func evict(ns, pod string) error {
	return env.Client.PolicyV1().Evictions(ns).Evict(context.Background(), &policyv1.Eviction{
		ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: ns},
	})
}

// 5. The PodDisruptionBudget: an eviction that would break it gets HTTP 429, one it allows loses no
// request, and a crash-looping pod can still be evicted (AlwaysAllow).
func TestDisruptionBudget(t *testing.T) {
	concurrent(t)
	t.Run("evictions", repeated(func(t *testing.T) {
		ns := env.Namespace(t, "pdb")
		r := install(t, ns, map[string]string{"replicaCount": "3"}, true)
		tr := traffic(t, r)
		tr.EvictWith(t, "evict one pod, then a second", 2*time.Minute, func(pods []string) (evicted []string) {
			require.Len(t, pods, 3)
			require.NoError(t, evict(ns, pods[0]), "maxUnavailable 1 allows one eviction")
			err := evict(ns, pods[1])
			require.Error(t, err, "a second eviction before the replacement is available breaks the budget")
			assert.True(t, apierrors.IsTooManyRequests(err), "HTTP 429, got %v", err)
			t.Logf("second eviction refused: %v", err)
			return pods[:1]
		})
		stop(t, tr, "eviction within the budget", disrupt.ZeroFailures, 0)
	}))
	t.Run("crash-looping pods stay evictable", func(t *testing.T) {
		ns := env.Namespace(t, "pdb-unhealthy")
		// Pods that never become ready, and a budget that allows no disruption of healthy pods.
		r := install(t, ns, map[string]string{
			"replicaCount": "2", "env[0].name": "GO_SERVICE_MODE", "env[0].value": "crash",
			"podDisruptionBudget.minAvailable": "2", "podDisruptionBudget.allowNoDisruptions": "true",
		}, false)
		var pod string
		err := kube.Poll(context.Background(), 2*time.Minute, 250*time.Millisecond, func() (bool, error) {
			for _, p := range r.pods() {
				for _, c := range p.Status.ContainerStatuses {
					if c.RestartCount > 0 {
						pod = p.Name
						return true, nil
					}
				}
			}
			return false, nil
		})
		require.NoError(t, err, "a pod crash-loops: %s", env.Describe(ns))
		pdb, err := env.Client.PolicyV1().PodDisruptionBudgets(ns).Get(context.Background(), r.fullname(), metav1.GetOptions{})
		require.NoError(t, err)
		require.NotNil(t, pdb.Spec.UnhealthyPodEvictionPolicy)
		require.Equal(t, policyv1.AlwaysAllow, *pdb.Spec.UnhealthyPodEvictionPolicy)
		assert.NoError(t, evict(ns, pod), "AlwaysAllow: the unhealthy pod is evicted although the budget allows no disruption")
	})
}

// 6. A bad release (pods that never become ready) leaves the old pods serving, is reported failed at the
// progress deadline, and helm rollback restores the release.
func TestBadRelease(t *testing.T) {
	concurrent(t)
	attempts(t, testBadRelease)
}

func testBadRelease(t *testing.T) {
	ns := env.Namespace(t, "badrelease")
	r := install(t, ns, map[string]string{"replicaCount": "3", "progressDeadlineSeconds": "20"}, true)
	good := r.deployment().Spec.Template.Spec.Containers[0].Env
	tr := traffic(t, r)
	tr.BadRelease(t, "bad release", 3*time.Minute,
		func() { r.upgrade(map[string]string{"env[0].name": "GO_SERVICE_MODE", "env[0].value": "crash"}) },
		func() {
			assert.EqualValues(t, 3, r.deployment().Status.AvailableReplicas, "the old pods keep serving")
			helm.Rollback(t, r.opts, r.name, "1")
		})
	stop(t, tr, "bad release and rollback", disrupt.ZeroFailures, 0)
	assert.Equal(t, good, r.deployment().Spec.Template.Spec.Containers[0].Env, "rollback restored the release")
}

// 7. An app that ignores SIGTERM is killed (SIGKILL, exit 137) at the grace period the chart computed.
func TestGracePeriod(t *testing.T) {
	ns := env.Namespace(t, "grace")
	r := install(t, ns, map[string]string{
		"replicaCount": "1", "env[0].name": "GO_SERVICE_MODE", "env[0].value": "ignore-sigterm",
		"shutdown.preStop.delaySeconds": "2", "shutdown.drainTimeoutSeconds": "3", "shutdown.bufferSeconds": "1",
	}, true)
	pod := r.pods()[0]
	require.EqualValues(t, 6, *pod.Spec.TerminationGracePeriodSeconds, "2 + 3 + 1")
	w, err := env.Client.CoreV1().Pods(ns).Watch(context.Background(), metav1.ListOptions{FieldSelector: "metadata.name=" + pod.Name})
	require.NoError(t, err)
	defer w.Stop()
	require.NoError(t, env.Client.CoreV1().Pods(ns).Delete(context.Background(), pod.Name, metav1.DeleteOptions{}))
	var deadline *metav1.Time
	var term *corev1.ContainerStateTerminated
	timeout := time.After(time.Minute)
	for term == nil {
		select {
		case ev, ok := <-w.ResultChan():
			require.True(t, ok, "watch closed")
			p, isPod := ev.Object.(*corev1.Pod)
			if !isPod {
				continue
			}
			if p.DeletionTimestamp != nil {
				deadline = p.DeletionTimestamp
			}
			for _, c := range p.Status.ContainerStatuses {
				if c.Name == "app" && c.State.Terminated != nil {
					term = c.State.Terminated
				}
			}
		case <-timeout:
			t.Fatalf("the container never terminated: %s", env.Describe(ns))
		}
	}
	require.NotNil(t, deadline)
	assert.EqualValues(t, 137, term.ExitCode, "killed by SIGKILL: %s", term.Reason)
	// The deletion timestamp is the deletion request plus the grace period: the kill lands there.
	gap := term.FinishedAt.Sub(deadline.Time)
	t.Logf("SIGKILL at %s, grace period end %s (difference %s)", term.FinishedAt.Format(time.RFC3339), deadline.Format(time.RFC3339), gap)
	assert.InDelta(t, 0, gap.Seconds(), 2, "killed at the end of the computed grace period")
}

// 5b. A node drain (cordon, then evict every pod of the service on the node, retrying while the budget
// says 429, as kubectl drain does) completes with zero failed requests, the pods rescheduled.
func TestNodeDrain(t *testing.T) { attempts(t, testNodeDrain) }

func testNodeDrain(t *testing.T) {
	ctx := context.Background()
	nodes, err := env.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(nodes.Items), 2, "a drain needs a second node to move pods to (GO_SERVICE_NODES=2)")
	ns := env.Namespace(t, "drain")
	r := install(t, ns, map[string]string{"replicaCount": "3"}, true)
	tr := traffic(t, r)
	perNode := tr.PodsByNode(t)
	var node string
	for n, pods := range perNode {
		if node == "" || len(pods) > len(perNode[node]) || len(pods) == len(perNode[node]) && n < node {
			node = n
		}
	}
	t.Logf("pods per node before the drain: %v; draining %s", perNode, node)
	tr.Mark("cordon " + node)
	disrupt.Cordon(t, env.Client, node)
	refused := tr.EvictFrom(t, node, 3*time.Minute)
	stop(t, tr, "node drain", disrupt.ZeroFailures, 0)
	t.Logf("the budget refused %d eviction attempt(s) while replacements were not available", refused)
	for _, p := range r.pods() {
		assert.NotEqual(t, node, p.Spec.NodeName, "pod %s rescheduled off the drained node", p.Name)
	}
}

// kubectlOnPath makes a kubectl available to tools that run one (ct) and returns its path: on the
// local cluster, the component binary in its kubectl role, at the cluster's own version; on KUBECONFIG's
// cluster, the one on PATH.
func kubectlOnPath(t *testing.T) string {
	t.Helper()
	if env.Local == nil {
		p, err := exec.LookPath("kubectl")
		require.NoError(t, err, "kubectl on PATH is needed for the cluster named by KUBECONFIG")
		return p
	}
	bin, err := tools.BinDir()
	require.NoError(t, err)
	link := filepath.Join(bin, "kubectl")
	kubectlLink.Lock()
	defer kubectlLink.Unlock()
	if to, err := os.Readlink(link); err == nil && to == env.Local.Binary {
		return link // never replaced under a kubectl another test runs
	}
	_ = os.Remove(link)
	require.NoError(t, os.Symlink(env.Local.Binary, link))
	return link
}

// kubectlLink serializes kubectlOnPath's changes to the link (deployer subtests run in parallel).
var kubectlLink sync.Mutex

// 8b. ct install passes for every ci values file this cluster can run: chart-testing installs each in a
// namespace of its own, waits, runs helm test and deletes it. The files that need what this cluster does
// not have (a registry image, Gateway API and Prometheus Operator CRDs, a PriorityClass) are left out.
// grpc-values.yaml becomes ready only if the kubelet's native gRPC probes reach the app's gRPC health
// service (graceful/grpcx) on the port the chart resolved from its name.
func TestChartTestingInstall(t *testing.T) {
	appImage(t)
	kubectlOnPath(t)
	runnable := []string{"default-values.yaml", "autoscaling-values.yaml", "app-delay-values.yaml", "grpc-values.yaml"}
	dir := filepath.Join(t.TempDir(), "charts", "go-service")
	src, err := render.ChartDir()
	require.NoError(t, err)
	require.NoError(t, os.CopyFS(dir, os.DirFS(src)))
	all, err := filepath.Glob(filepath.Join(dir, "ci", "*-values.yaml"))
	require.NoError(t, err)
	for _, f := range all {
		if !slices.Contains(runnable, filepath.Base(f)) {
			require.NoError(t, os.Remove(f))
		}
	}
	var sets []string
	for k, v := range baseValues {
		sets = append(sets, "--set="+k+"="+v)
	}
	sort.Strings(sets)
	cmd := exec.Command(tools.Path(t, "ct"), "install", "--config", "ct.yaml", "--charts", dir,
		"--helm-extra-set-args", strings.Join(sets, " "))
	cmd.Dir = tools.MustRepoRoot(t)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "All charts installed successfully")
	for _, f := range runnable {
		assert.Contains(t, string(out), f, "ct installed with %s", f)
	}
}

// 1b. The chart as a dependency: an umbrella chart with two services (aliases api and worker, their own
// overrides), installed with terratest like any chart; a rollout of api loses nothing and leaves worker
// untouched.
func TestUmbrellaChart(t *testing.T) {
	concurrent(t)
	attempts(t, testUmbrellaChart)
}

func testUmbrellaChart(t *testing.T) {
	appImage(t)
	chart := render.BuildDependencies(t, filepath.Join("testdata", "shop"))
	ns := env.Namespace(t, "umbrella")
	opts := &helm.Options{KubectlOptions: k8s.NewKubectlOptions("", env.Kubeconfig, ns), SetValues: map[string]string{},
		ExtraArgs: map[string][]string{"install": {"--wait", "--timeout", "5m"}}}
	helm.Install(t, opts, chart, "shop")
	env.WaitRolledOut(t, ns, "shop-api", 3, 3*time.Minute)
	env.WaitRolledOut(t, ns, "shop-worker", 2, 3*time.Minute)
	worker, err := env.Client.AppsV1().Deployments(ns).Get(context.Background(), "shop-worker", metav1.GetOptions{})
	require.NoError(t, err)
	assert.EqualValues(t, 18, *worker.Spec.Template.Spec.TerminationGracePeriodSeconds, "worker's own budget: 3 + 10 + 5")
	workerGen := worker.Generation

	tr := trafficTo(t, disrupt.Target{Client: env.Client, Namespace: ns, Helm: opts, Release: "shop", Deployment: "shop-api", Service: "shop-api"}, disrupt.Options{})
	tr.Upgrade(t, "rollout api", chart, map[string]string{"api.podAnnotations.rollout": "second"})
	stop(t, tr, "umbrella chart: rollout of one alias", disrupt.ZeroFailures, rolloutFloor(1, 3, 1, 5))
	worker, err = env.Client.AppsV1().Deployments(ns).Get(context.Background(), "shop-worker", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, workerGen, worker.Generation, "the other service is untouched")
}

// minor is a server version's minor as a number ("30", or "30+" as some providers report it; 0 when it
// is not a number): compared as strings, "4" would sort after "30".
func minor(s string) int {
	n, err := strconv.Atoi(strings.TrimSuffix(s, "+"))
	if err != nil {
		return 0
	}
	return n
}
