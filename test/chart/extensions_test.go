package chart_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	vpav1 "k8s.io/autoscaler/vertical-pod-autoscaler/pkg/apis/autoscaling.k8s.io/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/go-service/go-service/rules"
	"github.com/go-service/go-service/test/render"
)

// A custom preStop command runs as given and counts in the budget with its declared duration
// (delaySeconds); postStart is passed through; both on every version the chart supports.
func TestLifecycleValues(t *testing.T) {
	t.Parallel()
	var cases []valueCase
	for _, kube := range render.KubeVersions {
		cases = append(cases, valueCase{name: "preStop command and postStart on " + kube, kube: kube, values: m{
			"shutdown":  m{"preStop": m{"mode": "command", "command": []string{"/bin/drain", "--wait=8s"}, "delaySeconds": 8}},
			"postStart": m{"exec": m{"command": []string{"/bin/warm"}}},
		}, check: func(t *testing.T, r *render.Result) {
			c := container(t, r)
			require.NotNil(t, c.Lifecycle)
			require.NotNil(t, c.Lifecycle.PreStop.Exec)
			assert.Equal(t, []string{"/bin/drain", "--wait=8s"}, c.Lifecycle.PreStop.Exec.Command, "run as given, nothing appended")
			assert.Equal(t, []string{"/bin/warm"}, c.Lifecycle.PostStart.Exec.Command)
			assert.EqualValues(t, 8+15+5, *deployment(t, r).Spec.Template.Spec.TerminationGracePeriodSeconds, "the declared duration is in the budget")
			assert.Equal(t, "command", envVar(t, c, "GO_SERVICE_PRESTOP_MODE").Value)
			assert.Equal(t, "0s", envVar(t, c, "GO_SERVICE_SHUTDOWN_DELAY").Value, "the hook covers the delay")
			assert.NotContains(t, r.Notes, "WARNINGS", "no sleep binary is needed")
		}})
	}
	cases = append(cases, valueCase{name: "postStart alone keeps the preStop sleep", values: m{"postStart": m{"httpGet": m{"path": "/warm", "port": "http"}}}, check: func(t *testing.T, r *render.Result) {
		c := container(t, r)
		assert.Equal(t, "/warm", c.Lifecycle.PostStart.HTTPGet.Path)
		require.NotNil(t, c.Lifecycle.PreStop.Sleep)
		assert.EqualValues(t, 5, c.Lifecycle.PreStop.Sleep.Seconds)
	}})
	runValueCases(t, cases)
}

// GOMEMLIMIT is a share of the memory limit (90% by default), computed at render; without a limit it is
// not set and NOTES warns.
func TestGoRuntimeValues(t *testing.T) {
	t.Parallel()
	gomemlimit := func(t *testing.T, r *render.Result) string {
		t.Helper()
		e := envVar(t, container(t, r), "GOMEMLIMIT")
		require.Nil(t, e.ValueFrom, "a value, not the downward API (which cannot scale it)")
		return e.Value
	}
	runValueCases(t, []valueCase{
		{name: "defaults: 90% of 256Mi", values: m{}, check: func(t *testing.T, r *render.Result) {
			assert.Equal(t, "241591910", gomemlimit(t, r), "floor(0.9 x 268435456)")
		}},
		{name: "decimal limit and ratio", values: m{"resources": m{"limits": m{"memory": "1G"}}, "goRuntime": m{"gomemlimitRatio": 0.75}}, check: func(t *testing.T, r *render.Result) {
			assert.Equal(t, "750000000", gomemlimit(t, r))
		}},
		{name: "ratio 1", values: m{"resources": m{"limits": m{"memory": "2Gi"}}, "goRuntime": m{"gomemlimitRatio": 1}}, check: func(t *testing.T, r *render.Result) {
			assert.Equal(t, "2147483648", gomemlimit(t, r))
		}},
		{name: "no memory limit", values: m{"resources": m{"limits": nil}}, check: func(t *testing.T, r *render.Result) {
			assert.False(t, hasEnv(container(t, r), "GOMEMLIMIT"))
			assert.Contains(t, r.Notes, "goRuntime.gomemlimit is true but resources.limits.memory is not set")
		}},
		{name: "off", values: m{"goRuntime": m{"gomemlimit": false}, "resources": m{"limits": nil}}, check: func(t *testing.T, r *render.Result) {
			assert.False(t, hasEnv(container(t, r), "GOMEMLIMIT"))
			assert.NotContains(t, r.Notes, "WARNINGS")
		}},
	})
}

// The OpenTelemetry resource environment: the downward API variables before the attributes that
// expand them, the service name from the chart (or alias), extra attributes last.
func TestOtelValues(t *testing.T) {
	t.Parallel()
	runValueCases(t, []valueCase{
		{name: "off by default", values: m{}, check: func(t *testing.T, r *render.Result) {
			assert.False(t, hasEnv(container(t, r), "OTEL_SERVICE_NAME"))
		}},
		{name: "on", values: m{"otel": m{"enabled": true, "resourceAttributes": m{"deployment.environment.name": "prod"}}, "env": []any{m{"name": "A", "value": "b"}}}, check: func(t *testing.T, r *render.Result) {
			c := container(t, r)
			index := map[string]int{}
			for i, e := range c.Env {
				index[e.Name] = i
			}
			for name, path := range map[string]string{"K8S_POD_NAME": "metadata.name", "K8S_NAMESPACE_NAME": "metadata.namespace", "K8S_NODE_NAME": "spec.nodeName"} {
				e := envVar(t, c, name)
				require.NotNil(t, e.ValueFrom, name)
				assert.Equal(t, path, e.ValueFrom.FieldRef.FieldPath)
				assert.Less(t, index[name], index["OTEL_RESOURCE_ATTRIBUTES"], "%s is defined before it is expanded", name)
			}
			assert.Equal(t, "go-service", envVar(t, c, "OTEL_SERVICE_NAME").Value)
			attrs := strings.Split(envVar(t, c, "OTEL_RESOURCE_ATTRIBUTES").Value, ",")
			assert.Equal(t, []string{
				"k8s.pod.name=$(K8S_POD_NAME)", "k8s.namespace.name=$(K8S_NAMESPACE_NAME)", "k8s.node.name=$(K8S_NODE_NAME)",
				"k8s.deployment.name=test-go-service", "k8s.container.name=app", "service.version=0.1.0", "deployment.environment.name=prod",
			}, attrs)
			assert.Equal(t, len(c.Env)-1, index["A"], "the user's env comes last")
		}},
		{name: "service name", values: m{"otel": m{"enabled": true, "serviceName": "orders"}}, check: func(t *testing.T, r *render.Result) {
			assert.Equal(t, "orders", envVar(t, container(t, r), "OTEL_SERVICE_NAME").Value)
		}},
		// Values are percent-encoded as the OpenTelemetry specification says: a comma, an equals sign, a
		// space, a '%' or a '$(' in a value neither splits the list nor reaches the kubelet's expansion.
		{name: "attribute values percent-encoded", values: m{"otel": m{"enabled": true, "resourceAttributes": m{
			"team": "payments,billing", "owner": "a=b c", "note": "100% $(HOME) ü"}}}, check: func(t *testing.T, r *render.Result) {
			attrs := strings.Split(envVar(t, container(t, r), "OTEL_RESOURCE_ATTRIBUTES").Value, ",")
			assert.Equal(t, []string{"note=100%25%20%24%28HOME%29%20%C3%BC", "owner=a%3Db%20c", "team=payments%2Cbilling"}, attrs[len(attrs)-3:])
			for _, a := range attrs[len(attrs)-3:] {
				k, v, _ := strings.Cut(a, "=")
				decoded, err := url.PathUnescape(v) // as the Go SDK reads them
				require.NoError(t, err)
				want := map[string]string{"team": "payments,billing", "owner": "a=b c", "note": "100% $(HOME) ü"}[k]
				assert.Equal(t, want, decoded, k)
			}
		}},
	})
}

// Each topology key can set its own whenUnsatisfiable and maxSkew; a key that needs a label every node
// may lack, enforced, is warned about.
func TestSpreadPerKey(t *testing.T) {
	t.Parallel()
	runValueCases(t, []valueCase{
		{name: "hostname enforced, zone preferred", values: m{"topologySpread": m{"maxSkew": 2, "topologyKeys": []any{
			m{"key": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule", "maxSkew": 1},
			"topology.kubernetes.io/zone",
		}}}, check: func(t *testing.T, r *render.Result) {
			tsc := deployment(t, r).Spec.Template.Spec.TopologySpreadConstraints
			require.Len(t, tsc, 2)
			assert.Equal(t, "kubernetes.io/hostname", tsc[0].TopologyKey)
			assert.Equal(t, corev1.DoNotSchedule, tsc[0].WhenUnsatisfiable)
			assert.EqualValues(t, 1, tsc[0].MaxSkew)
			assert.Equal(t, "topology.kubernetes.io/zone", tsc[1].TopologyKey)
			assert.Equal(t, corev1.ScheduleAnyway, tsc[1].WhenUnsatisfiable, "the block's default")
			assert.EqualValues(t, 2, tsc[1].MaxSkew, "the block's default")
			assert.NotContains(t, r.Notes, "WARNINGS", "every node has a hostname")
		}},
		{name: "zone enforced", values: m{"topologySpread": m{"topologyKeys": []any{m{"key": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule"}}}}, check: func(t *testing.T, r *render.Result) {
			assert.Equal(t, corev1.DoNotSchedule, deployment(t, r).Spec.Template.Spec.TopologySpreadConstraints[0].WhenUnsatisfiable)
			assert.Contains(t, r.Notes, "topologySpread: topology.kubernetes.io/zone with DoNotSchedule")
		}},
	})
}

// global.imageRegistry replaces the registry of a repository that names one (a first component with a
// '.' or ':' or localhost) and goes before one that does not.
func TestGlobalImageRegistry(t *testing.T) {
	t.Parallel()
	var cases []valueCase
	for repo, want := range map[string]string{
		"go-service":                       "mirror.internal/go-service:0.1.0",
		"team/app":                         "mirror.internal/team/app:0.1.0",
		"ghcr.io/team/app":                 "mirror.internal/team/app:0.1.0",
		"localhost/app":                    "mirror.internal/app:0.1.0",
		"registry.example.com:5000/ns/app": "mirror.internal/ns/app:0.1.0",
	} {
		cases = append(cases, valueCase{name: repo, values: m{"image": m{"repository": repo}, "global": m{"imageRegistry": "mirror.internal"}}, check: func(t *testing.T, r *render.Result) {
			assert.Equal(t, want, container(t, r).Image)
		}})
	}
	// A mirror addressed with a path, as Harbor's proxy caches are: the path stays before the repository.
	for repo, want := range map[string]string{
		"docker.io/library/nginx": "harbor.example.com/dockerhub-proxy/library/nginx:0.1.0",
		"team/app":                "harbor.example.com/dockerhub-proxy/team/app:0.1.0",
		"ghcr.io/team/app":        "harbor.example.com/dockerhub-proxy/team/app:0.1.0",
	} {
		cases = append(cases, valueCase{name: "mirror path " + repo, values: m{"image": m{"repository": repo}, "global": m{"imageRegistry": "harbor.example.com/dockerhub-proxy"}}, check: func(t *testing.T, r *render.Result) {
			assert.Equal(t, want, container(t, r).Image)
		}})
	}
	runValueCases(t, cases)
}

// Values that may be templates (annotations, env values, config data, ingress hosts) are rendered with
// tpl; extraObjects are any manifests, rendered with tpl too.
func TestTemplatedValues(t *testing.T) {
	t.Parallel()
	values := m{
		"podAnnotations": m{"owner": "{{ .Release.Name }}-team", "plain": "100%", "own": `{{ define "mine" }}{{ .Release.Name }}-own{{ end }}{{ include "mine" . }}`},
		"env":            []any{m{"name": "SELF", "value": `http://{{ include "go-service.fullname" . }}:{{ .Values.service.port }}`}},
		"config":         m{"data": m{"URL": "https://{{ .Release.Name }}.example.com"}},
		"ingress": m{"enabled": true, "hosts": []any{m{"host": "{{ .Release.Name }}.example.com", "paths": []any{m{"path": "/", "pathType": "Prefix"}}}},
			"tls": []any{m{"hosts": []any{"{{ .Release.Name }}.example.com"}, "secretName": "tls"}}},
		"extraObjects": []any{
			m{"apiVersion": "v1", "kind": "Secret", "metadata": m{"name": "{{ .Release.Name }}-extra"}, "stringData": m{"a": "b"}},
			"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\ndata:\n  replicas: \"{{ .Values.replicaCount }}\"\n",
		},
	}
	r := mustRender(t, render.Options{ReleaseName: "shop", Values: values})
	d := deployment(t, r)
	assert.Equal(t, "shop-team", d.Spec.Template.Annotations["owner"])
	assert.Equal(t, "100%", d.Spec.Template.Annotations["plain"], "a string without a template is used as is")
	assert.Equal(t, "shop-own", d.Spec.Template.Annotations["own"], "a value may define its own templates")
	assert.Equal(t, "http://shop-go-service:80", envVar(t, container(t, r), "SELF").Value)
	assert.Equal(t, "https://shop.example.com", render.Named[*corev1.ConfigMap](t, r, "shop-go-service").Data["URL"])
	ing := render.One[*networkingv1.Ingress](t, r)
	assert.Equal(t, "shop.example.com", ing.Spec.Rules[0].Host)
	assert.Equal(t, []string{"shop.example.com"}, ing.Spec.TLS[0].Hosts)
	assert.Equal(t, "b", render.Named[*corev1.Secret](t, r, "shop-extra").StringData["a"])
	assert.Equal(t, "2", render.Named[*corev1.ConfigMap](t, r, "shop-cm").Data["replicas"])

	// The config checksum is over the rendered data: another release renders other data.
	other := mustRender(t, render.Options{ReleaseName: "cart", Values: values})
	assert.NotEqual(t, d.Spec.Template.Annotations["checksum/config"], deployment(t, other).Spec.Template.Annotations["checksum/config"])
}

// A template in a value that fails to render names the value (Helm runs it as a named template of the
// value's path) and the template's own error, wherever the value is used.
func TestTemplateErrorsNameTheValue(t *testing.T) {
	t.Parallel()
	bad := "{{ .Values.nope.x }}"
	ingress := func(host, tls string) m {
		return m{"enabled": true, "hosts": []any{m{"host": host, "paths": []any{m{"path": "/", "pathType": "Prefix"}}}},
			"tls": []any{m{"hosts": []any{tls}, "secretName": "tls"}}}
	}
	for _, tc := range []struct {
		path   string
		values m
	}{
		{"podAnnotations.owner", m{"podAnnotations": m{"owner": bad}}},
		{"deploymentAnnotations.team", m{"deploymentAnnotations": m{"team": bad}}},
		{"service.annotations.lb", m{"service": m{"annotations": m{"lb": bad}}}},
		{"serviceAccount.annotations.role", m{"serviceAccount": m{"annotations": m{"role": bad}}}},
		{"env[1].value", m{"env": []any{m{"name": "A", "value": "a"}, m{"name": "B", "value": bad}}}},
		{"config.data.URL", m{"config": m{"data": m{"URL": bad}}}},
		{"ingress.annotations.class", m{"ingress": m{"enabled": true, "annotations": m{"class": bad}}}},
		{"ingress.hosts[0].host", m{"ingress": ingress(bad, "a.example.com")}},
		{"ingress.tls[0].hosts[0]", m{"ingress": ingress("a.example.com", bad)}},
		{"extraObjects[0]", m{"extraObjects": []any{m{"apiVersion": "v1", "kind": "ConfigMap", "metadata": m{"name": bad}}}}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			_, err := render.Render(render.Options{Values: tc.values})
			require.Error(t, err)
			assert.Contains(t, err.Error(), fmt.Sprintf(`executing %q at <.Values.nope.x>: nil pointer evaluating interface {}.x`, tc.path))
		})
	}
	t.Run("a template that does not parse", func(t *testing.T) {
		t.Parallel()
		_, err := render.Render(render.Options{Values: m{"podAnnotations": m{"owner": "{{ .Release.Name "}}})
		require.Error(t, err)
		assert.Contains(t, err.Error(), `define \"podAnnotations.owner\"`, "the value's path is in the template Helm quotes")
		assert.Contains(t, err.Error(), "cannot parse template")
	})
}

// Names the API server accepts are not refused: an RBAC name with colons, a custom resource's dotted
// name, an entry framed by "---" lines and comments (one object still), sidecar port names with digits.
func TestValidNamesRender(t *testing.T) {
	t.Parallel()
	r := mustRender(t, render.Options{ReleaseName: "shop", APIVersions: []string{"example.com/v1/Widget"}, Values: m{
		"extraObjects": []any{
			m{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": m{"name": "system:shop:reader"}, "rules": []any{}},
			"---\n# the cache settings\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cache\n---\n",
			m{"apiVersion": "v1", "kind": "Service", "metadata": m{"name": "shop-admin"}, "spec": m{"ports": []any{m{"port": 9901}}}},
		},
		"sidecars": []any{m{"name": "envoy-1", "image": "envoy:1.0", "ports": []any{m{"name": "h2c-admin", "containerPort": 9901}}}},
	}})
	assert.Equal(t, "system:shop:reader", render.One[*rbacv1.Role](t, r).Name)
	assert.NotNil(t, render.Named[*corev1.ConfigMap](t, r, "shop-cache"))
	assert.NotNil(t, render.Named[*corev1.Service](t, r, "shop-admin"))
	var ports []string
	spec := deployment(t, r).Spec.Template.Spec
	for _, c := range append(spec.Containers, spec.InitContainers...) { // a native sidecar is an init container
		for _, p := range c.Ports {
			ports = append(ports, p.Name)
		}
	}
	assert.Contains(t, ports, "h2c-admin")
}

// A chart-managed Secret (env, files, its own checksum) and Secrets from elsewhere (env in order, a
// checksum of their data read at upgrade, a Reloader annotation on request).
func TestSecretValues(t *testing.T) {
	t.Parallel()
	checksum := func(t *testing.T, r *render.Result, key string) string {
		t.Helper()
		return deployment(t, r).Spec.Template.Annotations[key]
	}
	runValueCases(t, []valueCase{
		{name: "none", values: m{}, check: func(t *testing.T, r *render.Result) {
			assert.Empty(t, render.All[*corev1.Secret](r))
			assert.Empty(t, container(t, r).EnvFrom)
			assert.NotContains(t, deployment(t, r).Spec.Template.Annotations, "checksum/secret")
		}},
		{name: "chart secret as env and files", values: m{"secret": m{"data": m{"TOKEN": "abc"}, "mountPath": "/secrets"}}, check: func(t *testing.T, r *render.Result) {
			s := render.Named[*corev1.Secret](t, r, "test-go-service")
			assert.Equal(t, "abc", s.StringData["TOKEN"])
			c := container(t, r)
			require.Len(t, c.EnvFrom, 1)
			assert.Equal(t, "test-go-service", c.EnvFrom[0].SecretRef.Name)
			assert.Contains(t, c.VolumeMounts, corev1.VolumeMount{Name: "secret", MountPath: "/secrets", ReadOnly: true})
			assert.Len(t, checksum(t, r, "checksum/secret"), 64)
			other := mustRender(t, render.Options{Values: m{"secret": m{"data": m{"TOKEN": "abd"}, "mountPath": "/secrets"}}})
			assert.NotEqual(t, checksum(t, r, "checksum/secret"), checksum(t, other, "checksum/secret"), "new data rolls the pods")
		}},
		{name: "existing secrets", values: m{"existingSecrets": m{"names": []string{"db", "api-keys"}, "reloader": true}, "deploymentAnnotations": m{"a": "b"}}, check: func(t *testing.T, r *render.Result) {
			c := container(t, r)
			require.Len(t, c.EnvFrom, 2)
			assert.Equal(t, "db", c.EnvFrom[0].SecretRef.Name)
			assert.Equal(t, "api-keys", c.EnvFrom[1].SecretRef.Name)
			d := deployment(t, r)
			assert.Equal(t, "db,api-keys", d.Annotations["secret.reloader.stakater.com/reload"])
			assert.Equal(t, "b", d.Annotations["a"])
			assert.Len(t, checksum(t, r, "checksum/existing-secrets"), 64, "computed from what lookup finds (nothing without a cluster)")
		}},
		{name: "existing secrets without checksum or reloader", values: m{"existingSecrets": m{"names": []string{"db"}, "checksum": false}}, check: func(t *testing.T, r *render.Result) {
			d := deployment(t, r)
			assert.NotContains(t, d.Spec.Template.Annotations, "checksum/existing-secrets")
			assert.NotContains(t, d.Annotations, "secret.reloader.stakater.com/reload")
		}},
	})
}

// Exposure: HTTPRoute rules with matches, filters and timeouts (a rule without backendRefs goes to the
// Service, an explicit empty list stays empty), a GRPCRoute, the Service's traffic policies, affinity and
// extra ports, NetworkPolicy egress with DNS allowed.
func TestExposureExtensions(t *testing.T) {
	t.Parallel()
	gw := []any{m{"name": "gw"}}
	runValueCases(t, []valueCase{
		{name: "httproute rules", values: m{"httpRoute": m{"enabled": true, "parentRefs": gw, "rules": []any{
			m{"matches": []any{m{"path": m{"type": "PathPrefix", "value": "/api"}}}, "timeouts": m{"request": "10s"},
				"filters": []any{m{"type": "RequestHeaderModifier", "requestHeaderModifier": m{"add": []any{m{"name": "X-Env", "value": "prod"}}}}}},
			m{"matches": []any{m{"path": m{"type": "PathPrefix", "value": "/old"}}}, "backendRefs": []any{},
				"filters": []any{m{"type": "RequestRedirect", "requestRedirect": m{"statusCode": 301}}}},
		}}}, check: func(t *testing.T, r *render.Result) {
			hr := render.One[*gatewayv1.HTTPRoute](t, r)
			require.Len(t, hr.Spec.Rules, 2)
			api := hr.Spec.Rules[0]
			assert.Equal(t, "/api", *api.Matches[0].Path.Value)
			assert.Equal(t, gatewayv1.Duration("10s"), *api.Timeouts.Request)
			assert.Equal(t, gatewayv1.HTTPRouteFilterRequestHeaderModifier, api.Filters[0].Type)
			require.Len(t, api.BackendRefs, 1, "the Service")
			assert.Equal(t, gatewayv1.ObjectName("test-go-service"), api.BackendRefs[0].Name)
			assert.EqualValues(t, 80, *api.BackendRefs[0].Port)
			assert.Empty(t, hr.Spec.Rules[1].BackendRefs, "an explicit empty list stays empty")
		}},
		{name: "grpcroute", values: m{"grpcRoute": m{"enabled": true, "parentRefs": gw, "hostnames": []string{"grpc.example.com"}}}, check: func(t *testing.T, r *render.Result) {
			gr := render.One[*gatewayv1.GRPCRoute](t, r)
			assert.Equal(t, []gatewayv1.Hostname{"grpc.example.com"}, gr.Spec.Hostnames)
			require.Len(t, gr.Spec.Rules, 1)
			assert.Equal(t, gatewayv1.ObjectName("test-go-service"), gr.Spec.Rules[0].BackendRefs[0].Name)
		}},
		{name: "grpcroute rules", values: m{"grpcRoute": m{"enabled": true, "parentRefs": gw, "rules": []any{m{"matches": []any{m{"method": m{"service": "orders.v1.Orders", "method": "Get"}}}}}}}, check: func(t *testing.T, r *render.Result) {
			rule := render.One[*gatewayv1.GRPCRoute](t, r).Spec.Rules[0]
			assert.Equal(t, "orders.v1.Orders", *rule.Matches[0].Method.Service)
			require.Len(t, rule.BackendRefs, 1)
		}},
		{name: "service policies", kube: "1.34.0", values: m{"service": m{"type": "LoadBalancer", "externalTrafficPolicy": "Local", "trafficDistribution": "PreferSameZone",
			"sessionAffinity": "ClientIP", "sessionAffinityTimeoutSeconds": 600, "extraPorts": []any{m{"name": "admin", "port": 9999, "targetPort": 9999}}}}, check: func(t *testing.T, r *render.Result) {
			svc := render.One[*corev1.Service](t, r)
			assert.Equal(t, corev1.ServiceExternalTrafficPolicyLocal, svc.Spec.ExternalTrafficPolicy)
			assert.Equal(t, "PreferSameZone", *svc.Spec.TrafficDistribution)
			assert.Equal(t, corev1.ServiceAffinityClientIP, svc.Spec.SessionAffinity)
			assert.EqualValues(t, 600, *svc.Spec.SessionAffinityConfig.ClientIP.TimeoutSeconds)
			require.Len(t, svc.Spec.Ports, 2)
			assert.Equal(t, "admin", svc.Spec.Ports[1].Name)
		}},
		{name: "internal traffic Local warns", values: m{"service": m{"internalTrafficPolicy": "Local"}}, check: func(t *testing.T, r *render.Result) {
			assert.Equal(t, corev1.ServiceInternalTrafficPolicyLocal, *render.One[*corev1.Service](t, r).Spec.InternalTrafficPolicy)
			assert.Contains(t, r.Notes, "service.internalTrafficPolicy is Local")
		}},
		{name: "defaults set no policy", values: m{}, check: func(t *testing.T, r *render.Result) {
			svc := render.One[*corev1.Service](t, r)
			assert.Empty(t, svc.Spec.ExternalTrafficPolicy)
			assert.Nil(t, svc.Spec.TrafficDistribution)
			assert.Empty(t, svc.Spec.SessionAffinity)
		}},
		{name: "egress restricted, DNS allowed", values: m{"networkPolicy": m{"enabled": true, "egress": []any{m{"ports": []any{m{"port": 5432, "protocol": "TCP"}}}}}}, check: func(t *testing.T, r *render.Result) {
			np := render.One[*networkingv1.NetworkPolicy](t, r)
			assert.Equal(t, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}, np.Spec.PolicyTypes)
			require.Len(t, np.Spec.Egress, 2)
			assert.EqualValues(t, 5432, np.Spec.Egress[0].Ports[0].Port.IntVal)
			dns := np.Spec.Egress[1]
			assert.EqualValues(t, 53, dns.Ports[0].Port.IntVal)
			assert.Equal(t, corev1.ProtocolUDP, *dns.Ports[0].Protocol)
			assert.Equal(t, corev1.ProtocolTCP, *dns.Ports[1].Protocol)
			assert.Equal(t, "kube-dns", dns.To[0].PodSelector.MatchLabels["k8s-app"])
		}},
		{name: "egress denied entirely but DNS", values: m{"networkPolicy": m{"enabled": true, "egress": []any{}}}, check: func(t *testing.T, r *render.Result) {
			np := render.One[*networkingv1.NetworkPolicy](t, r)
			require.Len(t, np.Spec.Egress, 1, "DNS only")
		}},
		{name: "egress not restricted by default", values: m{"networkPolicy": m{"enabled": true}}, check: func(t *testing.T, r *render.Result) {
			np := render.One[*networkingv1.NetworkPolicy](t, r)
			assert.Equal(t, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}, np.Spec.PolicyTypes)
			assert.Empty(t, np.Spec.Egress)
		}},
	})
}

// A VerticalPodAutoscaler for the app container: recommendations only by default, requests only (the
// limits, and GOMEMLIMIT computed from them, stay as set).
func TestVPAValues(t *testing.T) {
	t.Parallel()
	runValueCases(t, []valueCase{
		{name: "off by default", values: m{}, check: func(t *testing.T, r *render.Result) {
			assert.Empty(t, render.All[*vpav1.VerticalPodAutoscaler](r))
		}},
		{name: "recommendations", values: m{"vpa": m{"enabled": true, "maxAllowed": m{"memory": "1Gi"}}}, check: func(t *testing.T, r *render.Result) {
			vpa := render.One[*vpav1.VerticalPodAutoscaler](t, r)
			assert.Equal(t, "test-go-service", vpa.Spec.TargetRef.Name)
			assert.Equal(t, vpav1.UpdateModeOff, *vpa.Spec.UpdatePolicy.UpdateMode)
			p := vpa.Spec.ResourcePolicy.ContainerPolicies[0]
			assert.Equal(t, "app", p.ContainerName)
			assert.Equal(t, vpav1.ContainerControlledValuesRequestsOnly, *p.ControlledValues)
			assert.Equal(t, []corev1.ResourceName{"cpu", "memory"}, *p.ControlledResources)
			assert.Equal(t, "1Gi", p.MaxAllowed.Memory().String())
			assert.NotContains(t, r.Notes, "WARNINGS")
		}},
		{name: "resizing beside an HPA on another resource", values: m{"autoscaling": m{"enabled": true}, "vpa": m{"enabled": true, "updateMode": "Recreate", "controlledResources": []string{"memory"}}}, check: func(t *testing.T, r *render.Result) {
			assert.Equal(t, vpav1.UpdateModeRecreate, *render.One[*vpav1.VerticalPodAutoscaler](t, r).Spec.UpdatePolicy.UpdateMode)
		}},
	})
}

// KEDA instead of the HPA: a ScaledObject on the Deployment with the chart's HPA behavior, and the
// Deployment's replicas at least minReplicaCount (the live scale with a cluster). ScaledObject decodes
// into unstructured (no KEDA Go types here); the live suite's dry-run checks it against KEDA's CRD.
func TestKedaValues(t *testing.T) {
	t.Parallel()
	trigger := m{"type": "prometheus", "metadata": m{"serverAddress": "http://prometheus:9090", "query": "sum(rate(http_requests_total[1m]))", "threshold": "100"}}
	runValueCases(t, []valueCase{
		{name: "scaled object", values: m{"keda": m{"enabled": true, "minReplicaCount": 3, "maxReplicaCount": 12, "triggers": []any{trigger}}}, check: func(t *testing.T, r *render.Result) {
			so := render.One[*unstructured.Unstructured](t, r)
			assert.Equal(t, "ScaledObject", so.GetKind())
			name, _, _ := unstructured.NestedString(so.Object, "spec", "scaleTargetRef", "name")
			assert.Equal(t, "test-go-service", name)
			minR, _, _ := unstructured.NestedFieldNoCopy(so.Object, "spec", "minReplicaCount")
			assert.EqualValues(t, 3, minR)
			triggers, _, _ := unstructured.NestedSlice(so.Object, "spec", "triggers")
			require.Len(t, triggers, 1)
			assert.Equal(t, "prometheus", triggers[0].(map[string]any)["type"])
			window, _, _ := unstructured.NestedFieldNoCopy(so.Object, "spec", "advanced", "horizontalPodAutoscalerConfig", "behavior", "scaleDown", "stabilizationWindowSeconds")
			assert.EqualValues(t, 300, window, "the chart's HPA behavior")
			assert.Nil(t, deployment(t, r).Spec.Replicas, "the scale is KEDA's HPA's")
			assert.Equal(t, "autoscaler", deployment(t, r).Annotations[rules.ReplicasAnnotation])
			assert.Empty(t, render.All[*autoscalingv2.HorizontalPodAutoscaler](r), "KEDA makes its own")
			assert.Contains(t, r.Notes, "3-12 replicas (KEDA)")
			assert.Equal(t, intstr.FromInt32(1), *render.One[*policyv1.PodDisruptionBudget](t, r).Spec.MaxUnavailable)
		}},
	})
}
