package chart_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/chartutil"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/go-service/go-service/rules"
	"github.com/go-service/go-service/test/render"
	"github.com/go-service/go-service/test/tools"
)

// The chart consumed from a classic chart repository, as a team's umbrella chart does: the released
// versions of chart-repo/ plus this version packaged (make package), indexed with --merge as
// `make release` does, and served over HTTP on loopback; an umbrella chart that takes this version and
// the released 0.2.0 from that http:// repository runs `helm dependency update`, then renders, and both
// services keep the zero-downtime rules.
func TestChartRepository(t *testing.T) {
	t.Parallel()
	helm := tools.Path(t, "helm")
	chartDir, err := render.ChartDir()
	require.NoError(t, err)
	meta, err := chartutil.LoadChartfile(filepath.Join(chartDir, "Chart.yaml"))
	require.NoError(t, err)
	helmEnv := append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(helm, args...)
		cmd.Env = helmEnv
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "helm %v:\n%s", args, out)
	}

	repoDir := t.TempDir()
	require.NoError(t, os.CopyFS(repoDir, os.DirFS(filepath.Join(tools.MustRepoRoot(t), "chart-repo"))))
	run("package", chartDir, "-d", repoDir)
	run("repo", "index", repoDir, "--merge", filepath.Join(repoDir, "index.yaml"))
	srv := httptest.NewServer(http.FileServer(http.Dir(repoDir)))
	defer srv.Close()

	umbrella := filepath.Join(t.TempDir(), "shop")
	require.NoError(t, os.MkdirAll(umbrella, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(umbrella, "Chart.yaml"), fmt.Appendf(nil, `apiVersion: v2
name: shop
version: 1.0.0
dependencies:
  - name: go-service
    alias: api
    version: %s
    repository: %s
  - name: go-service
    alias: legacy
    version: 0.2.0
    repository: %s
`, meta.Version, srv.URL, srv.URL), 0o644))
	run("dependency", "update", umbrella)
	archives, err := filepath.Glob(filepath.Join(umbrella, "charts", "*.tgz"))
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"go-service-" + meta.Version + ".tgz", "go-service-0.2.0.tgz"}, []string{filepath.Base(archives[0]), filepath.Base(archives[1])})

	r := mustRender(t, render.Options{Chart: umbrella, ReleaseName: "shop"})
	for _, name := range []string{"shop-api", "shop-legacy"} {
		d := render.Named[*appsv1.Deployment](t, r, name)
		v, err := rules.Check(onlyRelease(r, name[len("shop-"):]).Objects, rules.Options{KubeVersion: render.DefaultKubeVersion})
		require.NoError(t, err)
		assert.Empty(t, v, "%s from the repository keeps the rules", d.Name)
	}
	assert.Equal(t, "api-"+meta.Version, render.Named[*appsv1.Deployment](t, r, "shop-api").Labels["helm.sh/chart"], "this version, under its alias")
	assert.Equal(t, "legacy-0.2.0", render.Named[*appsv1.Deployment](t, r, "shop-legacy").Labels["helm.sh/chart"], "the released 0.2.0")
}
