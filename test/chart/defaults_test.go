package chart_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/go-service/go-service/rules"
	"github.com/go-service/go-service/test/render"
)

// The chart with no values at all must meet every zero-downtime rule, on every supported version.
func TestDefaultsAreZeroDowntime(t *testing.T) {
	t.Parallel()
	for _, kube := range render.KubeVersions {
		t.Run("kube-"+kube, func(t *testing.T) {
			t.Parallel()
			r := mustRender(t, render.Options{KubeVersion: kube})
			assert.Empty(t, render.ZeroDowntimeViolations(r, kube))

			d := render.One[*appsv1.Deployment](t, r)
			require.NotNil(t, d.Spec.Replicas)
			assert.EqualValues(t, 2, *d.Spec.Replicas)
			assert.Equal(t, appsv1.RollingUpdateDeploymentStrategyType, d.Spec.Strategy.Type)
			require.NotNil(t, d.Spec.Strategy.RollingUpdate)
			assert.Equal(t, intstr.FromInt32(0), *d.Spec.Strategy.RollingUpdate.MaxUnavailable)
			assert.Equal(t, intstr.FromString("25%"), *d.Spec.Strategy.RollingUpdate.MaxSurge)
			assert.EqualValues(t, 5, d.Spec.MinReadySeconds)
			assert.EqualValues(t, 300, *d.Spec.ProgressDeadlineSeconds)
			assert.EqualValues(t, 5, *d.Spec.RevisionHistoryLimit)

			pod := d.Spec.Template.Spec
			require.Len(t, pod.Containers, 1)
			c := pod.Containers[0]
			assert.Equal(t, "go-service:0.1.0", c.Image)
			assert.Equal(t, []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}, c.Ports)

			// Probes: three, distinct paths, on the named port, liveness more tolerant than readiness.
			require.NotNil(t, c.StartupProbe)
			require.NotNil(t, c.ReadinessProbe)
			require.NotNil(t, c.LivenessProbe)
			assert.Equal(t, "/healthz/live", c.StartupProbe.HTTPGet.Path)
			assert.Equal(t, "/healthz/ready", c.ReadinessProbe.HTTPGet.Path)
			assert.Equal(t, "/healthz/live", c.LivenessProbe.HTTPGet.Path)
			for _, p := range []*corev1.Probe{c.StartupProbe, c.ReadinessProbe, c.LivenessProbe} {
				assert.Equal(t, intstr.FromString("http"), p.HTTPGet.Port)
			}
			assert.Greater(t, c.LivenessProbe.PeriodSeconds*c.LivenessProbe.FailureThreshold,
				c.ReadinessProbe.PeriodSeconds*c.ReadinessProbe.FailureThreshold)

			// Shutdown: native sleep from 1.30, exec sleep before; grace = 5 + 15 + 5.
			require.NotNil(t, c.Lifecycle)
			require.NotNil(t, c.Lifecycle.PreStop)
			if kube >= "1.30" {
				require.NotNil(t, c.Lifecycle.PreStop.Sleep, "native sleep on %s", kube)
				assert.EqualValues(t, 5, c.Lifecycle.PreStop.Sleep.Seconds)
				assert.Nil(t, c.Lifecycle.PreStop.Exec)
			} else {
				require.NotNil(t, c.Lifecycle.PreStop.Exec, "exec sleep on %s", kube)
				assert.Equal(t, []string{"sleep", "5"}, c.Lifecycle.PreStop.Exec.Command)
				assert.Nil(t, c.Lifecycle.PreStop.Sleep)
			}
			assert.EqualValues(t, 25, *pod.TerminationGracePeriodSeconds)
			mode := map[bool]string{true: "sleep", false: "exec"}[kube >= "1.30"]
			assert.Subset(t, c.Env, []corev1.EnvVar{
				{Name: "GO_SERVICE_PRESTOP_MODE", Value: mode},
				{Name: "GO_SERVICE_PRESTOP_DELAY", Value: "5s"},
				{Name: "GO_SERVICE_SHUTDOWN_DELAY", Value: "0s"},
				{Name: "GO_SERVICE_DRAIN_TIMEOUT", Value: "15s"},
				{Name: "GO_SERVICE_TERMINATION_GRACE_PERIOD", Value: "25s"},
				{Name: "GO_SERVICE_HTTP_PORT", Value: "8080"},
				{Name: "GO_SERVICE_READINESS_PATH", Value: "/healthz/ready"},
				{Name: "GO_SERVICE_LIVENESS_PATH", Value: "/healthz/live"},
			})
			assert.Equal(t, "241591910", envVar(t, c, "GOMEMLIMIT").Value, "90% of the 256Mi memory limit: headroom for what the GC does not manage")

			// Disruption budget.
			pdb := render.One[*policyv1.PodDisruptionBudget](t, r)
			assert.Equal(t, intstr.FromInt32(1), *pdb.Spec.MaxUnavailable)
			assert.Nil(t, pdb.Spec.MinAvailable)
			// From 1.27, the chart's minimum (beta and on by default there, GA in 1.31).
			require.NotNil(t, pdb.Spec.UnhealthyPodEvictionPolicy)
			assert.Equal(t, policyv1.AlwaysAllow, *pdb.Spec.UnhealthyPodEvictionPolicy)
			assert.Equal(t, d.Spec.Selector, pdb.Spec.Selector)

			// Spread over nodes and zones, never blocking scheduling, per ReplicaSet.
			require.Len(t, pod.TopologySpreadConstraints, 2)
			for i, key := range []string{"kubernetes.io/hostname", "topology.kubernetes.io/zone"} {
				tsc := pod.TopologySpreadConstraints[i]
				assert.Equal(t, key, tsc.TopologyKey)
				assert.EqualValues(t, 1, tsc.MaxSkew)
				assert.Equal(t, corev1.ScheduleAnyway, tsc.WhenUnsatisfiable)
				assert.Equal(t, []string{"pod-template-hash"}, tsc.MatchLabelKeys)
				assert.Equal(t, d.Spec.Selector.MatchLabels, tsc.LabelSelector.MatchLabels)
			}

			// Restricted Pod Security.
			assert.Equal(t, false, *pod.AutomountServiceAccountToken)
			assert.Equal(t, false, *pod.EnableServiceLinks)
			assert.Equal(t, "test-go-service", pod.ServiceAccountName)
			assert.True(t, *pod.SecurityContext.RunAsNonRoot)
			assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, pod.SecurityContext.SeccompProfile.Type)
			sc := c.SecurityContext
			require.NotNil(t, sc)
			assert.False(t, *sc.AllowPrivilegeEscalation)
			assert.True(t, *sc.ReadOnlyRootFilesystem)
			assert.True(t, *sc.RunAsNonRoot)
			assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop)
			assert.Equal(t, []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}}, c.VolumeMounts)
			require.Len(t, pod.Volumes, 1)
			require.NotNil(t, pod.Volumes[0].EmptyDir)
			assert.Equal(t, "64Mi", pod.Volumes[0].EmptyDir.SizeLimit.String())
			assert.Equal(t, "100m", c.Resources.Requests.Cpu().String())
			assert.Equal(t, "128Mi", c.Resources.Requests.Memory().String())
			assert.Equal(t, "256Mi", c.Resources.Limits.Memory().String())
			assert.True(t, c.Resources.Limits.Cpu().IsZero(), "no CPU limit by default")

			sa := render.One[*corev1.ServiceAccount](t, r)
			assert.False(t, *sa.AutomountServiceAccountToken)

			svc := render.One[*corev1.Service](t, r)
			assert.Equal(t, corev1.ServiceTypeClusterIP, svc.Spec.Type)
			assert.Equal(t, d.Spec.Selector.MatchLabels, svc.Spec.Selector)
			require.Len(t, svc.Spec.Ports, 1)
			assert.EqualValues(t, 80, svc.Spec.Ports[0].Port)
			assert.Equal(t, intstr.FromString("http"), svc.Spec.Ports[0].TargetPort)

			// Only what is enabled by default is rendered.
			assert.ElementsMatch(t, []string{"Deployment", "Pod", "PodDisruptionBudget", "Service", "ServiceAccount"}, r.Kinds())

			// The helm test hook requests the readiness path through the Service.
			require.Len(t, r.Hooks, 1)
			assert.Equal(t, "test", string(r.Hooks[0].Events[0]))
			testPod := render.One[*corev1.Pod](t, r)
			assert.Equal(t, corev1.RestartPolicyNever, testPod.Spec.RestartPolicy)
			assert.Equal(t, "http://test-go-service.default.svc:80/healthz/ready", envVar(t, testPod.Spec.Containers[0], "TEST_URL").Value)
			// The test pod is no endpoint of the Service and counts for neither the budget nor the HPA.
			selects := func(sel map[string]string) bool {
				return labels.SelectorFromSet(sel).Matches(labels.Set(testPod.Labels))
			}
			assert.False(t, selects(svc.Spec.Selector), "the Service selects the test pod %v", testPod.Labels)
			assert.False(t, selects(render.One[*policyv1.PodDisruptionBudget](t, r).Spec.Selector.MatchLabels), "the budget selects the test pod")
			assert.False(t, selects(render.One[*appsv1.Deployment](t, r).Spec.Selector.MatchLabels), "the Deployment selects the test pod")

			// NOTES: the drain budget, no warnings.
			assert.Contains(t, r.Notes, "grace period:     25s (computed: 5 + 15 + 5)")
			assert.Contains(t, r.Notes, fmt.Sprintf("preStop:          %s (auto), 5s", mode))
			assert.Contains(t, r.Notes, "Disruption budget: maxUnavailable 1.")
			if kube >= "1.30" {
				assert.NotContains(t, r.Notes, "WARNINGS")
			} else {
				assert.Contains(t, r.Notes, `runs "sleep" in the container`)
			}
		})
	}
}

// The checker used above must be able to fail: settings in the style of `helm create` break the rules.
func TestZeroDowntimeRulesCatchNaiveSettings(t *testing.T) {
	t.Parallel()
	r := mustRender(t, render.Options{Values: map[string]any{
		"replicaCount":        1,
		"strategy":            map[string]any{"rollingUpdate": map[string]any{"maxUnavailable": "25%"}},
		"probes":              map[string]any{"startup": map[string]any{"enabled": false}, "liveness": map[string]any{"periodSeconds": 2, "failureThreshold": 2}},
		"shutdown":            map[string]any{"preStop": map[string]any{"mode": "none", "delaySeconds": 0}},
		"podDisruptionBudget": map[string]any{"enabled": false},
		"topologySpread":      map[string]any{"enabled": false},
	}})
	// The chart refuses one path for liveness and readiness; a manifest from elsewhere can still have it.
	d := render.One[*appsv1.Deployment](t, r)
	d.Spec.Template.Spec.Containers[0].LivenessProbe.HTTPGet.Path = d.Spec.Template.Spec.Containers[0].ReadinessProbe.HTTPGet.Path
	v := ruleNames(t, r, render.DefaultKubeVersion)
	for _, want := range []string{"replicas.single", "probes.startup", "probes.shared-path", "probes.liveness-tolerance", "shutdown.prestop"} {
		assert.Contains(t, v, want)
	}
	r = mustRender(t, render.Options{Values: map[string]any{"replicaCount": 4, "strategy": map[string]any{"rollingUpdate": map[string]any{"maxUnavailable": "25%"}}}})
	assert.Equal(t, []string{"rollout.max-unavailable"}, ruleNames(t, r, "1.34.0"))
	// The chart refuses sleep before 1.30; a manifest rendered for 1.30 and applied to 1.29 breaks the rule.
	r = mustRender(t, render.Options{KubeVersion: "1.30.0", Values: map[string]any{"shutdown": map[string]any{"preStop": map[string]any{"mode": "sleep"}}}})
	assert.Equal(t, []string{"shutdown.sleep-version"}, ruleNames(t, r, "1.29.0"))
	// With an HPA: the chart leaves replicas out and marks it; without the mark (as many charts render
	// it, with no live scale for the upgrade that turns autoscaling on), or below the minimum, it is broken.
	r = mustRender(t, render.Options{Values: map[string]any{"autoscaling": map[string]any{"enabled": true, "minReplicas": 3, "maxReplicas": 6}}})
	assert.Empty(t, ruleNames(t, r, render.DefaultKubeVersion))
	d = render.One[*appsv1.Deployment](t, r)
	require.Nil(t, d.Spec.Replicas)
	delete(d.Annotations, rules.ReplicasAnnotation)
	assert.Equal(t, []string{"replicas.hpa-null"}, ruleNames(t, r, render.DefaultKubeVersion))
	two := int32(2)
	d.Spec.Replicas = &two
	assert.Equal(t, []string{"replicas.below-hpa-minimum"}, ruleNames(t, r, render.DefaultKubeVersion))
}

// ruleNames checks a release with the rules package and returns the names of the broken rules.
func ruleNames(tb testing.TB, r *render.Result, kube string) []string {
	tb.Helper()
	v, err := rules.Check(r.Objects, rules.Options{KubeVersion: kube})
	require.NoError(tb, err)
	names := []string{}
	for _, x := range v {
		names = append(names, x.Rule)
	}
	return names
}
