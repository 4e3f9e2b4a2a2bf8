package rules_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/chartutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/go-service/go-service/render"
	"github.com/go-service/go-service/rules"
)

const kube = "1.34.0"

func names(t *testing.T, objs []runtime.Object, kubeVersion string) []string {
	t.Helper()
	v, err := rules.Check(objs, rules.Options{KubeVersion: kubeVersion})
	require.NoError(t, err)
	out := []string{}
	for _, x := range v {
		out = append(out, x.Rule)
		assert.NotEmpty(t, x.Object, "%s names the object", x.Rule)
		assert.NotEmpty(t, x.Field, "%s names the field", x.Rule)
		assert.NotEmpty(t, x.Fix, "%s says what to change", x.Rule)
	}
	return out
}

// goService renders this repository's chart with its defaults.
func goService(t *testing.T) []runtime.Object {
	t.Helper()
	r, err := render.Render(render.Options{Chart: "../charts/go-service", KubeVersion: kube})
	require.NoError(t, err)
	return r.Objects
}

func TestGoServiceDefaultsComply(t *testing.T) {
	assert.Empty(t, names(t, goService(t), kube))
}

// `helm create`'s scaffold, generated with the Helm SDK as the CLI does it, breaks the rules a default
// chart breaks: one replica, maxUnavailable left to the API server's 25%, one path for liveness and
// readiness with the same tolerance, no startup probe, no preStop delay.
func TestHelmCreateDefaults(t *testing.T) {
	dir := t.TempDir()
	path, err := chartutil.Create("demo", dir)
	require.NoError(t, err)
	r, err := render.Render(render.Options{Chart: path, KubeVersion: kube})
	require.NoError(t, err)
	assert.Equal(t, []string{
		"replicas.single", "rollout.max-unavailable", "probes.startup", "probes.shared-path",
		"probes.liveness-tolerance", "shutdown.prestop", "disruption.pdb",
	}, names(t, r.Objects, kube))

	// With more replicas, the missing spread shows too.
	r, err = render.Render(render.Options{Chart: filepath.Join(dir, "demo"), KubeVersion: kube, Values: map[string]any{"replicaCount": 3}})
	require.NoError(t, err)
	got := names(t, r.Objects, kube)
	assert.Contains(t, got, "spread.nodes")
}

// Every rule fails on a broken input: one change to the chart's compliant output per rule, and the table
// covers every rule rules.go can report.
func TestEveryRuleFails(t *testing.T) {
	shown := map[string]bool{}
	for _, tc := range []struct {
		rule   string
		kube   string
		change func(objs []runtime.Object) []runtime.Object
	}{
		{"replicas.single", kube, func(o []runtime.Object) []runtime.Object { deployment(o).Spec.Replicas = ptr(int32(1)); return o }},
		{"rollout.recreate", kube, func(o []runtime.Object) []runtime.Object {
			deployment(o).Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
			return o
		}},
		{"rollout.max-unavailable", kube, func(o []runtime.Object) []runtime.Object {
			deployment(o).Spec.Strategy.RollingUpdate.MaxUnavailable = ptr(intstr.FromInt32(1))
			return o
		}},
		{"rollout.max-surge", kube, func(o []runtime.Object) []runtime.Object {
			deployment(o).Spec.Strategy.RollingUpdate.MaxSurge = ptr(intstr.FromInt32(0))
			return o
		}},
		{"probes.readiness", kube, func(o []runtime.Object) []runtime.Object { container(o).ReadinessProbe = nil; return o }},
		{"probes.liveness", kube, func(o []runtime.Object) []runtime.Object { container(o).LivenessProbe = nil; return o }},
		{"probes.startup", kube, func(o []runtime.Object) []runtime.Object { container(o).StartupProbe = nil; return o }},
		{"probes.shared-path", kube, func(o []runtime.Object) []runtime.Object {
			c := container(o)
			c.LivenessProbe.HTTPGet.Path = c.ReadinessProbe.HTTPGet.Path
			return o
		}},
		{"probes.liveness-tolerance", kube, func(o []runtime.Object) []runtime.Object {
			c := container(o)
			c.LivenessProbe.PeriodSeconds, c.LivenessProbe.FailureThreshold = c.ReadinessProbe.PeriodSeconds, c.ReadinessProbe.FailureThreshold
			return o
		}},
		{"probes.port", kube, func(o []runtime.Object) []runtime.Object {
			container(o).ReadinessProbe.HTTPGet.Port = intstr.FromString("metrics")
			return o
		}},
		{"shutdown.prestop", kube, func(o []runtime.Object) []runtime.Object { container(o).Lifecycle = nil; return o }},
		{"shutdown.grace", kube, func(o []runtime.Object) []runtime.Object {
			deployment(o).Spec.Template.Spec.TerminationGracePeriodSeconds = ptr(int64(5))
			return o
		}},
		{"shutdown.sleep-version", "1.29.0", func(o []runtime.Object) []runtime.Object { return o }},
		{"disruption.pdb", kube, func(o []runtime.Object) []runtime.Object { return without[*policyv1.PodDisruptionBudget](o) }},
		{"disruption.pdb-count", kube, func(o []runtime.Object) []runtime.Object {
			return append(o, pdb(o).DeepCopy())
		}},
		{"disruption.blocking", kube, func(o []runtime.Object) []runtime.Object {
			pdb(o).Spec.MaxUnavailable = ptr(intstr.FromInt32(0))
			return o
		}},
		{"disruption.empty", kube, func(o []runtime.Object) []runtime.Object {
			pdb(o).Spec.MaxUnavailable, pdb(o).Spec.MinAvailable = nil, nil
			return o
		}},
		{"disruption.all-at-once", kube, func(o []runtime.Object) []runtime.Object {
			pdb(o).Spec.MaxUnavailable = ptr(intstr.FromInt32(2)) // the chart's 2 replicas
			return o
		}},
		{"disruption.all-at-once", kube, func(o []runtime.Object) []runtime.Object {
			pdb(o).Spec.MaxUnavailable = ptr(intstr.FromString("100%"))
			return o
		}},
		{"disruption.all-at-once", kube, func(o []runtime.Object) []runtime.Object {
			pdb(o).Spec.MaxUnavailable, pdb(o).Spec.MinAvailable = nil, ptr(intstr.FromInt32(0))
			return o
		}},
		{"security.privileged", kube, func(o []runtime.Object) []runtime.Object {
			spec := &deployment(o).Spec.Template.Spec
			spec.Containers = append(spec.Containers, corev1.Container{Name: "proxy", Image: "proxy", SecurityContext: &corev1.SecurityContext{Privileged: ptr(true)}})
			return o
		}},
		{"security.root", kube, func(o []runtime.Object) []runtime.Object {
			spec := &deployment(o).Spec.Template.Spec
			spec.InitContainers = append(spec.InitContainers, corev1.Container{Name: "setup", Image: "setup", SecurityContext: &corev1.SecurityContext{RunAsUser: ptr(int64(0))}})
			return o
		}},
		{"security.root", kube, func(o []runtime.Object) []runtime.Object {
			psc := deployment(o).Spec.Template.Spec.SecurityContext
			psc.RunAsNonRoot, psc.RunAsUser = ptr(false), nil // the image's user, which may be root
			container(o).SecurityContext.RunAsNonRoot, container(o).SecurityContext.RunAsUser = nil, nil
			return o
		}},
		{"disruption.unhealthy-policy", kube, func(o []runtime.Object) []runtime.Object {
			pdb(o).Spec.UnhealthyPodEvictionPolicy = nil
			return o
		}},
		{"spread.nodes", kube, func(o []runtime.Object) []runtime.Object {
			deployment(o).Spec.Template.Spec.TopologySpreadConstraints = nil
			return o
		}},
		{"replicas.hpa-null", kube, func(o []runtime.Object) []runtime.Object {
			o = autoscaled(t, o)
			delete(deployment(o).Annotations, rules.ReplicasAnnotation)
			return o
		}},
		{"replicas.below-hpa-minimum", kube, func(o []runtime.Object) []runtime.Object {
			o = autoscaled(t, o)
			deployment(o).Spec.Replicas = ptr(int32(1))
			return o
		}},
	} {
		shown[tc.rule] = true
		t.Run(tc.rule, func(t *testing.T) {
			assert.Contains(t, names(t, tc.change(goService(t)), tc.kube), tc.rule)
		})
	}
	src, err := os.ReadFile("rules.go")
	require.NoError(t, err)
	all := regexp.MustCompile(`w\.add\("([a-z.-]+)"`).FindAllStringSubmatch(string(src), -1)
	require.NotEmpty(t, all)
	for _, m := range all {
		assert.True(t, shown[m[1]], "rule %s is shown failing in this table", m[1])
	}
}

// autoscaled is the chart's output with autoscaling on (minimum 3): the Deployment leaves replicas to
// the HPA and says so.
func autoscaled(t *testing.T, _ []runtime.Object) []runtime.Object {
	t.Helper()
	r, err := render.Render(render.Options{Chart: "../charts/go-service", KubeVersion: kube,
		Values: map[string]any{"autoscaling": map[string]any{"enabled": true, "minReplicas": 3}}})
	require.NoError(t, err)
	return r.Objects
}

func TestViolationNamesObjectFieldAndFix(t *testing.T) {
	objs := goService(t)
	deployment(objs).Spec.Strategy.RollingUpdate.MaxUnavailable = ptr(intstr.FromString("50%"))
	v, err := rules.Check(objs, rules.Options{KubeVersion: kube})
	require.NoError(t, err)
	require.Len(t, v, 1)
	assert.Equal(t, rules.Violation{
		Rule:    "rollout.max-unavailable",
		Object:  "Deployment/default/test-go-service",
		Field:   "spec.strategy.rollingUpdate.maxUnavailable",
		Message: "maxUnavailable 50% is not 0: a rollout goes below full capacity",
		Fix:     "Set maxUnavailable to 0",
	}, v[0])
	assert.Equal(t, "Deployment/default/test-go-service spec.strategy.rollingUpdate.maxUnavailable: maxUnavailable 50% is not 0: a rollout goes below full capacity. Set maxUnavailable to 0", v[0].Error())

	_, err = rules.Check(objs, rules.Options{})
	assert.Error(t, err, "the Kubernetes version is required")
}

func ptr[T any](v T) *T { return &v }

func deployment(objs []runtime.Object) *appsv1.Deployment {
	for _, o := range objs {
		if d, ok := o.(*appsv1.Deployment); ok {
			return d
		}
	}
	panic("no Deployment")
}

func container(objs []runtime.Object) *corev1.Container {
	return &deployment(objs).Spec.Template.Spec.Containers[0]
}

func pdb(objs []runtime.Object) *policyv1.PodDisruptionBudget {
	for _, o := range objs {
		if p, ok := o.(*policyv1.PodDisruptionBudget); ok {
			return p
		}
	}
	panic("no PodDisruptionBudget")
}

func without[T runtime.Object](objs []runtime.Object) []runtime.Object {
	var out []runtime.Object
	for _, o := range objs {
		if _, ok := o.(T); !ok {
			out = append(out, o)
		}
	}
	return out
}

// A container is root only when its effective securityContext says so: runAsUser 0, or runAsNonRoot
// false with no UID; a UID other than 0 is not root whatever runAsNonRoot says, and the container's own
// settings win over the pod's.
func TestSecurityRootIsWhatTheContainerRunsAs(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pod, app *corev1.SecurityContext // app: the app container's; pod: only RunAsUser/RunAsNonRoot used
		root     bool
	}{
		{"chart defaults", nil, nil, false},
		{"runAsNonRoot false with a UID", &corev1.SecurityContext{RunAsNonRoot: ptr(false), RunAsUser: ptr(int64(1000))}, nil, false},
		{"the pod's root UID, the container's own UID", &corev1.SecurityContext{RunAsUser: ptr(int64(0))}, &corev1.SecurityContext{RunAsUser: ptr(int64(1000))}, false},
		{"the container's root UID", nil, &corev1.SecurityContext{RunAsUser: ptr(int64(0))}, true},
		{"runAsNonRoot false and no UID", &corev1.SecurityContext{RunAsNonRoot: ptr(false)}, &corev1.SecurityContext{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := goService(t)
			psc := deployment(o).Spec.Template.Spec.SecurityContext
			c := container(o)
			if tc.pod != nil {
				psc.RunAsUser, psc.RunAsNonRoot = tc.pod.RunAsUser, tc.pod.RunAsNonRoot
				c.SecurityContext.RunAsUser, c.SecurityContext.RunAsNonRoot = nil, nil
			}
			if tc.app != nil {
				c.SecurityContext.RunAsUser, c.SecurityContext.RunAsNonRoot = tc.app.RunAsUser, tc.app.RunAsNonRoot
			}
			if tc.root {
				assert.Contains(t, names(t, o, kube), "security.root")
			} else {
				assert.NotContains(t, names(t, o, kube), "security.root")
			}
		})
	}
}
