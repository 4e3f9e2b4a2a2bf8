package chart_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/chartutil"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/go-service/go-service/rules"
	"github.com/go-service/go-service/test/publish"
	"github.com/go-service/go-service/test/render"
	"github.com/go-service/go-service/test/tools"
)

// The chart consumed as a team's umbrella chart consumes it, from each kind of repository on loopback:
//   - a classic chart repository: the released versions of chart-repo/ plus this version, packaged and
//     indexed with --merge as `make release` does, served over HTTP;
//   - an OCI registry (CNCF Distribution), this version pushed with `helm push`.
//
// The umbrella chart runs `helm dependency update`, renders, and its services keep the zero-downtime rules.
func TestChartRepositories(t *testing.T) {
	t.Parallel()
	chartDir, err := render.ChartDir()
	require.NoError(t, err)
	meta, err := chartutil.LoadChartfile(filepath.Join(chartDir, "Chart.yaml"))
	require.NoError(t, err)
	h := publish.NewHelm(t)

	repoDir := t.TempDir()
	require.NoError(t, os.CopyFS(repoDir, os.DirFS(filepath.Join(tools.MustRepoRoot(t), "chart-repo"))))
	h.Package(t, chartDir, repoDir)
	repoURL := h.ServeRepository(t, repoDir)

	registry, out := h.Push(t, chartDir, publish.StartRegistry(t, ""))
	assert.Contains(t, out, "Pushed: "+strings.TrimPrefix(registry, "oci://")+"/go-service:"+meta.Version)

	for _, tc := range []struct {
		name   string
		deps   []publish.Dependency
		charts map[string]string // Deployment -> helm.sh/chart label
	}{
		{"http repository", []publish.Dependency{{Alias: "api", Version: meta.Version, Repository: repoURL}, {Alias: "legacy", Version: "0.2.0", Repository: repoURL}},
			map[string]string{"shop-api": "api-" + meta.Version, "shop-legacy": "legacy-0.2.0"}},
		{"oci registry", []publish.Dependency{{Alias: "api", Version: meta.Version, Repository: registry}},
			map[string]string{"shop-api": "api-" + meta.Version}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			umbrella := h.Umbrella(t, nil, tc.deps...)
			r := mustRender(t, render.Options{Chart: umbrella, ReleaseName: "shop"})
			for name, label := range tc.charts {
				d := render.Named[*appsv1.Deployment](t, r, name)
				assert.Equal(t, label, d.Labels["helm.sh/chart"])
				v, err := rules.Check(onlyRelease(r, d.Labels["app.kubernetes.io/name"]).Objects, rules.Options{KubeVersion: render.DefaultKubeVersion})
				require.NoError(t, err)
				assert.Empty(t, v, "%s keeps the rules", name)
			}
			assert.Len(t, render.All[*appsv1.Deployment](r), len(tc.charts))
		})
	}
}
