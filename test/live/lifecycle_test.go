package live

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/gruntwork-io/terratest/modules/helm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/go-service/go-service/disrupt"
	"github.com/go-service/go-service/gate"
	"github.com/go-service/go-service/test/kube"
)

// previousChart is the chart's previous release (0.1.0), packaged from git history (see
// testdata/charts/README.md).
var previousChart = filepath.Join("testdata", "charts", "go-service-0.1.0.tgz")

// 9. Users upgrade running releases: a release of the previous chart version, preStop mode exec, is
// upgraded to this chart with mode sleep. Every pod is replaced and no request is lost.
func TestUpgradeFromPreviousChart(t *testing.T) {
	concurrent(t)
	attempts(t, testUpgradeFromPreviousChart)
}

func testUpgradeFromPreviousChart(t *testing.T) {
	ns := env.Namespace(t, "upgrade")
	r := installChart(t, ns, previousChart, map[string]string{
		"replicaCount": "3", "shutdown.preStop.mode": "exec", "shutdown.preStop.sleepCommand": "{/bin/sleep}",
	}, true)
	require.Equal(t, "go-service-0.1.0", r.deployment().Labels["helm.sh/chart"])
	require.NotNil(t, r.pods()[0].Spec.Containers[0].Lifecycle.PreStop.Exec, "the old release runs the exec hook")
	tr := traffic(t, r)
	tr.Rollout(t, "upgrade to this chart, preStop exec to sleep", 3*time.Minute, func() {
		r.upgradeTo(chartDir, map[string]string{"shutdown.preStop.mode": "sleep"})
	})
	stop(t, tr, "upgrade from chart 0.1.0 (exec to sleep)", disrupt.ZeroFailures, rolloutFloor(1, 3, 1, 5))
	assert.NotEqual(t, "go-service-0.1.0", r.deployment().Labels["helm.sh/chart"])
	for _, p := range r.pods() {
		assert.NotNil(t, p.Spec.Containers[0].Lifecycle.PreStop.Sleep, "pod %s runs the native sleep hook", p.Name)
	}
}

// 10. Turning autoscaling on for a running release of 4 replicas never takes its ready endpoints below the
// 4 it had (helm would otherwise set the dropped replicas to null, which the API server makes 1:
// helm/helm#12650), with the HPA acting on the pods' CPU from metrics-server (its default 5-minute
// scale-down window keeps the scale meanwhile). The previous chart version, which left replicas out, is
// the negative control: the same upgrade drops it.
func TestAutoscalingOnKeepsScale(t *testing.T) {
	concurrent(t)
	const minReplicas = 2
	on := map[string]string{"autoscaling.enabled": "true", "autoscaling.minReplicas": fmt.Sprint(minReplicas), "autoscaling.maxReplicas": "4"}
	t.Run("this chart, under load", repeated(func(t *testing.T) {
		ns := env.Namespace(t, "hpa-on")
		r := install(t, ns, map[string]string{"replicaCount": "4"}, true)
		tr := traffic(t, r)
		tr.ScaleHeld(t, "autoscaling on", func() { r.upgrade(on) }, func() { waitHPAActive(t, r, 4) })
		stop(t, tr, "autoscaling turned on (4 replicas)", disrupt.ZeroFailures, 0)
		assert.EqualValues(t, 4, *r.deployment().Spec.Replicas, "the scale is the one the release had")
	}))
	t.Run("negative control: chart 0.1.0 drops to one pod", func(t *testing.T) {
		ns := env.Namespace(t, "hpa-on-old")
		r := installChart(t, ns, previousChart, map[string]string{"replicaCount": "4"}, true)
		tl, err := disrupt.WatchNamespace(env.Client, ns)
		require.NoError(t, err)
		since := time.Now()
		r.upgrade(on)
		err = kube.Poll(context.Background(), 2*time.Minute, 250*time.Millisecond, func() (bool, error) {
			d := r.deployment()
			return d.Status.ReadyReplicas >= minReplicas && *d.Spec.Replicas >= minReplicas && tl.MinReady(r.fullname(), since) < minReplicas, nil
		})
		tl.Stop()
		least := tl.MinReady(r.fullname(), since)
		t.Logf("chart 0.1.0: fewest ready endpoints after autoscaling was turned on: %d", least)
		require.NoError(t, err, "the old chart's release dropped below minReplicas and the HPA restored it (fewest: %d)", least)
		require.GreaterOrEqual(t, least, 0, "the watch saw the Service's ready endpoints (-1: no count was seen)")
		assert.Less(t, least, minReplicas, "the check sees the drop")
	})
}

// 11. helm test while load runs: the test pod is never an endpoint of the Service and never counts for
// the PodDisruptionBudget (no UnmanagedPods), and the release loses nothing.
func TestHelmTestUnderLoad(t *testing.T) {
	concurrent(t)
	attempts(t, testHelmTestUnderLoad)
}

func testHelmTestUnderLoad(t *testing.T) {
	ns := env.Namespace(t, "helmtest")
	r := install(t, ns, map[string]string{"replicaCount": "2"}, true)
	tr := traffic(t, r)
	testPod := r.fullname() + "-test-connection"
	var out string
	var err error
	tr.HelmTest(t, "helm test", testPod, func() { out, err = helm.RunHelmCommandAndGetOutputE(t, r.opts, "test", r.name, "--timeout", "2m") })
	stop(t, tr, "helm test under load", disrupt.ZeroFailures, 0)
	require.NoError(t, err, out)
	assert.Contains(t, out, "Phase:          Succeeded")
	endpoints := tr.Timeline().EndpointPods()
	assert.False(t, endpoints[testPod], "the test pod was an endpoint of the Service: %v", endpoints)
	assert.Len(t, endpoints, 2, "only the release's pods were endpoints: %v", endpoints)
	events, err := env.Client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	for _, ev := range events.Items {
		assert.NotEqual(t, "UnmanagedPods", ev.Reason, "the budget saw a pod it does not manage: %s", ev.Message)
	}
	pdb, err := env.Client.PolicyV1().PodDisruptionBudgets(ns).Get(context.Background(), r.fullname(), metav1.GetOptions{})
	require.NoError(t, err)
	assert.EqualValues(t, 2, pdb.Status.ExpectedPods)
}

// 12. Each preStop mode, live: the native sleep action is the default (TestRollingUpdate asserts it), so
// here exec (a static sleep in the image), httpGet (the app's own preStop endpoint) and none (the app
// waits after SIGTERM).
func TestPreStopModes(t *testing.T) {
	concurrent(t)
	for _, tc := range []struct {
		mode   string
		values map[string]string
		hook   func(*corev1.LifecycleHandler) bool
	}{
		{"exec", map[string]string{"shutdown.preStop.sleepCommand": "{/bin/sleep}"}, func(h *corev1.LifecycleHandler) bool { return h != nil && h.Exec != nil }},
		{"httpGet", nil, func(h *corev1.LifecycleHandler) bool { return h != nil && h.HTTPGet != nil }},
		{"none", nil, func(h *corev1.LifecycleHandler) bool { return h == nil }},
	} {
		t.Run(tc.mode, repeated(func(t *testing.T) {
			ns := env.Namespace(t, "prestop-"+map[string]string{"exec": "exec", "httpGet": "http", "none": "none"}[tc.mode])
			values := map[string]string{"replicaCount": "3", "shutdown.preStop.mode": tc.mode}
			for k, v := range tc.values {
				values[k] = v
			}
			r := install(t, ns, values, true)
			c := r.pods()[0].Spec.Containers[0]
			var hook *corev1.LifecycleHandler
			if c.Lifecycle != nil {
				hook = c.Lifecycle.PreStop
			}
			require.True(t, tc.hook(hook), "mode %s renders its hook: %+v", tc.mode, hook)
			tr := traffic(t, r)
			rollouts(t, r, tr, 1, "rollout")
			stop(t, tr, "preStop mode "+tc.mode, disrupt.ZeroFailures, rolloutFloor(1, 3, 1, 5))
		}))
	}
}

// 13. A Go service that knows nothing of the chart's contract (a plain net/http server that calls
// Shutdown on SIGTERM, as most have) rolls with the chart's defaults without dropping a new connection:
// the preStop delay does the work. Its keep-alive POSTs are reported, not gated: Shutdown closes idle
// pooled connections, and a client that sends on one at that moment gets an EOF (seen in CI, 1 of 3053
// POSTs); keeping idle connections open until they go quiet is what the graceful package adds.
func TestPlainApp(t *testing.T) {
	concurrent(t)
	attempts(t, testPlainApp)
}

func testPlainApp(t *testing.T) {
	ns := env.Namespace(t, "plain")
	r := install(t, ns, map[string]string{"replicaCount": "3", "env[0].name": "GO_SERVICE_MODE", "env[0].value": "plain"}, true)
	tr := traffic(t, r)
	rollouts(t, r, tr, 2, "rollout")
	stop(t, tr, "plain net/http app (defaults)", disrupt.ZeroFailures.On("new-conn"), rolloutFloor(2, 3, 1, 5))
}

// 14. A namespace that enforces Pod Security "restricted" admits the chart's defaults (and refuses a
// pod that breaks it, so enforcement is on), and they roll without a drop.
func TestRestrictedNamespace(t *testing.T) {
	concurrent(t)
	attempts(t, testRestrictedNamespace)
}

func testRestrictedNamespace(t *testing.T) {
	ns := env.Namespace(t, "restricted")
	patch := `{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"restricted","pod-security.kubernetes.io/enforce-version":"latest"}}}`
	_, err := env.Client.CoreV1().Namespaces().Patch(context.Background(), ns, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	require.NoError(t, err)
	rogue := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "rogue"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: appImage(t)}}}}
	_, err = env.Client.CoreV1().Pods(ns).Create(context.Background(), rogue, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	require.Error(t, err, "a pod without the restricted security settings is refused")
	require.True(t, apierrors.IsForbidden(err), "refused by Pod Security admission: %v", err)
	r := install(t, ns, map[string]string{"replicaCount": "3"}, true)
	tr := traffic(t, r)
	rollouts(t, r, tr, 1, "rollout")
	stop(t, tr, "Pod Security restricted namespace", disrupt.ZeroFailures, rolloutFloor(1, 3, 1, 5))
	out, err := helm.RunHelmCommandAndGetOutputE(t, r.opts, "test", r.name, "--timeout", "2m")
	require.NoError(t, err, "the helm test pod is admitted too: %s", out)
}

// 15. The reality gate catches an upgrade that replaces nothing: a no-op upgrade under load passes every
// other gate, and must not pass this one.
func TestNoOpUpgradeIsCaught(t *testing.T) {
	concurrent(t)
	ns := env.Namespace(t, "noop")
	r := install(t, ns, map[string]string{"replicaCount": "2"}, true)
	tr := traffic(t, r)
	tr.Rollout(t, "no-op upgrade", 3*time.Minute, func() { r.upgrade(nil) })
	runs := tr.End(t, "negative control: no-op upgrade")
	cluster := disrupt.Evaluate(runs, disrupt.ZeroFailures, tr.Options().Policy())
	require.NotEmpty(t, cluster, "the reality gate failed the no-op upgrade")
	for _, err := range cluster {
		var v *gate.Violation
		require.True(t, errors.As(err, &v))
		assert.Equal(t, gate.Reality, v.Gate)
	}
	for _, run := range runs {
		assert.False(t, run.Passed, "%s: a no-op upgrade must not pass", run.Client)
		assert.Contains(t, fmt.Sprint(run.Violations), "nothing was replaced", "%s: the backends seen were all old", run.Client)
		t.Logf("%s: %d sent, %d failed; violations: %v", run.Client, run.Load.Sent, run.Load.Failed, run.Violations)
	}
}
