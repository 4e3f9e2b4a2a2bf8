package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gruntwork-io/terratest/modules/helm"
	"github.com/gruntwork-io/terratest/modules/k8s"
	"github.com/gruntwork-io/terratest/modules/random"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/go-service/go-service/cluster"
	"github.com/go-service/go-service/cluster/image"
	"github.com/go-service/go-service/disrupt"
	"github.com/go-service/go-service/render"
	"github.com/go-service/go-service/rules"
)

const chartDir = "chart"

// The Kubernetes versions this service runs on: the chart is rendered and checked for each.
var kubeVersions = []string{"1.30.0", "1.34.0"}

// requireDependency fails with what to run when `helm dependency update` has not fetched go-service.
func requireDependency(t *testing.T) {
	t.Helper()
	if m, _ := filepath.Glob(filepath.Join(chartDir, "charts", "go-service-*.tgz")); len(m) == 0 {
		t.Fatalf("the go-service dependency is not in %s/charts: run `helm dependency update %s` (see README.md)", chartDir, chartDir)
	}
}

// The release's manifests, rendered in process for each version, keep every zero-downtime rule.
func TestChartKeepsZeroDowntimeRules(t *testing.T) {
	requireDependency(t)
	c, err := render.Load(chartDir)
	require.NoError(t, err)
	for _, v := range kubeVersions {
		t.Run(v, func(t *testing.T) {
			r, err := c.Render(render.Options{KubeVersion: v, ReleaseName: "hello", ValuesFiles: []string{filepath.Join(chartDir, "values.yaml")}})
			require.NoError(t, err)
			d := render.Named[*appsv1.Deployment](t, r, "hello")
			assert.EqualValues(t, 3, *d.Spec.Replicas, "the replica count of values.yaml")
			assert.Equal(t, "hello:1", d.Spec.Template.Spec.Containers[0].Image)
			violations, err := rules.Check(r.Objects, rules.Options{KubeVersion: v, InAppDelayEnv: rules.DefaultInAppDelayEnv})
			require.NoError(t, err)
			for _, v := range violations {
				t.Errorf("%s", v)
			}
		})
	}
}

// Values that would drop requests are caught before they ship: the chart refuses the inconsistent
// ones, and the rules report the risky ones it only warns about.
func TestRiskyValuesAreCaught(t *testing.T) {
	requireDependency(t)
	c, err := render.Load(chartDir)
	require.NoError(t, err)
	for _, tc := range []struct {
		name    string
		hello   map[string]any
		refused string // a part of the chart's refusal
		rule    string // or the rule that reports it
	}{
		{"a grace period shorter than preStop and drain", map[string]any{"shutdown": map[string]any{"terminationGracePeriodSeconds": 3}}, "terminationGracePeriodSeconds", ""},
		{"one replica", map[string]any{"replicaCount": 1}, "", "replicas.single"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := c.Render(render.Options{ReleaseName: "hello", Values: map[string]any{"hello": tc.hello}})
			if tc.refused != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.refused)
				return
			}
			require.NoError(t, err)
			violations, err := rules.Check(r.Objects, rules.Options{KubeVersion: render.DefaultKubeVersion, InAppDelayEnv: rules.DefaultInAppDelayEnv})
			require.NoError(t, err)
			var got []string
			for _, v := range violations {
				got = append(got, v.Rule)
			}
			assert.Contains(t, got, tc.rule)
		})
	}
}

// A rolling update of the service under load loses no request. The cluster is KUBECONFIG's (the images
// hello:1 and hello:2 and the load image named by HELLO_LOAD_IMAGE must be in it), or, with no
// KUBECONFIG inside the go-service repository, its local cluster, started and loaded here.
func TestRolloutUnderLoad(t *testing.T) {
	requireDependency(t)
	kubeconfig, loadImage := os.Getenv("KUBECONFIG"), os.Getenv("HELLO_LOAD_IMAGE")
	if kubeconfig == "" {
		kubeconfig, loadImage = localCluster(t)
	}
	require.NotEmpty(t, loadImage, "HELLO_LOAD_IMAGE: an image of go-service's binary (github.com/go-service/go-service/cmd/go-service) for the in-cluster load clients")

	ns := "hello-" + strings.ToLower(random.UniqueId())
	kubectl := k8s.NewKubectlOptions("", kubeconfig, ns)
	k8s.CreateNamespace(t, kubectl, ns)
	defer k8s.DeleteNamespace(t, kubectl, ns)
	opts := &helm.Options{KubectlOptions: kubectl, ValuesFiles: []string{filepath.Join(chartDir, "values.yaml")},
		ExtraArgs: map[string][]string{"install": {"--wait", "--timeout", "3m"}}}
	helm.Install(t, opts, chartDir, "hello")
	defer helm.Delete(t, opts, "hello", true)

	tr := disrupt.Start(t, disrupt.Target{Helm: opts, Release: "hello", Deployment: "hello", Service: "hello"},
		disrupt.Options{LoadImage: loadImage, Reports: disrupt.NewReports("results")})
	tr.Upgrade(t, "rollout to hello:2", chartDir, map[string]string{"hello.image.tag": "2"})
	for _, run := range tr.Stop(t, disrupt.Scenario{Name: "hello rolling update"}) {
		t.Logf("%s: %d sent, %d failed", run.Client, run.Load.Sent, run.Load.Failed)
	}
}

// localCluster starts (or reuses) go-service's local cluster and loads the service's two versions and
// the load image into it. It works inside the go-service repository (the cluster's components are built
// from it), as root.
func localCluster(t *testing.T) (kubeconfig, loadImage string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	c, err := cluster.Up(ctx, cluster.Options{Nodes: 2})
	require.NoError(t, err, "no KUBECONFIG given, and the local cluster did not start")
	out := t.TempDir()
	specs := []image.Spec{
		{Ref: "hello:1", Package: ".", Binary: "/hello"},
		{Ref: "hello:2", Package: ".", Binary: "/hello"},
		{Ref: "go-service-load:1", Package: "github.com/go-service/go-service/cmd/go-service", Tags: []string{"service_only"}, Binary: "/go-service"},
	}
	for _, s := range specs {
		tar, err := image.Build(ctx, s, out)
		require.NoError(t, err, s.Ref)
		require.NoError(t, c.LoadImage(ctx, tar), fmt.Sprintf("load %s", s.Ref))
	}
	return c.Kubeconfig, "go-service-load:1"
}
