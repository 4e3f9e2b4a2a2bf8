package chart_test

import (
	"testing"

	"github.com/Masterminds/semver/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/go-service/go-service/test/render"
)

// proxySidecar is a proxy in front of the app: the Service's targetPort names its port.
func proxySidecar(extra m) m {
	v := m{
		"sidecars": []any{m{
			"name": "proxy", "image": "envoy:1.0",
			"ports": []any{m{"name": "proxy", "containerPort": 8081}},
		}},
		"initContainers": []any{m{"name": "migrate", "image": "migrate:1.0", "securityContext": m{"runAsUser": 1000}}},
		"service":        m{"targetPort": "proxy"},
		"networkPolicy":  m{"enabled": true},
	}
	for k, e := range extra {
		v[k] = e
	}
	return v
}

func containerNamed(cs []corev1.Container, name string) (corev1.Container, bool) {
	for _, c := range cs {
		if c.Name == name {
			return c, true
		}
	}
	return corev1.Container{}, false
}

// Sidecars run as native sidecars where Kubernetes has them (1.29), before the init containers, and as
// regular containers before; each gets the chart's container securityContext unless it has its own. A
// sidecar in the request path takes the Service's traffic, and the app's http port leaves the Service.
func TestSidecarValues(t *testing.T) {
	t.Parallel()
	native := func(t *testing.T, r *render.Result) {
		spec := deployment(t, r).Spec.Template.Spec
		require.Len(t, spec.InitContainers, 2)
		assert.Equal(t, []string{"proxy", "migrate"}, []string{spec.InitContainers[0].Name, spec.InitContainers[1].Name}, "native sidecars start first")
		require.NotNil(t, spec.InitContainers[0].RestartPolicy)
		assert.Equal(t, corev1.ContainerRestartPolicyAlways, *spec.InitContainers[0].RestartPolicy)
		assert.Nil(t, spec.InitContainers[1].RestartPolicy, "an init container runs to completion")
		require.Len(t, spec.Containers, 1)
		assert.Equal(t, "app", spec.Containers[0].Name)
		assert.Equal(t, spec.Containers[0].SecurityContext, spec.InitContainers[0].SecurityContext, "the chart's securityContext")
		assert.Equal(t, &corev1.SecurityContext{RunAsUser: new(int64(1000))}, spec.InitContainers[1].SecurityContext, "its own securityContext")
		assert.NotContains(t, r.Notes, "sidecars[0]")
	}
	regular := func(t *testing.T, r *render.Result) {
		spec := deployment(t, r).Spec.Template.Spec
		require.Len(t, spec.InitContainers, 1)
		assert.Equal(t, "migrate", spec.InitContainers[0].Name)
		require.Len(t, spec.Containers, 2)
		assert.Equal(t, "app", spec.Containers[0].Name, "the app stays the first container")
		assert.Equal(t, "proxy", spec.Containers[1].Name)
		assert.Nil(t, spec.Containers[1].RestartPolicy)
	}
	var cases []valueCase
	for _, kube := range render.KubeVersions {
		hasNative := semver.MustParse(kube).Compare(semver.MustParse("1.29.0")) >= 0
		cases = append(cases, valueCase{name: "auto on " + kube, kube: kube, values: proxySidecar(nil), check: func(t *testing.T, r *render.Result) {
			if hasNative {
				native(t, r)
				return
			}
			regular(t, r)
			assert.Contains(t, r.Notes, "sidecars[0] (proxy) is in the request path (service.targetPort) as a regular container with no preStop hook")
			assert.Contains(t, r.Notes, "This cluster (v"+kube+") has no native sidecars (Kubernetes 1.29)")
		}})
	}
	cases = append(cases,
		valueCase{name: "regular on a cluster with native sidecars", kube: "1.34.0", values: proxySidecar(m{"sidecarMode": "regular"}), check: func(t *testing.T, r *render.Result) {
			regular(t, r)
			assert.Contains(t, r.Notes, "Set sidecarMode to auto or native: a native sidecar stops only after the app has exited.")
		}},
		valueCase{name: "regular with a preStop of its own", kube: "1.28.0", values: proxySidecar(m{"sidecars": []any{m{
			"name": "proxy", "image": "envoy:1.0", "ports": []any{m{"name": "proxy", "containerPort": 8081}},
			"lifecycle": m{"preStop": m{"sleep": m{"seconds": 20}}},
		}}}), check: func(t *testing.T, r *render.Result) {
			regular(t, r)
			assert.NotContains(t, r.Notes, "sidecars[0]", "the sidecar bridges the drain itself")
		}},
		valueCase{name: "request path", kube: "1.34.0", values: proxySidecar(m{"containerPorts": m{"http": 8080, "metrics": 9090}}), check: func(t *testing.T, r *render.Result) {
			svc := render.One[*corev1.Service](t, r)
			require.Len(t, svc.Spec.Ports, 2, "the proxy and metrics; not the app's http port")
			assert.Equal(t, corev1.ServicePort{Name: "proxy", Port: 80, TargetPort: intstr.FromString("proxy"), Protocol: corev1.ProtocolTCP}, svc.Spec.Ports[0])
			assert.Equal(t, "metrics", svc.Spec.Ports[1].Name)
			np := render.One[*networkingv1.NetworkPolicy](t, r)
			var ports []string
			for _, p := range np.Spec.Ingress[0].Ports {
				ports = append(ports, p.Port.String())
			}
			assert.Equal(t, []string{"http", "metrics", "8081"}, ports, "the proxy's port is open to the peers")
			assert.Equal(t, "1s", envOf(deployment(t, r).Spec.Template.Spec.Containers[0])["GO_SERVICE_KEEPALIVE_QUIET"],
				"behind a proxy the app waits twice its default quiet period, so the proxy's idle connections close first")
		}},
		valueCase{name: "a sidecar beside the app", kube: "1.34.0", values: m{"sidecars": []any{m{"name": "logs", "image": "shipper:1.0"}}}, check: func(t *testing.T, r *render.Result) {
			spec := deployment(t, r).Spec.Template.Spec
			require.Len(t, spec.InitContainers, 1)
			assert.Equal(t, "logs", spec.InitContainers[0].Name)
			svc := render.One[*corev1.Service](t, r)
			assert.Equal(t, "http", svc.Spec.Ports[0].Name, "the app keeps the traffic")
			_, set := envOf(deployment(t, r).Spec.Template.Spec.Containers[0])["GO_SERVICE_KEEPALIVE_QUIET"]
			assert.False(t, set, "the app's own clients: its default quiet period")
		}},
		valueCase{name: "none", values: m{}, check: func(t *testing.T, r *render.Result) {
			assert.Empty(t, deployment(t, r).Spec.Template.Spec.InitContainers)
		}},
	)
	runValueCases(t, cases)
}

// envOf is a container's literal environment by name.
func envOf(c corev1.Container) map[string]string {
	out := map[string]string{}
	for _, e := range c.Env {
		out[e.Name] = e.Value
	}
	return out
}
