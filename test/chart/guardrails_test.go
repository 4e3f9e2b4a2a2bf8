package chart_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-service/go-service/test/render"
)

// Every guardrail: inconsistent values fail the render, with a message that names the value and says what
// to change. Nothing is rendered when a guardrail trips.
func TestGuardrails(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		kube   string
		values m
		want   []string // substrings of the error, all required
	}{
		{
			name:   "grace period not above delay + drain",
			values: m{"shutdown": m{"terminationGracePeriodSeconds": 20}},
			want:   []string{"shutdown.terminationGracePeriodSeconds (20) must be greater than shutdown.preStop.delaySeconds + shutdown.drainTimeoutSeconds (5 + 15 = 20)", "remove it to have it computed (25)"},
		},
		{
			name:   "grace period far too short",
			values: m{"shutdown": m{"terminationGracePeriodSeconds": 8, "drainTimeoutSeconds": 30}},
			want:   []string{"shutdown.terminationGracePeriodSeconds (8) must be greater than", "(5 + 30 = 35)"},
		},
		{
			name:   "preStop sleep longer than the explicit grace period",
			values: m{"shutdown": m{"preStop": m{"delaySeconds": 30}, "terminationGracePeriodSeconds": 20}},
			want:   []string{"shutdown.preStop.delaySeconds (30) is not shorter than the grace period (20s): the preStop sleep would be killed", "Raise shutdown.terminationGracePeriodSeconds"},
		},
		{
			name:   "preStop exec as long as the computed grace period",
			kube:   "1.29.0",
			values: m{"shutdown": m{"preStop": m{"delaySeconds": 10}, "drainTimeoutSeconds": 0, "bufferSeconds": 0}},
			want:   []string{"shutdown.preStop.delaySeconds (10) is not shorter than the grace period (10s): the preStop exec", "Raise shutdown.drainTimeoutSeconds or shutdown.bufferSeconds"},
		},
		{
			name:   "preStop hook without a delay",
			values: m{"shutdown": m{"preStop": m{"delaySeconds": 0}}},
			want:   []string{"shutdown.preStop.delaySeconds is 0 with shutdown.preStop.mode auto", "or set mode to none"},
		},
		{
			name:   "surge and unavailable both zero",
			values: m{"strategy": m{"rollingUpdate": m{"maxSurge": 0, "maxUnavailable": 0}}},
			want:   []string{"strategy.rollingUpdate.maxSurge and strategy.rollingUpdate.maxUnavailable are both 0", "Set maxSurge to 1 or more"},
		},
		{
			name:   "surge and unavailable both zero percent",
			values: m{"strategy": m{"rollingUpdate": m{"maxSurge": "0%", "maxUnavailable": "0%"}}},
			want:   []string{"are both 0"},
		},
		{
			name:   "rollout may stop every replica",
			values: m{"replicaCount": 3, "strategy": m{"rollingUpdate": m{"maxUnavailable": 3}}},
			want:   []string{"strategy.rollingUpdate.maxUnavailable (3) lets a rollout stop every one of the 3 replicas"},
		},
		{
			name:   "rollout may stop 100%",
			values: m{"strategy": m{"rollingUpdate": m{"maxUnavailable": "100%"}}},
			want:   []string{"strategy.rollingUpdate.maxUnavailable (100%)"},
		},
		{
			name:   "progress deadline within minReadySeconds",
			values: m{"minReadySeconds": 30, "progressDeadlineSeconds": 30},
			want:   []string{"progressDeadlineSeconds (30) must be greater than minReadySeconds (30)"},
		},
		{
			name:   "PDB minAvailable equal to replicas",
			values: m{"replicaCount": 3, "podDisruptionBudget": m{"minAvailable": 3}},
			want:   []string{"podDisruptionBudget.minAvailable (3) needs 3 of 3 pods (replicaCount) available", "set podDisruptionBudget.allowNoDisruptions to true"},
		},
		{
			name:   "PDB minAvailable above replicas",
			values: m{"podDisruptionBudget": m{"minAvailable": 5}},
			want:   []string{"podDisruptionBudget.minAvailable (5) needs 5 of 2 pods"},
		},
		{
			name:   "PDB minAvailable 100%",
			values: m{"replicaCount": 4, "podDisruptionBudget": m{"minAvailable": "100%"}},
			want:   []string{"podDisruptionBudget.minAvailable (100%) needs 4 of 4 pods"},
		},
		{
			name:   "PDB minAvailable percent that rounds up to every pod",
			values: m{"replicaCount": 2, "podDisruptionBudget": m{"minAvailable": "60%"}},
			want:   []string{"podDisruptionBudget.minAvailable (60%) needs 2 of 2 pods"},
		},
		{
			name:   "PDB maxUnavailable 0",
			values: m{"podDisruptionBudget": m{"maxUnavailable": 0}},
			want:   []string{"podDisruptionBudget.maxUnavailable (0) allows no eviction", "Set it to 1 or more"},
		},
		{
			name:   "PDB maxUnavailable 0%",
			values: m{"podDisruptionBudget": m{"maxUnavailable": "0%"}},
			want:   []string{"podDisruptionBudget.maxUnavailable (0%) allows no eviction"},
		},
		{
			name:   "PDB checked against the HPA minimum",
			values: m{"replicaCount": 10, "podDisruptionBudget": m{"minAvailable": 3}, "autoscaling": m{"enabled": true, "minReplicas": 3, "maxReplicas": 6}},
			want:   []string{"podDisruptionBudget.minAvailable (3) needs 3 of 3 pods (autoscaling.minReplicas)"},
		},
		{
			name:   "HPA min above max",
			values: m{"autoscaling": m{"enabled": true, "minReplicas": 5, "maxReplicas": 3}},
			want:   []string{"autoscaling.minReplicas (5) is greater than autoscaling.maxReplicas (3)"},
		},
		{
			name:   "HPA without a metric",
			values: m{"autoscaling": m{"enabled": true, "targetCPUUtilizationPercentage": nil}},
			want:   []string{"autoscaling.enabled is true but no metric is set"},
		},
		{
			name:   "probe on a port name that does not exist",
			values: m{"probes": m{"readiness": m{"port": "web"}}},
			want:   []string{"probes.readiness port (web) is not one of containerPorts (http)"},
		},
		{
			name:   "probe on a port number that does not exist",
			values: m{"probes": m{"liveness": m{"port": 9999}}},
			want:   []string{"probes.liveness port (9999) is not one of containerPorts (http)"},
		},
		{
			name:   "custom probe on a missing port",
			values: m{"probes": m{"startup": m{"custom": m{"tcpSocket": m{"port": "grpc"}}}}},
			want:   []string{"probes.startup.custom port (grpc) is not one of containerPorts (http)"},
		},
		{
			name:   "custom grpc probe on a missing port",
			values: m{"containerPorts": m{"http": 8080, "metrics": 9090}, "probes": m{"readiness": m{"custom": m{"grpc": m{"port": 9000}}}}},
			want:   []string{"probes.readiness.custom port (9000) is not one of containerPorts (http, metrics)"},
		},
		{
			name:   "preStop httpGet on a missing port",
			values: m{"shutdown": m{"preStop": m{"mode": "httpGet", "httpGet": m{"path": "/x", "port": "admin"}}}},
			want:   []string{"shutdown.preStop.httpGet.port (admin) is not one of containerPorts (http)"},
		},
		{
			name:   "service on a missing port",
			values: m{"service": m{"targetPort": "web"}},
			want:   []string{"service.targetPort (web) is not one of containerPorts (http)"},
		},
		{
			name:   "servicemonitor on a missing port",
			values: m{"serviceMonitor": m{"enabled": true, "port": "metrics"}},
			want:   []string{"serviceMonitor.port (metrics) is not a port name in containerPorts (http)"},
		},
		{
			name:   "httproute without a gateway",
			values: m{"httpRoute": m{"enabled": true}},
			want:   []string{"httpRoute.parentRefs is empty"},
		},
		{
			name:   "config data used nowhere",
			values: m{"config": m{"data": m{"A": "b"}, "asEnv": false}},
			want:   []string{"config.data is set but neither config.asEnv nor config.mountPath uses it"},
		},
		{
			name:   "every problem reported at once",
			values: m{"strategy": m{"rollingUpdate": m{"maxSurge": 0}}, "podDisruptionBudget": m{"maxUnavailable": 0}, "probes": m{"liveness": m{"port": "x"}}},
			want:   []string{"are both 0", "podDisruptionBudget.maxUnavailable (0)", "probes.liveness port (x)"},
		},

		// values.schema.json: unknown keys, types, ranges and enums.
		{name: "unknown top-level key", values: m{"replicas": 3}, want: []string{"additional properties 'replicas' not allowed"}},
		{name: "misspelled nested key", values: m{"shutdown": m{"preStop": m{"delaySecond": 5}}}, want: []string{"at '/shutdown/preStop'", "'delaySecond' not allowed"}},
		{name: "misspelled probe key", values: m{"probes": m{"liveness": m{"failureTreshold": 5}}}, want: []string{"at '/probes/liveness'", "'failureTreshold' not allowed"}},
		{name: "unknown custom probe field", values: m{"probes": m{"liveness": m{"custom": m{"tcpSocket": m{"port": "http"}, "period": 5}}}}, want: []string{"'period' not allowed"}},
		{name: "custom probe with two handlers", values: m{"probes": m{"liveness": m{"custom": m{"tcpSocket": m{"port": "http"}, "exec": m{"command": []string{"true"}}}}}}, want: []string{"probes.liveness.custom has 2 handlers (tcpSocket, exec): a probe takes exactly one handler"}},
		{name: "custom probe without a handler", values: m{"probes": m{"startup": m{"custom": m{"periodSeconds": 5}}}}, want: []string{"probes.startup.custom has no handler: a probe takes exactly one handler"}},
		{name: "wrong type", values: m{"replicaCount": "three"}, want: []string{"at '/replicaCount'", "want integer"}},
		{name: "negative number", values: m{"minReadySeconds": -1}, want: []string{"at '/minReadySeconds'", "minimum"}},
		{name: "enum", values: m{"shutdown": m{"preStop": m{"mode": "wait"}}}, want: []string{"at '/shutdown/preStop/mode'"}},
		{name: "bad percentage", values: m{"strategy": m{"rollingUpdate": m{"maxSurge": "25 percent"}}}, want: []string{"at '/strategy/rollingUpdate/maxSurge'"}},
		{name: "liveness successThreshold must be 1", values: m{"probes": m{"liveness": m{"successThreshold": 2}}}, want: []string{"at '/probes/liveness/successThreshold'"}},
		{name: "liveness and readiness on one path", values: m{"probes": m{"liveness": m{"path": "/healthz/ready"}}}, want: []string{"probes.liveness.path and probes.readiness.path are both /healthz/ready on port http", "Give probes.liveness.path its own endpoint"}},
		// Security combinations the API server rejects.
		{name: "privileged without escalation", values: m{"securityContext": m{"privileged": true}}, want: []string{"securityContext.privileged is true while securityContext.allowPrivilegeEscalation is false: the API server rejects the pod"}},
		{name: "SYS_ADMIN without escalation", values: m{"securityContext": m{"capabilities": m{"add": []any{"SYS_ADMIN"}}}}, want: []string{"securityContext.capabilities.add has SYS_ADMIN while securityContext.allowPrivilegeEscalation is false"}},
		// Numbers the API server would refuse.
		{name: "maxSurge above 100%", values: m{"strategy": m{"rollingUpdate": m{"maxSurge": "150%"}}}, want: []string{"at '/strategy/rollingUpdate/maxSurge'"}},
		{name: "minAvailable above 100%", values: m{"podDisruptionBudget": m{"minAvailable": "101%"}}, want: []string{"at '/podDisruptionBudget/minAvailable'"}},
		{name: "replicas beyond int32", values: m{"replicaCount": 3000000000}, want: []string{"at '/replicaCount'", "maximum"}},
		{name: "HPA maximum beyond int32", values: m{"autoscaling": m{"enabled": true, "maxReplicas": 2147483648}}, want: []string{"at '/autoscaling/maxReplicas'"}},
		// Blocks set to null (Helm deletes the key): the schema names what is missing.
		{name: "probes set to null", values: m{"probes": nil}, want: []string{"missing property 'probes'"}},
		{name: "shutdown set to null", values: m{"shutdown": nil}, want: []string{"missing property 'shutdown'"}},
		{name: "a probe path set to null", values: m{"probes": m{"readiness": m{"path": nil}}}, want: []string{"at '/probes/readiness'", "missing property 'path'"}},
		{name: "tests set to null", values: m{"tests": nil}, want: []string{"missing property 'tests'"}},
		{name: "service port set to null", values: m{"service": m{"port": nil}}, want: []string{"at '/service'", "missing property 'port'"}},
		// Shutdown budget holes.
		{name: "no buffer in the computed grace period", values: m{"shutdown": m{"bufferSeconds": 0}}, want: []string{"shutdown.bufferSeconds is 0: the computed grace period (20s) is exactly shutdown.preStop.delaySeconds + shutdown.drainTimeoutSeconds"}},
		{name: "sleep mode before 1.30", kube: "1.29.0", values: m{"shutdown": m{"preStop": m{"mode": "sleep"}}}, want: []string{"shutdown.preStop.mode is sleep, but the native sleep action needs Kubernetes 1.30 and this cluster is v1.29.0"}},
		{name: "env overrides the contract", values: m{"env": []any{m{"name": "A", "value": "b"}, m{"name": "GO_SERVICE_DRAIN_TIMEOUT", "value": "60s"}}}, want: []string{"env[1] sets GO_SERVICE_DRAIN_TIMEOUT, which the chart sets from shutdown.*"}},
		// Names, labels, images and quantities, with the API server's and the distribution spec's rules.
		{name: "numeric image tag", values: m{"image": m{"tag": 1.10}}, want: []string{"image.tag is the number 1.1, not a string", `Quote the tag as you wrote it, e.g. tag: "1.10"`}},
		{name: "numeric test image tag", values: m{"tests": m{"image": m{"tag": 20240101}}}, want: []string{"tests.image.tag is the number 2.0240101e+07, not a string"}},
		{name: "tag with a plus", values: m{"image": m{"tag": "1.0+build"}}, want: []string{"at '/image/tag'", "does not match pattern"}},
		{name: "uppercase repository", values: m{"image": m{"repository": "Registry.example.com/Team/App"}}, want: []string{"at '/image/repository'"}},
		{name: "repository with a space", values: m{"image": m{"repository": "team/my app"}}, want: []string{"at '/image/repository'"}},
		{name: "uppercase nameOverride", values: m{"nameOverride": "API"}, want: []string{"at '/nameOverride'"}},
		{name: "fullnameOverride starting with a digit", values: m{"fullnameOverride": "9orders"}, want: []string{"at '/fullnameOverride'", "does not match pattern"}},
		{name: "commonLabels redefine the selector", values: m{"commonLabels": m{"app.kubernetes.io/name": "x"}}, want: []string{"commonLabels sets app.kubernetes.io/name, a label of the Deployment's selector", "Remove it from commonLabels"}},
		{name: "podLabels redefine the selector", values: m{"podLabels": m{"app.kubernetes.io/instance": "x"}}, want: []string{"podLabels sets app.kubernetes.io/instance, a label of the Deployment's selector"}},
		{name: "label value with a space", values: m{"podLabels": m{"tier": "web app"}}, want: []string{"at '/podLabels/tier'"}},
		{name: "label value too long", values: m{"commonLabels": m{"team": strings.Repeat("a", 64)}}, want: []string{"at '/commonLabels/team'", "maxLength"}},
		{name: "label key with a space", values: m{"commonLabels": m{"cost center": "x"}}, want: []string{`commonLabels has the key "cost center", which the API server refuses`}},
		{name: "annotation key with two slashes", values: m{"podAnnotations": m{"a/b/c": "x"}}, want: []string{`podAnnotations has the key "a/b/c", which the API server refuses`}},
		{name: "cpu request with a space", values: m{"resources": m{"requests": m{"cpu": "100 m"}}}, want: []string{"at '/resources/requests/cpu'"}},
		{name: "negative memory limit", values: m{"resources": m{"limits": m{"memory": -1}}}, want: []string{"at '/resources/limits/memory'"}},
		{name: "tmp volume size in words", values: m{"tmpVolume": m{"sizeLimit": "64 megs"}}, want: []string{"at '/tmpVolume/sizeLimit'"}},
		{name: "a NEL in a string", values: m{"args": []any{"--name=a\u0085b"}}, want: []string{"args[0] contains U+0085 (NEL), which YAML reads as a line break"}},
		{name: "a NEL in an annotation key", values: m{"podAnnotations": m{"a\u0085b": "x"}}, want: []string{"podAnnotations.a\u0085b contains U+0085 (NEL)", `podAnnotations has the key "a\u0085b", which the API server refuses`}},
		{name: "a prefix longer than 253", values: m{"service": m{"labels": m{strings.Repeat("a", 254) + "/x": "y"}}}, want: []string{"service.labels has the key"}},
		{name: "bad port name", values: m{"containerPorts": m{"HTTP_PORT": 8080}}, want: []string{"invalid propertyName 'HTTP_PORT'"}},
		{name: "port out of range", values: m{"containerPorts": m{"http": 70000}}, want: []string{"at '/containerPorts/http'"}},
		{name: "bad digest", values: m{"image": m{"digest": "latest"}}, want: []string{"at '/image/digest'"}},
		{name: "empty repository", values: m{"image": m{"repository": ""}}, want: []string{"at '/image/repository'"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := render.Render(render.Options{KubeVersion: tc.kube, Values: tc.values})
			require.Error(t, err, "values %v must be refused", tc.values)
			msg := err.Error()
			// Refused by the chart's checks or its schema, not by a template that broke on the values.
			assert.True(t, strings.Contains(msg, "go-service: invalid values") || strings.Contains(msg, "values don't meet the specifications of the schema"),
				"refused by a check or the schema: %s", msg)
			for _, w := range tc.want {
				assert.Contains(t, msg, w)
			}
			if strings.Contains(msg, "go-service: invalid values") {
				assert.Contains(t, msg, "\n  - ", "each problem on its own line")
			}
		})
	}
}

// The same guardrails trip for every Kubernetes version (the output differs, the checks must not).
func TestGuardrailsOnEveryVersion(t *testing.T) {
	t.Parallel()
	for _, kube := range render.KubeVersions {
		t.Run("kube-"+kube, func(t *testing.T) {
			t.Parallel()
			_, err := render.Render(render.Options{KubeVersion: kube, Values: m{"shutdown": m{"terminationGracePeriodSeconds": 10}}})
			require.Error(t, err)
			assert.Contains(t, err.Error(), "shutdown.terminationGracePeriodSeconds (10) must be greater than")
		})
	}
}

// The chart refuses clusters older than it supports instead of rendering for them.
func TestKubeVersionFloor(t *testing.T) {
	t.Parallel()
	_, err := render.Render(render.Options{KubeVersion: "1.26.0"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "chart requires kubeVersion: >=1.27.0-0")
}

// A release name that makes the full name an invalid Service name (it starts with a digit) is refused
// with the name it would have and the fix; fullnameOverride fixes it.
func TestReleaseNameMakesAValidServiceName(t *testing.T) {
	t.Parallel()
	_, err := render.Render(render.Options{ReleaseName: "1shop"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `the resources would be named "1shop-go-service" (from the release name "1shop" and nameOverride)`)
	assert.Contains(t, err.Error(), "Set fullnameOverride (e.g. svc-1shop-go-service)")
	res, err := render.Render(render.Options{ReleaseName: "1shop", Values: map[string]any{"fullnameOverride": "shop"}})
	require.NoError(t, err)
	assert.Contains(t, res.Manifest, `name: "shop"`)
}
