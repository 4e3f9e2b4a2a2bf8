package chart_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	kit "github.com/go-service/go-service/render"
	"github.com/go-service/go-service/rules"
	"github.com/go-service/go-service/test/render"
)

// valueCase renders the chart with some values and checks what they changed.
type valueCase struct {
	name   string
	kube   string // default render.DefaultKubeVersion
	values m
	check  func(t *testing.T, r *render.Result)
}

func runValueCases(t *testing.T, cases []valueCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := mustRender(t, render.Options{KubeVersion: tc.kube, Values: tc.values})
			tc.check(t, r)
		})
	}
}

func deployment(t *testing.T, r *render.Result) *appsv1.Deployment {
	t.Helper()
	return render.One[*appsv1.Deployment](t, r)
}

func container(t *testing.T, r *render.Result) corev1.Container {
	t.Helper()
	d := deployment(t, r)
	require.Len(t, d.Spec.Template.Spec.Containers, 1)
	return d.Spec.Template.Spec.Containers[0]
}

func TestRolloutValues(t *testing.T) {
	t.Parallel()
	runValueCases(t, []valueCase{
		{name: "replicas", values: m{"replicaCount": 5}, check: func(t *testing.T, r *render.Result) {
			assert.EqualValues(t, 5, *deployment(t, r).Spec.Replicas)
		}},
		{name: "zero replicas rendered and no PDB", values: m{"replicaCount": 0}, check: func(t *testing.T, r *render.Result) {
			require.NotNil(t, deployment(t, r).Spec.Replicas)
			assert.EqualValues(t, 0, *deployment(t, r).Spec.Replicas)
			assert.False(t, render.Has[*policyv1.PodDisruptionBudget](r))
		}},
		{name: "integer surge", values: m{"strategy": m{"rollingUpdate": m{"maxSurge": 2, "maxUnavailable": 0}}}, check: func(t *testing.T, r *render.Result) {
			ru := deployment(t, r).Spec.Strategy.RollingUpdate
			assert.Equal(t, intstr.FromInt32(2), *ru.MaxSurge)
			assert.Equal(t, intstr.FromInt32(0), *ru.MaxUnavailable)
		}},
		{name: "percent unavailable", values: m{"replicaCount": 4, "strategy": m{"rollingUpdate": m{"maxSurge": 0, "maxUnavailable": "25%"}}}, check: func(t *testing.T, r *render.Result) {
			ru := deployment(t, r).Spec.Strategy.RollingUpdate
			assert.Equal(t, intstr.FromInt32(0), *ru.MaxSurge, "an explicit 0 is rendered")
			assert.Equal(t, intstr.FromString("25%"), *ru.MaxUnavailable)
		}},
		{name: "recreate", values: m{"strategy": m{"type": "Recreate"}}, check: func(t *testing.T, r *render.Result) {
			s := deployment(t, r).Spec.Strategy
			assert.Equal(t, appsv1.RecreateDeploymentStrategyType, s.Type)
			assert.Nil(t, s.RollingUpdate)
			assert.Contains(t, r.Notes, "strategy.type is Recreate")
		}},
		{name: "explicit zeros", values: m{"minReadySeconds": 0, "revisionHistoryLimit": 0, "progressDeadlineSeconds": 60}, check: func(t *testing.T, r *render.Result) {
			s := deployment(t, r).Spec
			assert.EqualValues(t, 0, s.MinReadySeconds)
			require.NotNil(t, s.RevisionHistoryLimit, "revisionHistoryLimit 0 must be rendered, not dropped")
			assert.EqualValues(t, 0, *s.RevisionHistoryLimit)
			assert.EqualValues(t, 60, *s.ProgressDeadlineSeconds)
			assert.Contains(t, r.Manifest, "minReadySeconds: 0\n")
		}},
	})
}

func TestProbeValues(t *testing.T) {
	t.Parallel()
	runValueCases(t, []valueCase{
		{name: "tuned", values: m{"probes": m{"readiness": m{"path": "/ready", "periodSeconds": 1, "failureThreshold": 1, "initialDelaySeconds": 0, "timeoutSeconds": 3, "successThreshold": 2}}}, check: func(t *testing.T, r *render.Result) {
			p := container(t, r).ReadinessProbe
			assert.Equal(t, "/ready", p.HTTPGet.Path)
			assert.EqualValues(t, 1, p.PeriodSeconds)
			assert.EqualValues(t, 1, p.FailureThreshold)
			assert.EqualValues(t, 3, p.TimeoutSeconds)
			assert.EqualValues(t, 2, p.SuccessThreshold)
			assert.Equal(t, "/ready", envVar(t, container(t, r), "GO_SERVICE_READINESS_PATH").Value)
		}},
		{name: "numbered port", values: m{"probes": m{"liveness": m{"port": 8080}}}, check: func(t *testing.T, r *render.Result) {
			assert.Equal(t, intstr.FromInt32(8080), container(t, r).LivenessProbe.HTTPGet.Port)
		}},
		{name: "disabled", values: m{"probes": m{"startup": m{"enabled": false}, "liveness": m{"enabled": false}, "readiness": m{"enabled": false}}}, check: func(t *testing.T, r *render.Result) {
			c := container(t, r)
			assert.Nil(t, c.StartupProbe)
			assert.Nil(t, c.LivenessProbe)
			assert.Nil(t, c.ReadinessProbe)
			assert.False(t, hasEnv(c, "GO_SERVICE_READINESS_PATH"))
			assert.Contains(t, r.Notes, "probes.readiness.enabled is false")
		}},
		{name: "custom grpc", values: m{"containerPorts": m{"http": 8080, "grpc": 9000}, "probes": m{"readiness": m{"custom": m{"grpc": m{"port": 9000, "service": "orders"}, "periodSeconds": 3}}}}, check: func(t *testing.T, r *render.Result) {
			p := container(t, r).ReadinessProbe
			require.NotNil(t, p.GRPC)
			assert.EqualValues(t, 9000, p.GRPC.Port)
			assert.Equal(t, "orders", *p.GRPC.Service)
			assert.Nil(t, p.HTTPGet)
			assert.EqualValues(t, 3, p.PeriodSeconds)
			assert.False(t, hasEnv(container(t, r), "GO_SERVICE_READINESS_PATH"), "a custom probe has no path to pass on")
		}},
		{name: "custom tcpSocket", values: m{"probes": m{"liveness": m{"custom": m{"tcpSocket": m{"port": "http"}, "periodSeconds": 20}}}}, check: func(t *testing.T, r *render.Result) {
			p := container(t, r).LivenessProbe
			require.NotNil(t, p.TCPSocket)
			assert.Equal(t, intstr.FromString("http"), p.TCPSocket.Port)
		}},
		{name: "custom exec", values: m{"probes": m{"startup": m{"custom": m{"exec": m{"command": []string{"/app", "check"}}, "failureThreshold": 10}}}}, check: func(t *testing.T, r *render.Result) {
			p := container(t, r).StartupProbe
			require.NotNil(t, p.Exec)
			assert.Equal(t, []string{"/app", "check"}, p.Exec.Command)
			assert.EqualValues(t, 10, p.FailureThreshold)
		}},
		{name: "custom httpGet", values: m{"probes": m{"readiness": m{"custom": m{"httpGet": m{"path": "/status", "port": 8080, "scheme": "HTTP"}}}}}, check: func(t *testing.T, r *render.Result) {
			p := container(t, r).ReadinessProbe
			assert.Equal(t, "/status", p.HTTPGet.Path)
			assert.Equal(t, intstr.FromInt32(8080), p.HTTPGet.Port)
		}},
		{name: "one path on two ports is allowed", values: m{"containerPorts": m{"http": 8080, "admin": 9090}, "probes": m{"liveness": m{"path": "/healthz/ready", "port": "admin"}}}, check: func(t *testing.T, r *render.Result) {
			assert.Equal(t, "/healthz/ready", container(t, r).LivenessProbe.HTTPGet.Path)
		}},
		{name: "impatient liveness warned", values: m{"probes": m{"liveness": m{"periodSeconds": 1, "failureThreshold": 1}}}, check: func(t *testing.T, r *render.Result) {
			assert.Contains(t, r.Notes, "The liveness probe fails faster than the readiness probe")
		}},
	})
}

func TestShutdownValues(t *testing.T) {
	t.Parallel()
	preStop := func(t *testing.T, r *render.Result) *corev1.LifecycleHandler {
		t.Helper()
		c := container(t, r)
		require.NotNil(t, c.Lifecycle)
		require.NotNil(t, c.Lifecycle.PreStop)
		return c.Lifecycle.PreStop
	}
	grace := func(t *testing.T, r *render.Result) int64 {
		return *deployment(t, r).Spec.Template.Spec.TerminationGracePeriodSeconds
	}
	env := func(t *testing.T, r *render.Result, name string) string {
		return envVar(t, container(t, r), name).Value
	}
	runValueCases(t, []valueCase{
		{name: "budget derives the grace period", values: m{"shutdown": m{"preStop": m{"delaySeconds": 12}, "drainTimeoutSeconds": 40, "bufferSeconds": 3}}, check: func(t *testing.T, r *render.Result) {
			assert.EqualValues(t, 12, preStop(t, r).Sleep.Seconds)
			assert.EqualValues(t, 55, grace(t, r))
			assert.Equal(t, "12s", env(t, r, "GO_SERVICE_PRESTOP_DELAY"))
			assert.Equal(t, "40s", env(t, r, "GO_SERVICE_DRAIN_TIMEOUT"))
			assert.Equal(t, "55s", env(t, r, "GO_SERVICE_TERMINATION_GRACE_PERIOD"))
			assert.Contains(t, r.Notes, "grace period:     55s (computed: 12 + 40 + 3)")
		}},
		{name: "zero drain rendered", values: m{"shutdown": m{"drainTimeoutSeconds": 0, "bufferSeconds": 1, "preStop": m{"delaySeconds": 5}}}, check: func(t *testing.T, r *render.Result) {
			assert.EqualValues(t, 6, grace(t, r), "5 + 0 + 1")
			assert.Equal(t, "0s", env(t, r, "GO_SERVICE_DRAIN_TIMEOUT"))
		}},
		{name: "explicit grace period", values: m{"shutdown": m{"terminationGracePeriodSeconds": 60}}, check: func(t *testing.T, r *render.Result) {
			assert.EqualValues(t, 60, grace(t, r))
			assert.Equal(t, "60s", env(t, r, "GO_SERVICE_TERMINATION_GRACE_PERIOD"))
			assert.Contains(t, r.Notes, "grace period:     60s (set explicitly)")
		}},
		{name: "sleep forced", kube: "1.30.0", values: m{"shutdown": m{"preStop": m{"mode": "sleep"}}}, check: func(t *testing.T, r *render.Result) {
			assert.EqualValues(t, 5, preStop(t, r).Sleep.Seconds)
		}},
		{name: "exec forced on a new cluster", kube: "1.34.0", values: m{"shutdown": m{"preStop": m{"mode": "exec", "sleepCommand": []string{"/busybox/sleep"}, "delaySeconds": 7}}}, check: func(t *testing.T, r *render.Result) {
			ps := preStop(t, r)
			assert.Nil(t, ps.Sleep)
			assert.Equal(t, []string{"/busybox/sleep", "7"}, ps.Exec.Command)
			assert.Equal(t, "exec", env(t, r, "GO_SERVICE_PRESTOP_MODE"))
			assert.Contains(t, r.Notes, `runs "/busybox/sleep" in the container`)
		}},
		{name: "httpGet", values: m{"shutdown": m{"preStop": m{"mode": "httpGet", "httpGet": m{"path": "/drain", "port": "http"}}}}, check: func(t *testing.T, r *render.Result) {
			ps := preStop(t, r)
			require.NotNil(t, ps.HTTPGet)
			assert.Equal(t, "/drain", ps.HTTPGet.Path)
			assert.Equal(t, intstr.FromString("http"), ps.HTTPGet.Port)
			assert.Equal(t, "/drain", env(t, r, "GO_SERVICE_PRESTOP_PATH"))
			assert.Equal(t, "0s", env(t, r, "GO_SERVICE_SHUTDOWN_DELAY"), "the hook handler waits, not the SIGTERM handler")
		}},
		{name: "none moves the delay into the app", values: m{"shutdown": m{"preStop": m{"mode": "none", "delaySeconds": 8}}}, check: func(t *testing.T, r *render.Result) {
			assert.Nil(t, container(t, r).Lifecycle)
			assert.Equal(t, "8s", env(t, r, "GO_SERVICE_SHUTDOWN_DELAY"))
			assert.EqualValues(t, 28, grace(t, r), "the in-app delay is still in the budget")
		}},
		{name: "none without delay", values: m{"shutdown": m{"preStop": m{"mode": "none", "delaySeconds": 0}}}, check: func(t *testing.T, r *render.Result) {
			assert.Nil(t, container(t, r).Lifecycle)
			assert.Equal(t, "0s", env(t, r, "GO_SERVICE_SHUTDOWN_DELAY"))
			assert.EqualValues(t, 20, grace(t, r))
			assert.Contains(t, r.Notes, "shutdown.preStop.delaySeconds is 0: there is no shutdown delay anywhere")
		}},
		{name: "contract env off", values: m{"shutdown": m{"env": false}}, check: func(t *testing.T, r *render.Result) {
			c := container(t, r)
			assert.False(t, hasEnv(c, "GO_SERVICE_PRESTOP_DELAY"))
			assert.True(t, hasEnv(c, "GOMEMLIMIT"))
		}},
	})
}

func TestDisruptionBudgetValues(t *testing.T) {
	t.Parallel()
	pdb := func(t *testing.T, r *render.Result) policyv1.PodDisruptionBudgetSpec {
		return render.One[*policyv1.PodDisruptionBudget](t, r).Spec
	}
	runValueCases(t, []valueCase{
		{name: "minAvailable integer wins", values: m{"replicaCount": 3, "podDisruptionBudget": m{"minAvailable": 2}}, check: func(t *testing.T, r *render.Result) {
			assert.Equal(t, intstr.FromInt32(2), *pdb(t, r).MinAvailable)
			assert.Nil(t, pdb(t, r).MaxUnavailable)
		}},
		{name: "minAvailable percent", values: m{"replicaCount": 4, "podDisruptionBudget": m{"minAvailable": "50%"}}, check: func(t *testing.T, r *render.Result) {
			assert.Equal(t, intstr.FromString("50%"), *pdb(t, r).MinAvailable)
		}},
		{name: "maxUnavailable percent", values: m{"replicaCount": 10, "podDisruptionBudget": m{"maxUnavailable": "20%"}}, check: func(t *testing.T, r *render.Result) {
			assert.Equal(t, intstr.FromString("20%"), *pdb(t, r).MaxUnavailable)
		}},
		{name: "minAvailable 0 rendered", values: m{"podDisruptionBudget": m{"minAvailable": 0}}, check: func(t *testing.T, r *render.Result) {
			require.NotNil(t, pdb(t, r).MinAvailable)
			assert.Equal(t, intstr.FromInt32(0), *pdb(t, r).MinAvailable)
		}},
		{name: "disabled", values: m{"podDisruptionBudget": m{"enabled": false}}, check: func(t *testing.T, r *render.Result) {
			assert.False(t, render.Has[*policyv1.PodDisruptionBudget](r))
			assert.Contains(t, r.Notes, "podDisruptionBudget.enabled is false")
		}},
		{name: "single replica has none", values: m{"replicaCount": 1}, check: func(t *testing.T, r *render.Result) {
			assert.False(t, render.Has[*policyv1.PodDisruptionBudget](r))
			assert.Contains(t, r.Notes, "Only 1 replica")
		}},
		{name: "HPA minimum counts", values: m{"replicaCount": 1, "autoscaling": m{"enabled": true, "minReplicas": 3}}, check: func(t *testing.T, r *render.Result) {
			assert.Equal(t, intstr.FromInt32(1), *pdb(t, r).MaxUnavailable)
		}},
		{name: "HPA minimum of one has none", values: m{"autoscaling": m{"enabled": true, "minReplicas": 1}}, check: func(t *testing.T, r *render.Result) {
			assert.False(t, render.Has[*policyv1.PodDisruptionBudget](r))
		}},
		{name: "IfHealthyBudget", kube: "1.31.0", values: m{"podDisruptionBudget": m{"unhealthyPodEvictionPolicy": "IfHealthyBudget"}}, check: func(t *testing.T, r *render.Result) {
			assert.Equal(t, policyv1.IfHealthyBudget, *pdb(t, r).UnhealthyPodEvictionPolicy)
		}},
		{name: "policy left to the cluster", kube: "1.37.0", values: m{"podDisruptionBudget": m{"unhealthyPodEvictionPolicy": ""}}, check: func(t *testing.T, r *render.Result) {
			assert.Nil(t, pdb(t, r).UnhealthyPodEvictionPolicy)
		}},
		{name: "a budget that lets every pod go warns", values: m{"podDisruptionBudget": m{"maxUnavailable": 2}}, check: func(t *testing.T, r *render.Result) {
			assert.Equal(t, intstr.FromInt32(2), *pdb(t, r).MaxUnavailable)
			assert.Contains(t, r.Notes, "podDisruptionBudget.maxUnavailable (2) lets evictions take all 2 pods (replicaCount) at once")
		}},
		{name: "a percentage that rounds up to every pod warns", values: m{"replicaCount": 3, "podDisruptionBudget": m{"maxUnavailable": "67%"}}, check: func(t *testing.T, r *render.Result) {
			assert.Contains(t, r.Notes, "podDisruptionBudget.maxUnavailable (67%) lets evictions take all 3 pods")
		}},
		{name: "minAvailable 0 warns, at the HPA minimum", values: m{"autoscaling": m{"enabled": true, "minReplicas": 3}, "podDisruptionBudget": m{"minAvailable": 0}}, check: func(t *testing.T, r *render.Result) {
			assert.Contains(t, r.Notes, "podDisruptionBudget.minAvailable (0) lets evictions take all 3 pods (autoscaling.minReplicas) at once")
		}},
		{name: "half of two pods does not warn", values: m{"podDisruptionBudget": m{"maxUnavailable": "50%"}}, check: func(t *testing.T, r *render.Result) {
			assert.NotContains(t, r.Notes, "lets evictions take all")
		}},
		{name: "blocking budget on purpose", values: m{"replicaCount": 3, "podDisruptionBudget": m{"minAvailable": 3, "allowNoDisruptions": true}}, check: func(t *testing.T, r *render.Result) {
			assert.Equal(t, intstr.FromInt32(3), *pdb(t, r).MinAvailable)
		}},
	})
}

func TestAutoscalingValues(t *testing.T) {
	t.Parallel()
	runValueCases(t, []valueCase{
		{name: "HPA owns the scale", values: m{"replicaCount": 4, "autoscaling": m{"enabled": true, "minReplicas": 3, "maxReplicas": 9, "targetMemoryUtilizationPercentage": 75}}, check: func(t *testing.T, r *render.Result) {
			// Without a cluster to read (helm template, a first install), replicas are left to the HPA and
			// the Deployment says so (TestReplicasFromLive has the decision for a running release, the live
			// suite's TestScaleKeptByEveryDeployer and TestAutoscalingOnKeepsScale show it on a cluster).
			assert.Nil(t, deployment(t, r).Spec.Replicas, "no deployer of this manifest touches the HPA's scale")
			assert.Equal(t, "autoscaler", deployment(t, r).Annotations[rules.ReplicasAnnotation])
			h := render.One[*autoscalingv2.HorizontalPodAutoscaler](t, r)
			assert.EqualValues(t, 3, *h.Spec.MinReplicas)
			assert.EqualValues(t, 9, h.Spec.MaxReplicas)
			assert.Equal(t, autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "test-go-service"}, h.Spec.ScaleTargetRef)
			require.Len(t, h.Spec.Metrics, 2)
			assert.Equal(t, corev1.ResourceCPU, h.Spec.Metrics[0].Resource.Name)
			assert.EqualValues(t, 70, *h.Spec.Metrics[0].Resource.Target.AverageUtilization)
			assert.Equal(t, corev1.ResourceMemory, h.Spec.Metrics[1].Resource.Name)
			assert.EqualValues(t, 75, *h.Spec.Metrics[1].Resource.Target.AverageUtilization)
			require.NotNil(t, h.Spec.Behavior)
			assert.EqualValues(t, 300, *h.Spec.Behavior.ScaleDown.StabilizationWindowSeconds)
			assert.EqualValues(t, 0, *h.Spec.Behavior.ScaleUp.StabilizationWindowSeconds)
			assert.Equal(t, autoscalingv2.PodsScalingPolicy, h.Spec.Behavior.ScaleDown.Policies[0].Type)
		}},
		{name: "custom metrics only", values: m{"autoscaling": m{"enabled": true, "targetCPUUtilizationPercentage": nil, "metrics": []any{m{"type": "Pods", "pods": m{"metric": m{"name": "rps"}, "target": m{"type": "AverageValue", "averageValue": "100"}}}}}}, check: func(t *testing.T, r *render.Result) {
			h := render.One[*autoscalingv2.HorizontalPodAutoscaler](t, r)
			require.Len(t, h.Spec.Metrics, 1)
			assert.Equal(t, "rps", h.Spec.Metrics[0].Pods.Metric.Name)
		}},
		{name: "off by default", values: m{}, check: func(t *testing.T, r *render.Result) {
			assert.False(t, render.Has[*autoscalingv2.HorizontalPodAutoscaler](r))
		}},
	})
}

func TestSchedulingValues(t *testing.T) {
	t.Parallel()
	runValueCases(t, []valueCase{
		{name: "custom constraint gets the selector", values: m{"topologySpreadConstraints": []any{m{"maxSkew": 2, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule"}}}, check: func(t *testing.T, r *render.Result) {
			tsc := deployment(t, r).Spec.Template.Spec.TopologySpreadConstraints
			require.Len(t, tsc, 1)
			assert.EqualValues(t, 2, tsc[0].MaxSkew)
			assert.Equal(t, corev1.DoNotSchedule, tsc[0].WhenUnsatisfiable)
			assert.Equal(t, deployment(t, r).Spec.Selector.MatchLabels, tsc[0].LabelSelector.MatchLabels)
		}},
		{name: "spread tuned", values: m{"topologySpread": m{"topologyKeys": []string{"kubernetes.io/hostname"}, "maxSkew": 3, "whenUnsatisfiable": "DoNotSchedule"}}, check: func(t *testing.T, r *render.Result) {
			tsc := deployment(t, r).Spec.Template.Spec.TopologySpreadConstraints
			require.Len(t, tsc, 1)
			assert.EqualValues(t, 3, tsc[0].MaxSkew)
		}},
		{name: "spread off", values: m{"topologySpread": m{"enabled": false}}, check: func(t *testing.T, r *render.Result) {
			assert.Empty(t, deployment(t, r).Spec.Template.Spec.TopologySpreadConstraints)
		}},
		{name: "affinity, selectors, tolerations, priority", values: m{
			"affinity":          m{"podAntiAffinity": m{"preferredDuringSchedulingIgnoredDuringExecution": []any{m{"weight": 100, "podAffinityTerm": m{"topologyKey": "kubernetes.io/hostname"}}}}},
			"nodeSelector":      m{"pool": "web"},
			"tolerations":       []any{m{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}},
			"priorityClassName": "critical",
		}, check: func(t *testing.T, r *render.Result) {
			pod := deployment(t, r).Spec.Template.Spec
			require.NotNil(t, pod.Affinity)
			assert.EqualValues(t, 100, pod.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].Weight)
			assert.Equal(t, map[string]string{"pool": "web"}, pod.NodeSelector)
			assert.Equal(t, "dedicated", pod.Tolerations[0].Key)
			assert.Equal(t, "critical", pod.PriorityClassName)
		}},
	})
}

func TestPodValues(t *testing.T) {
	t.Parallel()
	runValueCases(t, []valueCase{
		{name: "image digest only", values: m{"image": m{"repository": "r.example/app", "digest": "sha256:" + sha64}}, check: func(t *testing.T, r *render.Result) {
			assert.Equal(t, "r.example/app@sha256:"+sha64, container(t, r).Image)
		}},
		{name: "image tag and digest", values: m{"image": m{"repository": "r.example/app", "tag": "1.2.3", "digest": "sha256:" + sha64}}, check: func(t *testing.T, r *render.Result) {
			assert.Equal(t, "r.example/app:1.2.3@sha256:"+sha64, container(t, r).Image)
		}},
		{name: "image tag and policy", values: m{"image": m{"tag": "v2", "pullPolicy": "Never"}, "imagePullSecrets": []string{"regcred"}}, check: func(t *testing.T, r *render.Result) {
			c := container(t, r)
			assert.Equal(t, "go-service:v2", c.Image)
			assert.Equal(t, corev1.PullNever, c.ImagePullPolicy)
			assert.Equal(t, []corev1.LocalObjectReference{{Name: "regcred"}}, deployment(t, r).Spec.Template.Spec.ImagePullSecrets)
			assert.Equal(t, "v2", deployment(t, r).Labels["app.kubernetes.io/version"])
		}},
		{name: "command, args, env, envFrom", values: m{"command": []string{"/app"}, "args": []string{"serve"},
			"env":     []any{m{"name": "GOGC", "value": "50"}},
			"envFrom": []any{m{"secretRef": m{"name": "creds"}}}}, check: func(t *testing.T, r *render.Result) {
			c := container(t, r)
			assert.Equal(t, []string{"/app"}, c.Command)
			assert.Equal(t, []string{"serve"}, c.Args)
			assert.Equal(t, "50", envVar(t, c, "GOGC").Value)
			assert.Equal(t, "creds", c.EnvFrom[0].SecretRef.Name)
			assert.Equal(t, "GOGC", c.Env[len(c.Env)-1].Name, "user env comes last so it can refer to the chart's")
		}},
		{name: "go runtime", values: m{"goRuntime": m{"gomemlimit": false, "gomaxprocs": true}}, check: func(t *testing.T, r *render.Result) {
			c := container(t, r)
			assert.False(t, hasEnv(c, "GOMEMLIMIT"))
			assert.Equal(t, "limits.cpu", envVar(t, c, "GOMAXPROCS").ValueFrom.ResourceFieldRef.Resource)
		}},
		{name: "resources", values: m{"resources": m{"requests": m{"cpu": "1", "memory": "1Gi"}, "limits": m{"cpu": "2", "memory": "2Gi"}}}, check: func(t *testing.T, r *render.Result) {
			c := container(t, r)
			assert.Equal(t, "2", c.Resources.Limits.Cpu().String())
			assert.Equal(t, "1Gi", c.Resources.Requests.Memory().String())
		}},
		{name: "security context overridable", values: m{"podSecurityContext": m{"runAsNonRoot": true, "runAsUser": 1000}, "tmpVolume": m{"enabled": false}}, check: func(t *testing.T, r *render.Result) {
			pod := deployment(t, r).Spec.Template.Spec
			assert.EqualValues(t, 1000, *pod.SecurityContext.RunAsUser)
			assert.EqualValues(t, 65532, *pod.SecurityContext.FSGroup, "Helm merges maps: unset keys keep their defaults")
			assert.Empty(t, pod.Volumes)
			assert.Empty(t, pod.Containers[0].VolumeMounts)
		}},
		{name: "service account not created", values: m{"serviceAccount": m{"create": false}, "automountServiceAccountToken": true}, check: func(t *testing.T, r *render.Result) {
			assert.False(t, render.Has[*corev1.ServiceAccount](r))
			pod := deployment(t, r).Spec.Template.Spec
			assert.Equal(t, "default", pod.ServiceAccountName)
			assert.True(t, *pod.AutomountServiceAccountToken)
		}},
		{name: "service account named", values: m{"serviceAccount": m{"name": "orders", "annotations": m{"iam.example.com/role": "orders"}}}, check: func(t *testing.T, r *render.Result) {
			sa := render.One[*corev1.ServiceAccount](t, r)
			assert.Equal(t, "orders", sa.Name)
			assert.Equal(t, "orders", sa.Annotations["iam.example.com/role"])
			assert.Equal(t, "orders", deployment(t, r).Spec.Template.Spec.ServiceAccountName)
		}},
		{name: "extra volumes", values: m{"extraVolumes": []any{m{"name": "certs", "secret": m{"secretName": "tls"}}}, "extraVolumeMounts": []any{m{"name": "certs", "mountPath": "/etc/tls"}}}, check: func(t *testing.T, r *render.Result) {
			pod := deployment(t, r).Spec.Template.Spec
			assert.Equal(t, "certs", pod.Volumes[1].Name)
			assert.Equal(t, "/etc/tls", pod.Containers[0].VolumeMounts[1].MountPath)
		}},
		{name: "labels and annotations", values: m{"commonLabels": m{"team": "a"}, "podLabels": m{"tier": "web"}, "podAnnotations": m{"a": "b"}, "deploymentAnnotations": m{"c": "d"}}, check: func(t *testing.T, r *render.Result) {
			d := deployment(t, r)
			assert.Equal(t, "a", d.Labels["team"])
			assert.Equal(t, "d", d.Annotations["c"])
			assert.Equal(t, "web", d.Spec.Template.Labels["tier"])
			assert.Equal(t, "a", d.Spec.Template.Labels["team"])
			assert.Equal(t, "b", d.Spec.Template.Annotations["a"])
			assert.Equal(t, "a", render.One[*corev1.Service](t, r).Labels["team"])
			assert.NotContains(t, d.Spec.Selector.MatchLabels, "team", "the selector never changes with labels")
		}},
		{name: "names", values: m{"fullnameOverride": "orders-api"}, check: func(t *testing.T, r *render.Result) {
			assert.Equal(t, "orders-api", deployment(t, r).Name)
			assert.Equal(t, "orders-api", render.One[*corev1.Service](t, r).Name)
		}},
		{name: "name override", values: m{"nameOverride": "orders"}, check: func(t *testing.T, r *render.Result) {
			assert.Equal(t, "test-orders", deployment(t, r).Name)
			assert.Equal(t, "orders", deployment(t, r).Spec.Selector.MatchLabels["app.kubernetes.io/name"])
		}},
	})
}

func TestConfigValues(t *testing.T) {
	t.Parallel()
	checksum := func(t *testing.T, data m) string {
		r := mustRender(t, render.Options{Values: m{"config": m{"data": data}}})
		return deployment(t, r).Spec.Template.Annotations["checksum/config"]
	}
	runValueCases(t, []valueCase{
		{name: "configmap as env and files", values: m{"config": m{"data": m{"LOG_LEVEL": "debug", "RETRIES": 3}, "mountPath": "/etc/app"}}, check: func(t *testing.T, r *render.Result) {
			cm := render.One[*corev1.ConfigMap](t, r)
			assert.Equal(t, map[string]string{"LOG_LEVEL": "debug", "RETRIES": "3"}, cm.Data)
			c := container(t, r)
			assert.Equal(t, cm.Name, c.EnvFrom[0].ConfigMapRef.Name)
			assert.Contains(t, c.VolumeMounts, corev1.VolumeMount{Name: "config", MountPath: "/etc/app", ReadOnly: true})
			assert.Len(t, deployment(t, r).Spec.Template.Annotations["checksum/config"], 64)
		}},
		{name: "no data no configmap", values: m{}, check: func(t *testing.T, r *render.Result) {
			assert.False(t, render.Has[*corev1.ConfigMap](r))
			assert.Empty(t, deployment(t, r).Spec.Template.Annotations)
		}},
	})
	t.Run("a change rolls the pods", func(t *testing.T) {
		t.Parallel()
		a, b := checksum(t, m{"LOG_LEVEL": "info"}), checksum(t, m{"LOG_LEVEL": "debug"})
		assert.NotEqual(t, a, b)
		assert.Equal(t, a, checksum(t, m{"LOG_LEVEL": "info"}), "same data, same checksum: no needless rollout")
		assert.Equal(t, checksum(t, m{"RETRIES": "3"}), checksum(t, m{"RETRIES": 3}), "3 and \"3\" are the same data")
	})
	t.Run("only the data counts", func(t *testing.T) {
		t.Parallel()
		data := m{"config": m{"data": m{"LOG_LEVEL": "info"}}}
		annotation := func(r *render.Result) string { return deployment(t, r).Spec.Template.Annotations["checksum/config"] }
		want := annotation(mustRender(t, render.Options{Values: data}))
		assert.Equal(t, want, annotation(mustRender(t, render.Options{Values: data, ReleaseName: "other"})), "another name and labels on the ConfigMap")
		// The same data in the next chart version: the helm.sh/chart label changes, the pods stay.
		dir, err := render.ChartDir()
		require.NoError(t, err)
		next := filepath.Join(t.TempDir(), "go-service")
		require.NoError(t, os.CopyFS(next, os.DirFS(dir)))
		chartYAML := filepath.Join(next, "Chart.yaml")
		meta, err := os.ReadFile(chartYAML)
		require.NoError(t, err)
		bumped := regexp.MustCompile(`(?m)^version: .*$`).ReplaceAll(meta, []byte("version: 99.0.0"))
		require.NoError(t, os.WriteFile(chartYAML, bumped, 0o644))
		c, err := kit.Load(next)
		require.NoError(t, err)
		r, err := c.Render(kit.Options{Values: data})
		require.NoError(t, err)
		assert.Equal(t, "go-service-99.0.0", render.One[*corev1.ConfigMap](t, r).Labels["helm.sh/chart"])
		assert.Equal(t, want, annotation(r), "a chart upgrade that changes no data restarts no pod")
	})
}

func TestExposureValues(t *testing.T) {
	t.Parallel()
	// None of these APIs is announced in the render's API versions: enabled means rendered.
	runValueCases(t, []valueCase{
		{name: "service NodePort and extra ports", values: m{"containerPorts": m{"http": 8080, "metrics": 9090}, "service": m{"type": "NodePort", "port": 8081, "nodePort": 30080, "annotations": m{"a": "b"}}}, check: func(t *testing.T, r *render.Result) {
			svc := render.One[*corev1.Service](t, r)
			assert.Equal(t, corev1.ServiceTypeNodePort, svc.Spec.Type)
			require.Len(t, svc.Spec.Ports, 2)
			assert.Equal(t, corev1.ServicePort{Name: "http", Port: 8081, TargetPort: intstr.FromString("http"), NodePort: 30080, Protocol: corev1.ProtocolTCP}, svc.Spec.Ports[0])
			assert.Equal(t, corev1.ServicePort{Name: "metrics", Port: 9090, TargetPort: intstr.FromString("metrics"), Protocol: corev1.ProtocolTCP}, svc.Spec.Ports[1])
			assert.Equal(t, "b", svc.Annotations["a"])
		}},
		{name: "ingress", values: m{"ingress": m{"enabled": true, "className": "nginx", "hosts": []any{m{"host": "a.example.com", "paths": []any{m{"path": "/api", "pathType": "Prefix"}}}}, "tls": []any{m{"secretName": "a-tls", "hosts": []string{"a.example.com"}}}}}, check: func(t *testing.T, r *render.Result) {
			ing := render.One[*networkingv1.Ingress](t, r)
			assert.Equal(t, "nginx", *ing.Spec.IngressClassName)
			rule := ing.Spec.Rules[0]
			assert.Equal(t, "a.example.com", rule.Host)
			assert.Equal(t, "/api", rule.HTTP.Paths[0].Path)
			assert.Equal(t, networkingv1.IngressServiceBackend{Name: "test-go-service", Port: networkingv1.ServiceBackendPort{Name: "http"}}, *rule.HTTP.Paths[0].Backend.Service)
			assert.Equal(t, "a-tls", ing.Spec.TLS[0].SecretName)
		}},
		{name: "httproute", values: m{"httpRoute": m{"enabled": true, "parentRefs": []any{m{"name": "gw", "namespace": "infra"}}, "hostnames": []string{"a.example.com"}}}, check: func(t *testing.T, r *render.Result) {
			hr := render.One[*gatewayv1.HTTPRoute](t, r)
			assert.Equal(t, gatewayv1.ObjectName("gw"), hr.Spec.ParentRefs[0].Name)
			assert.Equal(t, []gatewayv1.Hostname{"a.example.com"}, hr.Spec.Hostnames)
			be := hr.Spec.Rules[0].BackendRefs[0]
			assert.Equal(t, gatewayv1.ObjectName("test-go-service"), be.Name)
			assert.EqualValues(t, 80, *be.Port)
			assert.Equal(t, "/", *hr.Spec.Rules[0].Matches[0].Path.Value)
		}},
		{name: "servicemonitor", values: m{"containerPorts": m{"http": 8080, "metrics": 9090}, "serviceMonitor": m{"enabled": true, "port": "metrics", "interval": "15s", "scrapeTimeout": "5s", "labels": m{"release": "prom"}}}, check: func(t *testing.T, r *render.Result) {
			sm := render.One[*monitoringv1.ServiceMonitor](t, r)
			assert.Equal(t, "prom", sm.Labels["release"])
			ep := sm.Spec.Endpoints[0]
			assert.Equal(t, "metrics", ep.Port)
			assert.Equal(t, "/metrics", ep.Path)
			assert.Equal(t, monitoringv1.Duration("15s"), ep.Interval)
			assert.Equal(t, monitoringv1.Duration("5s"), ep.ScrapeTimeout)
			assert.Equal(t, deployment(t, r).Spec.Selector.MatchLabels, sm.Spec.Selector.MatchLabels)
		}},
		{name: "networkpolicy", values: m{"containerPorts": m{"http": 8080, "metrics": 9090}, "networkPolicy": m{"enabled": true, "from": []any{m{"podSelector": m{"matchLabels": m{"role": "frontend"}}}}}}, check: func(t *testing.T, r *render.Result) {
			np := render.One[*networkingv1.NetworkPolicy](t, r)
			assert.Equal(t, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}, np.Spec.PolicyTypes)
			require.Len(t, np.Spec.Ingress[0].Ports, 2)
			assert.Equal(t, intstr.FromString("http"), *np.Spec.Ingress[0].Ports[0].Port)
			assert.Equal(t, "frontend", np.Spec.Ingress[0].From[0].PodSelector.MatchLabels["role"])
		}},
		{name: "tests off", values: m{"tests": m{"enabled": false}}, check: func(t *testing.T, r *render.Result) {
			assert.Empty(t, r.Hooks)
			assert.NotContains(t, r.Notes, "helm test")
		}},
		{name: "test command and image", values: m{"tests": m{"image": m{"repository": "go-service", "tag": "0.1.0"}, "command": []string{"/go-service", "get", "$(TEST_URL)"}}}, check: func(t *testing.T, r *render.Result) {
			p := render.One[*corev1.Pod](t, r)
			assert.Equal(t, "go-service:0.1.0", p.Spec.Containers[0].Image)
			assert.Equal(t, []string{"/go-service", "get", "$(TEST_URL)"}, p.Spec.Containers[0].Command)
		}},
	})
}

const sha64 = "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"

// Weakened security renders with a NOTES warning for each weakening: the cases are in
// testdata/refusals.yaml (warns:). The defaults warn of nothing.
func TestSecurityWarnings(t *testing.T) {
	t.Parallel()
	runValueCases(t, []valueCase{
		{name: "defaults warn of nothing", values: m{}, check: func(t *testing.T, r *render.Result) {
			assert.NotContains(t, r.Notes, "WARNINGS")
		}},
		{name: "a privileged sidecar", values: m{"sidecars": []any{m{"name": "proxy", "image": "proxy:1", "securityContext": m{"privileged": true}}}}, check: func(t *testing.T, r *render.Result) {
			assert.Contains(t, r.Notes, "sidecars[0] (proxy) is privileged")
			assert.NotContains(t, r.Notes, "may run as root")
		}},
		{name: "a root init container", values: m{"initContainers": []any{m{"name": "setup", "image": "setup:1", "securityContext": m{"runAsUser": 0}}}}, check: func(t *testing.T, r *render.Result) {
			assert.Contains(t, r.Notes, "initContainers[0] (setup) may run as root")
		}},
		{name: "a sidecar that asks for runAsNonRoot false", values: m{"sidecars": []any{m{"name": "agent", "image": "agent:1", "securityContext": m{"runAsNonRoot": false}}}}, check: func(t *testing.T, r *render.Result) {
			assert.Contains(t, r.Notes, "sidecars[0] (agent) may run as root")
		}},
		{name: "a sidecar with the pod's defaults", values: m{"sidecars": []any{m{"name": "agent", "image": "agent:1"}}}, check: func(t *testing.T, r *render.Result) {
			assert.NotContains(t, r.Notes, "sidecars[0]")
		}},
	})
}
