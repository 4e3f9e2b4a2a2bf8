package live

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gruntwork-io/terratest/modules/helm"
	"github.com/gruntwork-io/terratest/modules/k8s"
	"github.com/gruntwork-io/terratest/modules/logger"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/go-service/go-service/disrupt"
	"github.com/go-service/go-service/test/kube"
	"github.com/go-service/go-service/test/tools"
)

// A deployer is one way teams put the chart on a cluster: a command that installs or upgrades the
// release "svc" in a namespace with the given values, run the same way for the install and for the change.
type deployer struct {
	name string
	// deploy installs (first call) or changes (later calls) the release; an error is the deployer's own
	// (e.g. a field-manager conflict), with its output.
	deploy func(t *testing.T, d *deployment, values map[string]string) error
	// afterChange runs after the change (a rollback, for the Helm 4 rollback deployer).
	afterChange func(t *testing.T, d *deployment) error
}

// deployment is one release under test: its namespace and chart.
type deployment struct{ ns, chart string }

// run runs a command (a helm CLI, kubectl) against the test cluster; its error carries the output.
func run(t *testing.T, stdin []byte, name string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig, "HELM_CONFIG_HOME="+t.TempDir(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %v:\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return out, nil
}

// setArgs are the values as --set flags, in a stable order, over the suite's base values.
func setArgs(values map[string]string) []string {
	all := map[string]string{}
	for k, v := range baseValues {
		all[k] = v
	}
	for k, v := range values {
		all[k] = v
	}
	var args []string
	for k, v := range all {
		args = append(args, "--set="+k+"="+v)
	}
	sort.Strings(args)
	return args
}

// helmCLI deploys with `helm upgrade --install` of the named CLI (helm: Helm 4, helm3: Helm 3), waiting as
// users do.
func helmCLI(cli string) func(t *testing.T, d *deployment, values map[string]string) error {
	return func(t *testing.T, d *deployment, values map[string]string) error {
		t.Helper()
		args := append([]string{"upgrade", "--install", "svc", d.chart, "--namespace", d.ns, "--wait", "--timeout", "5m"}, setArgs(values)...)
		_, err := run(t, nil, tools.Path(t, cli), args...)
		return err
	}
}

// templateApply renders with Helm 4's `helm template` for the cluster's version (no cluster access, as
// Argo CD renders) and applies the manifest with kubectl: client-side (kubectl apply) or server-side under
// Argo CD's field manager with --force-conflicts, as Argo CD's server-side sync does.
func templateApply(serverSide bool) func(t *testing.T, d *deployment, values map[string]string) error {
	return func(t *testing.T, d *deployment, values map[string]string) error {
		t.Helper()
		v, err := env.Client.Discovery().ServerVersion()
		require.NoError(t, err)
		args := append([]string{"template", "svc", d.chart, "--namespace", d.ns, "--skip-tests", "--kube-version", v.GitVersion}, setArgs(values)...)
		manifest, err := run(t, nil, tools.Path(t, "helm"), args...)
		require.NoError(t, err, "the render")
		apply := []string{"apply", "--namespace", d.ns, "-f", "-"}
		if serverSide {
			apply = append(apply, "--server-side", "--field-manager", "argocd-controller", "--force-conflicts")
		}
		_, err = run(t, manifest, kubectlOnPath(t), apply...)
		return err
	}
}

// The deployers of the scale check: Helm 4 (upgrade, and rollback), Helm 3, and the GitOps render applied
// client-side and server-side.
var deployers = []deployer{
	{name: "helm 4 upgrade", deploy: helmCLI("helm")},
	{name: "helm 4 rollback", deploy: helmCLI("helm"), afterChange: func(t *testing.T, d *deployment) error {
		_, err := run(t, nil, tools.Path(t, "helm"), "rollback", "svc", "1", "--namespace", d.ns, "--wait", "--timeout", "5m")
		return err
	}},
	{name: "helm 3 upgrade", deploy: helmCLI("helm3")},
	{name: "helm template, kubectl apply client-side", deploy: templateApply(false)},
	{name: "helm template, server-side apply as Argo CD", deploy: templateApply(true)},
}

// autoscaled are the values of the scale check: an HPA of 2 to 6 replicas; the change is a Deployment
// annotation, so the Deployment is applied again by every deployer without rolling its pods. The HPA acts
// (metrics-server serves the pods' CPU) but never scales down (scaleDown.selectPolicy Disabled): the idle
// pods would otherwise take a scale the test moved back to 2, and a lower scale would not tell the
// deployer's doing from the HPA's. TestAutoscalerUnderRollout is the HPA scaling both ways.
var autoscaled = map[string]string{"autoscaling.enabled": "true", "autoscaling.minReplicas": "2", "autoscaling.maxReplicas": "6",
	"autoscaling.behavior.scaleDown.selectPolicy": "Disabled"}

// scaleOutcome is what one deployer did to a scale set as the HPA sets it.
type scaleOutcome struct {
	// before is the scale set through the scale subresource; after is the Deployment's spec.replicas once
	// the deployer's change (and rollback) was done; least is the fewest spec.replicas seen meanwhile.
	before, after, least int32
	// err is the deployer's error on the change (a field-manager conflict), nil when it succeeded.
	err error
}

// keepScale installs the chart with a deployer (autoscaling on), waits for the HPA to take the Deployment
// to its minimum, moves the scale to 5 through the scale subresource (an Update, as the HPA controller
// writes it), deploys a change with the same deployer (and rolls back, for the rollback deployer), and
// returns the scale before and after. A deployer error (a field-manager conflict) fails the test.
func keepScale(t *testing.T, dep deployer, chart string) scaleOutcome {
	t.Helper()
	appImage(t)
	d := &deployment{ns: env.Namespace(t, "deployer"), chart: chart}
	ctx := context.Background()
	deployments := env.Client.AppsV1().Deployments(d.ns)
	steps := []struct {
		name string
		do   func() error
	}{
		{"install with autoscaling on", func() error {
			return dep.deploy(t, d, withValues(autoscaled, "deploymentAnnotations.change", "first"))
		}},
		{"the HPA holds the minimum", func() error { return waitScale(ctx, d.ns, 2) }},
		{"the scale moves to 5 as the HPA moves it", func() error {
			_, err := deployments.UpdateScale(ctx, "svc-go-service", &autoscalingv1.Scale{
				ObjectMeta: metav1.ObjectMeta{Name: "svc-go-service", Namespace: d.ns},
				Spec:       autoscalingv1.ScaleSpec{Replicas: 5},
			}, metav1.UpdateOptions{FieldManager: "go-service-live-hpa"})
			if err != nil {
				return err
			}
			return waitScale(ctx, d.ns, 5)
		}},
	}
	for _, s := range steps {
		require.NoError(t, s.do(), "%s: %s\n%s", dep.name, s.name, env.Describe(d.ns))
	}
	least := int32(5)
	watch, stopWatch := watchScale(t, d.ns, &least)
	changeErr := dep.deploy(t, d, withValues(autoscaled, "deploymentAnnotations.change", "second"))
	if changeErr == nil && dep.afterChange != nil {
		changeErr = dep.afterChange(t, d)
	}
	// The deployers have returned; a scale they lowered is seen at once, and the Deployment controller has
	// observed the last change when its observedGeneration reaches its generation.
	require.NoError(t, kube.Poll(ctx, time.Minute, 250*time.Millisecond, func() (bool, error) {
		dp, err := deployments.Get(ctx, "svc-go-service", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return dp.Status.ObservedGeneration >= dp.Generation, nil
	}))
	stopWatch()
	<-watch
	dp, err := deployments.Get(ctx, "svc-go-service", metav1.GetOptions{})
	require.NoError(t, err)
	return scaleOutcome{before: 5, after: *dp.Spec.Replicas, least: least, err: changeErr}
}

// withValues returns values with one more key set.
func withValues(values map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for key, val := range values {
		out[key] = val
	}
	return out
}

// waitScale waits until the Deployment's spec and ready replicas are want and its rollout is complete.
func waitScale(ctx context.Context, ns string, want int32) error {
	var last string
	err := kube.Poll(ctx, 3*time.Minute, 250*time.Millisecond, func() (bool, error) {
		d, err := env.Client.AppsV1().Deployments(ns).Get(ctx, "svc-go-service", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = fmt.Sprintf("spec %d, ready %d, updated %d, generation %d observed %d", *d.Spec.Replicas, d.Status.ReadyReplicas,
			d.Status.UpdatedReplicas, d.Generation, d.Status.ObservedGeneration)
		return *d.Spec.Replicas == want && d.Status.ReadyReplicas == want && d.Status.UpdatedReplicas == want &&
			d.Status.ObservedGeneration >= d.Generation, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %d replicas (%s): %w", want, last, err)
	}
	return nil
}

// watchScale records the fewest spec.replicas of the Deployment until stopped.
func watchScale(t *testing.T, ns string, least *int32) (done <-chan struct{}, stop func()) {
	t.Helper()
	w, err := env.Client.AppsV1().Deployments(ns).Watch(context.Background(), metav1.ListOptions{FieldSelector: "metadata.name=svc-go-service"})
	require.NoError(t, err)
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		for ev := range w.ResultChan() {
			if dp, ok := ev.Object.(*appsv1.Deployment); ok && dp.Spec.Replicas != nil && *dp.Spec.Replicas < *least {
				*least = *dp.Spec.Replicas
			}
		}
	}()
	return ch, w.Stop
}

// 3. The scale is never lowered by a deploy, whatever the deployer: with autoscaling on and the scale moved
// as the HPA moves it, a Helm 4 upgrade, a Helm 4 rollback, a Helm 3 upgrade, the chart's `helm template`
// applied client-side and server-side (as Argo CD) each keep it, with no field-manager conflict. The
// negative control is a copy of the chart that renders replicas at its minimum with autoscaling on (as the
// chart did before): Helm 4's upgrade then conflicts with the HPA's scale, and a GitOps apply lowers it.
func TestScaleKeptByEveryDeployer(t *testing.T) {
	for _, dep := range deployers {
		t.Run(dep.name, func(t *testing.T) {
			t.Parallel()
			got := keepScale(t, dep, chartDir)
			require.NoError(t, got.err, "the deployer changes the release without a conflict")
			assert.Equal(t, got.before, got.after, "the scale after the deploy")
			assert.Equal(t, got.before, got.least, "the fewest replicas while it deployed")
			t.Logf("%s: scale %d before, %d after, fewest %d", dep.name, got.before, got.after, got.least)
		})
	}
	broken := minReplicasChart(t)
	for _, dep := range []deployer{deployers[0], deployers[3]} {
		t.Run("negative control: replicas rendered at the minimum, "+dep.name, func(t *testing.T) {
			t.Parallel()
			got := keepScale(t, dep, broken)
			t.Logf("%s with the broken chart: scale %d before, %d after, fewest %d, error: %v", dep.name, got.before, got.after, got.least, got.err)
			assert.True(t, got.err != nil || got.least < got.before, "the check sees the broken chart: a conflict or a lowered scale")
		})
	}
}

// minReplicasChart is a copy of the chart that renders replicas at the autoscaler's minimum whenever
// autoscaling is on (what the chart rendered without a cluster to read, before it left replicas out).
func minReplicasChart(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "go-service")
	require.NoError(t, os.CopyFS(dir, os.DirFS(chartDir)))
	p := filepath.Join(dir, "templates", "deployment.yaml")
	data, err := os.ReadFile(p)
	require.NoError(t, err)
	const leftOut = "  {{- else if $replicas }}\n  replicas: {{ $replicas }}\n"
	require.Contains(t, string(data), leftOut, "the chart's autoscaled replicas block")
	data = []byte(strings.Replace(string(data), leftOut, "  {{- else }}\n  replicas: {{ include \"go-service.effectiveReplicas\" . }}\n", 1))
	require.NoError(t, os.WriteFile(p, data, 0o644))
	return dir
}

// respectIgnoredReplicas does to a rendered manifest what Argo CD's RespectIgnoreDifferences=true does
// for an ignoreDifferences entry on the Deployment's /spec/replicas: the live value goes into the
// manifest before it is applied.
func respectIgnoredReplicas(t *testing.T, manifest []byte, live int32) []byte {
	t.Helper()
	docs := strings.Split(string(manifest), "\n---\n")
	found := false
	for i, doc := range docs {
		var obj map[string]any
		require.NoError(t, yaml.Unmarshal([]byte(doc), &obj))
		if obj["kind"] != "Deployment" {
			continue
		}
		spec := obj["spec"].(map[string]any)
		spec["replicas"] = live
		out, err := yaml.Marshal(obj)
		require.NoError(t, err)
		docs[i], found = string(out), true
	}
	require.True(t, found, "the manifest has a Deployment")
	return []byte(strings.Join(docs, "\n---\n"))
}

// 3b. A GitOps tool turning autoscaling on for a running release: the render cannot read the live scale,
// and kubectl apply (client-side, as Argo CD syncs by default) removes a field the last applied manifest
// had, which the API server makes 1. With the settings the chart README gives for Argo CD
// (ignoreDifferences on /spec/replicas with RespectIgnoreDifferences=true: the live value is applied), the
// scale is kept through that sync and the next; without them (the control) it drops to one pod.
func TestGitOpsTurnsAutoscalingOn(t *testing.T) {
	concurrent(t)
	for _, respect := range []bool{true, false} {
		name := "RespectIgnoreDifferences"
		if !respect {
			name = "negative control: ignoreDifferences alone"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ns := env.Namespace(t, "gitops")
			ctx := context.Background()
			v, err := env.Client.Discovery().ServerVersion()
			require.NoError(t, err)
			sync := func(values map[string]string) {
				t.Helper()
				args := append([]string{"template", "svc", chartDir, "--namespace", ns, "--skip-tests", "--kube-version", v.GitVersion}, setArgs(values)...)
				manifest, err := run(t, nil, tools.Path(t, "helm"), args...)
				require.NoError(t, err)
				if respect {
					if d, err := env.Client.AppsV1().Deployments(ns).Get(ctx, "svc-go-service", metav1.GetOptions{}); err == nil {
						manifest = respectIgnoredReplicas(t, manifest, *d.Spec.Replicas)
					}
				}
				_, err = run(t, manifest, kubectlOnPath(t), "apply", "--namespace", ns, "-f", "-")
				require.NoError(t, err)
			}
			sync(map[string]string{"replicaCount": "4"})
			require.NoError(t, waitScale(ctx, ns, 4), env.Describe(ns))
			least := int32(4)
			done, stopWatch := watchScale(t, ns, &least)
			sync(autoscaled)
			sync(withValues(autoscaled, "deploymentAnnotations.change", "next"))
			d, err := env.Client.AppsV1().Deployments(ns).Get(ctx, "svc-go-service", metav1.GetOptions{})
			require.NoError(t, err)
			// The HPA (2 to 6) leaves a scale of 4 alone, and raises a scale of 1 to 2 at its next sync.
			if respect {
				require.NoError(t, waitScale(ctx, ns, 4), env.Describe(ns))
			}
			stopWatch()
			<-done
			t.Logf("fewest replicas after autoscaling was turned on: %d (spec %d right after the syncs)", least, *d.Spec.Replicas)
			if respect {
				assert.EqualValues(t, 4, least, "the scale is kept through both syncs")
			} else {
				assert.Less(t, least, int32(2), "the control drops below the minimum")
			}
		})
	}
}

// The suite deploys with the CLI its lane names: Helm 4 by default, Helm 3 in the Helm 3 lane
// (GO_SERVICE_HELM=helm3): the `helm` terratest runs from PATH is that version.
func TestHelmLane(t *testing.T) {
	want := "v4."
	if os.Getenv("GO_SERVICE_HELM") == "helm3" {
		want = "v3."
	}
	p, err := exec.LookPath("helm")
	require.NoError(t, err)
	out, err := exec.Command(p, "version", "--short").CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Logf("helm on PATH: %s, %s", p, strings.TrimSpace(string(out)))
	assert.True(t, strings.HasPrefix(strings.TrimSpace(string(out)), want), "helm on PATH is %s, want %s*", strings.TrimSpace(string(out)), want)
}

// 2. Migration under load: a release installed with Helm 3 is upgraded (every pod replaced), then rolled
// back to its Helm 3 revision, with Helm 4, under the gated load: 0 failed, the scale kept.
func TestMigrationHelm3ToHelm4(t *testing.T) {
	concurrent(t)
	attempts(t, testMigrationHelm3ToHelm4)
}

func testMigrationHelm3ToHelm4(t *testing.T) {
	appImage(t)
	ns := env.Namespace(t, "migrate")
	values := map[string]string{"replicaCount": "3"}
	args := append([]string{"install", "svc", chartDir, "--namespace", ns, "--wait", "--timeout", "5m"}, setArgs(values)...)
	_, err := run(t, nil, tools.Path(t, "helm3"), args...)
	require.NoError(t, err)
	env.WaitRolledOut(t, ns, "svc-go-service", 3, 3*time.Minute)
	r := &release{t: t, ns: ns, name: "svc", chart: chartDir, opts: &helm.Options{
		Logger: logger.Discard, KubectlOptions: k8s.NewKubectlOptions("", env.Kubeconfig, ns), SetValues: map[string]string{},
	}}
	for k, v := range baseValues {
		r.opts.SetValues[k] = v
	}
	for k, v := range values {
		r.opts.SetValues[k] = v
	}
	tr := traffic(t, r)
	tr.Rollout(t, "Helm 4 upgrade of the Helm 3 release", 3*time.Minute, func() {
		r.upgrade(map[string]string{"podAnnotations.rollout": "helm4"})
	})
	tr.Settle()
	tr.Rollout(t, "Helm 4 rollback to the Helm 3 revision", 3*time.Minute, func() { helm.Rollback(t, r.opts, r.name, "1") })
	stop(t, tr, "Helm 3 release upgraded, then rolled back, with Helm 4", disrupt.ZeroFailures, rolloutFloor(2, 3, 1, 5))
	assert.EqualValues(t, 3, *r.deployment().Spec.Replicas, "the scale is kept")
	_, rolledBack := r.pods()[0].Annotations["rollout"]
	assert.False(t, rolledBack, "the pods run the Helm 3 revision's template again")
	hist, err := helm.RunHelmCommandAndGetOutputE(t, r.opts, "history", r.name)
	require.NoError(t, err)
	t.Logf("release history:\n%s", hist)
	assert.Contains(t, hist, "Rollback to 1")
}
