package chart_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/go-service/go-service/test/render"
)

// go-service used twice as a dependency of one umbrella chart, under two aliases with their own values:
// each service gets exactly what it asked for, and the two never collide.
func TestDependencyChart(t *testing.T) {
	t.Parallel()
	umbrella := render.BuildDependencies(t, filepath.Join("testdata", "umbrella"))

	for _, kube := range []string{"1.29.0", "1.34.0"} {
		t.Run("kube-"+kube, func(t *testing.T) {
			t.Parallel()
			r := mustRender(t, render.Options{Chart: umbrella, KubeVersion: kube, ReleaseName: "shop",
				SubchartNotes: true, Values: m{"api": m{"podLabels": m{"tier": "edge"}}}})
			assert.Empty(t, render.ZeroDowntimeViolations(onlyRelease(r, "api"), kube))
			assert.Empty(t, render.ZeroDowntimeViolations(onlyRelease(r, "worker"), kube))

			api := render.Named[*appsv1.Deployment](t, r, "shop-api")
			worker := render.Named[*appsv1.Deployment](t, r, "shop-worker")

			// api: its replicas, image, ingress, and the override given at install time.
			assert.EqualValues(t, 3, *api.Spec.Replicas)
			assert.Equal(t, "registry.example.com/shop/api:1.4.0", api.Spec.Template.Spec.Containers[0].Image)
			assert.Equal(t, "edge", api.Spec.Template.Labels["tier"])
			assert.Equal(t, "api", api.Spec.Selector.MatchLabels["app.kubernetes.io/name"])
			ing := render.Named[*networkingv1.Ingress](t, r, "shop-api")
			assert.Equal(t, "shop-api", ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name)
			assert.Equal(t, intstr.FromInt32(1), *render.Named[*policyv1.PodDisruptionBudget](t, r, "shop-api").Spec.MaxUnavailable)

			// worker: HPA-owned scale, its own port, a longer shutdown budget, its own PDB.
			assert.Nil(t, worker.Spec.Replicas, "the scale is the HPA's")
			assert.Equal(t, "autoscaler", worker.Annotations["go-service/replicas"])
			assert.Equal(t, "worker", worker.Spec.Selector.MatchLabels["app.kubernetes.io/name"])
			wc := worker.Spec.Template.Spec.Containers[0]
			assert.Equal(t, "registry.example.com/shop/worker:2.0.1", wc.Image)
			assert.EqualValues(t, 9000, wc.Ports[0].ContainerPort)
			assert.EqualValues(t, 75, *worker.Spec.Template.Spec.TerminationGracePeriodSeconds, "10 + 60 + 5")
			assert.Equal(t, "60s", envVar(t, wc, "GO_SERVICE_DRAIN_TIMEOUT").Value)
			assert.Equal(t, intstr.FromInt32(1), *render.Named[*policyv1.PodDisruptionBudget](t, r, "shop-worker").Spec.MinAvailable)
			assert.Equal(t, "shop-worker", render.One[*autoscalingv2.HorizontalPodAutoscaler](t, r).Spec.ScaleTargetRef.Name)

			// No collisions: two Services, and only api has a helm test.
			assert.Len(t, render.All[*corev1.Service](r), 2)
			assert.Len(t, render.All[*corev1.ServiceAccount](r), 2)
			assert.Equal(t, "shop-api-test-connection", render.One[*corev1.Pod](t, r).Name)
			assert.Contains(t, r.Notes, "shop-api is deployed")
			assert.Contains(t, r.Notes, "shop-worker is deployed")
		})
	}

	// global.* reaches every alias: the registry mirror, the pull secrets and the labels; an alias's own
	// commonLabels win over the global ones, its own pull secrets are added.
	t.Run("globals reach every alias", func(t *testing.T) {
		t.Parallel()
		r := mustRender(t, render.Options{Chart: umbrella, ReleaseName: "shop", Values: m{
			"global": m{"imageRegistry": "mirror.internal:5000", "imagePullSecrets": []any{"mirror-pull", m{"name": "shared"}}, "commonLabels": m{"team": "shop", "cost-center": "42"}},
			"api":    m{"imagePullSecrets": []any{"mirror-pull", "api-only"}, "commonLabels": m{"team": "edge"}},
		}})
		secrets := func(ps []corev1.LocalObjectReference) []string {
			var out []string
			for _, p := range ps {
				out = append(out, p.Name)
			}
			return out
		}
		for alias, want := range map[string]struct {
			image, team string
			secrets     []string
		}{
			"api":    {"mirror.internal:5000/shop/api:1.4.0", "edge", []string{"mirror-pull", "shared", "api-only"}},
			"worker": {"mirror.internal:5000/shop/worker:2.0.1", "shop", []string{"mirror-pull", "shared"}},
		} {
			d := render.Named[*appsv1.Deployment](t, r, "shop-"+alias)
			assert.Equal(t, want.image, d.Spec.Template.Spec.Containers[0].Image, alias)
			assert.Equal(t, want.secrets, secrets(d.Spec.Template.Spec.ImagePullSecrets), alias)
			for what, labels := range map[string]map[string]string{"Deployment": d.Labels, "pod": d.Spec.Template.Labels, "Service": render.Named[*corev1.Service](t, r, "shop-"+alias).Labels} {
				assert.Equal(t, want.team, labels["team"], "%s %s", alias, what)
				assert.Equal(t, "42", labels["cost-center"], "%s %s", alias, what)
			}
		}
		test := render.One[*corev1.Pod](t, r)
		assert.True(t, strings.HasPrefix(test.Spec.Containers[0].Image, "mirror.internal:5000/"), "the helm test image too: %s", test.Spec.Containers[0].Image)
		assert.Equal(t, []string{"mirror-pull", "shared", "api-only"}, secrets(test.Spec.ImagePullSecrets))
	})
	t.Run("a global label on the selector is refused", func(t *testing.T) {
		t.Parallel()
		_, err := render.Render(render.Options{Chart: umbrella, ReleaseName: "shop", Values: m{"global": m{"commonLabels": m{"app.kubernetes.io/name": "shop"}}}})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "global.commonLabels sets app.kubernetes.io/name, a label of the Deployment's selector")
	})
	t.Run("guardrail names the alias", func(t *testing.T) {
		t.Parallel()
		_, err := render.Render(render.Options{Chart: umbrella, ReleaseName: "shop",
			Values: m{"worker": m{"shutdown": m{"terminationGracePeriodSeconds": 30}}}})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "go-service (values under worker:): invalid values")
		assert.Contains(t, err.Error(), "shutdown.terminationGracePeriodSeconds (30) must be greater than shutdown.preStop.delaySeconds + shutdown.drainTimeoutSeconds (10 + 60 = 70)")
	})
	t.Run("schema applies to each alias", func(t *testing.T) {
		t.Parallel()
		_, err := render.Render(render.Options{Chart: umbrella, ReleaseName: "shop", Values: m{"api": m{"replicas": 2}}})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "additional properties 'replicas' not allowed")
	})
}

// onlyRelease keeps the objects of one alias (named shop-<alias>), so the rules can be checked per service.
func onlyRelease(r *render.Result, alias string) *render.Result {
	out := &render.Result{}
	for _, o := range r.Objects {
		if labels, ok := objectLabels(o); ok && labels["app.kubernetes.io/name"] == alias {
			out.Objects = append(out.Objects, o)
		}
	}
	return out
}
