package live

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gruntwork-io/terratest/modules/helm"
	"github.com/gruntwork-io/terratest/modules/k8s"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/chartutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/go-service/go-service/test/publish"
	"github.com/go-service/go-service/test/render"
)

// 18. The chart installed from where users get it: this version pushed to a real OCI registry (CNCF
// Distribution on loopback), and served from a classic chart repository (index.yaml over HTTP on
// loopback). For each, the umbrella chart takes its two services from there, runs
// `helm dependency update`, and installs on the cluster with terratest; both services roll out.
func TestInstallFromRepositories(t *testing.T) {
	appImage(t)
	chartDir, err := render.ChartDir()
	require.NoError(t, err)
	meta, err := chartutil.LoadChartfile(filepath.Join(chartDir, "Chart.yaml"))
	require.NoError(t, err)
	h := publish.NewHelm(t)
	registry, _ := h.Push(t, chartDir, publish.StartRegistry(t, ""))
	repoDir := t.TempDir()
	h.Package(t, chartDir, repoDir)
	repoURL := h.ServeRepository(t, repoDir)

	values, err := os.ReadFile(filepath.Join("testdata", "shop", "values.yaml"))
	require.NoError(t, err)

	for _, tc := range []struct{ name, repository string }{
		{"oci registry", registry},
		{"http repository", repoURL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			umbrella := h.Umbrella(t, values, publish.Dependency{Alias: "api", Version: meta.Version, Repository: tc.repository}, publish.Dependency{Alias: "worker", Version: meta.Version, Repository: tc.repository})

			ns := env.Namespace(t, "repos")
			opts := &helm.Options{KubectlOptions: k8s.NewKubectlOptions("", env.Kubeconfig, ns),
				ExtraArgs: map[string][]string{"install": {"--wait", "--timeout", "5m"}}}
			helm.Install(t, opts, umbrella, "shop")
			t.Cleanup(func() { helm.Delete(t, opts, "shop", true) })
			for name, replicas := range map[string]int32{"shop-api": 3, "shop-worker": 2} { // testdata/shop/values.yaml
				env.WaitRolledOut(t, ns, name, replicas, 3*time.Minute)
				d, err := env.Client.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
				require.NoError(t, err)
				assert.Equal(t, name[len("shop-"):]+"-"+meta.Version, d.Labels["helm.sh/chart"], "%s from the published chart", name)
				assert.EqualValues(t, d.Status.Replicas, d.Status.ReadyReplicas)
			}
		})
	}
}
