package chart_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/go-service/go-service/graceful/grpcx"
	"github.com/go-service/go-service/test/render"
)

// grpcService is a gRPC service beside its HTTP endpoints, probed over gRPC, with extra values merged in.
func grpcService(extra m) m {
	v := m{
		"containerPorts": m{"http": 8080, "grpc": 9090},
		"grpc":           m{"enabled": true},
		"probes": m{
			"startup":   m{"type": "grpc", "port": "grpc"},
			"readiness": m{"type": "grpc", "port": "grpc"},
			"liveness":  m{"type": "grpc", "port": "grpc"},
		},
	}
	for k, e := range extra {
		v[k] = e
	}
	return v
}

func servicePortNamed(t *testing.T, svc *corev1.Service, name string) corev1.ServicePort {
	t.Helper()
	for _, p := range svc.Spec.Ports {
		if p.Name == name {
			return p
		}
	}
	require.Failf(t, "no such Service port", "%s has no port %q: %+v", svc.Name, name, svc.Spec.Ports)
	return corev1.ServicePort{}
}

// A gRPC service: the kubelet's own gRPC probes on the port's number (its GRPCAction takes no name), the
// liveness and startup probes asking for grpcx's liveness service and readiness for the server as a whole,
// the contract's gRPC variables, appProtocol on the Service port that reaches the gRPC port, a headless
// Service on request, and the GRPCRoute sending to the gRPC port.
func TestGRPCValues(t *testing.T) {
	t.Parallel()
	grpcProbe := func(service string) *corev1.ProbeHandler {
		return &corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9090, Service: new(service)}}
	}
	runValueCases(t, []valueCase{
		{name: "probes, environment and Service port", values: grpcService(nil), check: func(t *testing.T, r *render.Result) {
			c := container(t, r)
			require.NotNil(t, c.StartupProbe)
			assert.Equal(t, *grpcProbe(grpcx.LivenessService), c.StartupProbe.ProbeHandler)
			assert.Equal(t, *grpcProbe(""), c.ReadinessProbe.ProbeHandler)
			assert.Equal(t, *grpcProbe(grpcx.LivenessService), c.LivenessProbe.ProbeHandler)
			assert.EqualValues(t, 2, c.ReadinessProbe.PeriodSeconds, "the timings are the probe's values")
			env := envOf(c)
			assert.Equal(t, "9090", env["GO_SERVICE_GRPC_PORT"])
			assert.Equal(t, "60s", env["GO_SERVICE_GRPC_MAX_CONNECTION_AGE"])
			assert.NotContains(t, env, "GO_SERVICE_READINESS_PATH", "no HTTP readiness path to announce")
			assert.NotContains(t, env, "GO_SERVICE_LIVENESS_PATH")
			svc := render.One[*corev1.Service](t, r)
			assert.Nil(t, servicePortNamed(t, svc, "http").AppProtocol)
			assert.Equal(t, corev1.ServicePort{Name: "grpc", Port: 9090, TargetPort: intstr.FromString("grpc"), Protocol: corev1.ProtocolTCP, AppProtocol: new("kubernetes.io/h2c")},
				servicePortNamed(t, svc, "grpc"))
			assert.NotContains(t, r.Notes, "grpc.maxConnectionAgeSeconds")
		}},
		{name: "a numbered port and a service of its own", values: grpcService(m{"probes": m{
			"readiness": m{"type": "grpc", "port": 9090, "grpcService": "shop.v1.Cart"},
			"liveness":  m{"type": "http"},
			"startup":   m{"enabled": false},
		}}), check: func(t *testing.T, r *render.Result) {
			c := container(t, r)
			assert.Equal(t, *grpcProbe("shop.v1.Cart"), c.ReadinessProbe.ProbeHandler)
			require.NotNil(t, c.LivenessProbe.HTTPGet, "liveness stays an httpGet")
			assert.Equal(t, "/healthz/live", envOf(c)["GO_SERVICE_LIVENESS_PATH"])
		}},
		{name: "headless Service and connection age", values: grpcService(m{"grpc": m{"enabled": true, "maxConnectionAgeSeconds": 0, "appProtocol": "grpc", "headless": m{"enabled": true}}}), check: func(t *testing.T, r *render.Result) {
			assert.Equal(t, "0s", envOf(container(t, r))["GO_SERVICE_GRPC_MAX_CONNECTION_AGE"], "an explicit 0 is rendered")
			h := render.Named[*corev1.Service](t, r, "test-go-service-headless")
			assert.Equal(t, corev1.ClusterIPNone, h.Spec.ClusterIP)
			assert.False(t, h.Spec.PublishNotReadyAddresses, "a draining pod leaves its DNS")
			assert.Equal(t, []corev1.ServicePort{{Name: "grpc", Port: 9090, TargetPort: intstr.FromString("grpc"), Protocol: corev1.ProtocolTCP, AppProtocol: new("grpc")}}, h.Spec.Ports)
			assert.Equal(t, render.Named[*corev1.Service](t, r, "test-go-service").Spec.Selector, h.Spec.Selector)
			assert.Contains(t, r.Notes, "grpc.maxConnectionAgeSeconds is 0 with grpc.headless.enabled: clients that balance over test-go-service-headless")
		}},
		{name: "a Service that only speaks gRPC", values: grpcService(m{
			"service":   m{"targetPort": "grpc"},
			"grpc":      m{"enabled": true, "maxConnectionAgeSeconds": 0},
			"grpcRoute": m{"enabled": true, "parentRefs": []any{m{"name": "gw"}}},
		}), check: func(t *testing.T, r *render.Result) {
			svc := render.One[*corev1.Service](t, r)
			main := servicePortNamed(t, svc, "grpc")
			assert.EqualValues(t, 80, main.Port)
			assert.Equal(t, new("kubernetes.io/h2c"), main.AppProtocol, "the main port reaches the gRPC port")
			assert.Len(t, svc.Spec.Ports, 2, "the main port and http")
			backend := render.One[*gatewayv1.GRPCRoute](t, r).Spec.Rules[0].BackendRefs[0]
			assert.EqualValues(t, 80, *backend.Port, "the route sends to the Service port that reaches gRPC")
			assert.Contains(t, r.Notes, "grpc.maxConnectionAgeSeconds is 0: a gRPC client keeps one connection")
			assert.Contains(t, r.Notes, "service.targetPort is the gRPC port, and tests.command requests $(TEST_URL) over HTTP/1.1")
		}},
		{name: "a GRPCRoute to the gRPC port beside http", values: grpcService(m{"grpcRoute": m{"enabled": true, "parentRefs": []any{m{"name": "gw"}}}}), check: func(t *testing.T, r *render.Result) {
			backend := render.One[*gatewayv1.GRPCRoute](t, r).Spec.Rules[0].BackendRefs[0]
			assert.EqualValues(t, 9090, *backend.Port)
		}},
		{name: "a port number written as a string", values: grpcService(m{"probes": m{
			"readiness": m{"type": "grpc", "port": "9090"},
		}}), check: func(t *testing.T, r *render.Result) {
			assert.Equal(t, *grpcProbe(""), container(t, r).ReadinessProbe.ProbeHandler, "the number, not 0")
		}},
		{name: "service.targetPort the gRPC port's number", values: grpcService(m{
			"service":   m{"targetPort": 9090},
			"grpcRoute": m{"enabled": true, "parentRefs": []any{m{"name": "gw"}}},
		}), check: func(t *testing.T, r *render.Result) {
			main := render.One[*corev1.Service](t, r).Spec.Ports[0]
			assert.Equal(t, intstr.FromInt32(9090), main.TargetPort)
			assert.Equal(t, new("kubernetes.io/h2c"), main.AppProtocol, "the main port reaches the gRPC port by number")
			backend := render.One[*gatewayv1.GRPCRoute](t, r).Spec.Rules[0].BackendRefs[0]
			assert.EqualValues(t, 80, *backend.Port)
			assert.Contains(t, r.Notes, "service.targetPort is the gRPC port, and tests.command requests $(TEST_URL) over HTTP/1.1")
		}},
		// A gRPC server without grpcx has no liveness service: its probes ask for the server as a whole. The
		// kubelet stops liveness and startup probes once a pod terminates, so a drain restarts nothing.
		{name: "liveness and readiness on one health service", values: grpcService(m{"probes": m{
			"startup":   m{"type": "grpc", "port": "grpc", "grpcService": ""},
			"readiness": m{"type": "grpc", "port": "grpc"},
			"liveness":  m{"type": "grpc", "port": 9090, "grpcService": ""},
		}}), check: func(t *testing.T, r *render.Result) {
			c := container(t, r)
			assert.Equal(t, *grpcProbe(""), c.LivenessProbe.ProbeHandler)
			assert.Equal(t, *grpcProbe(""), c.ReadinessProbe.ProbeHandler)
		}},
		{name: "off by default", values: m{"containerPorts": m{"http": 8080, "grpc": 9090}}, check: func(t *testing.T, r *render.Result) {
			env := envOf(container(t, r))
			assert.NotContains(t, env, "GO_SERVICE_GRPC_PORT")
			assert.Nil(t, servicePortNamed(t, render.One[*corev1.Service](t, r), "grpc").AppProtocol)
			assert.Len(t, render.All[*corev1.Service](r), 1, "no headless Service")
			require.NotNil(t, container(t, r).ReadinessProbe.HTTPGet)
		}},
	})
}
