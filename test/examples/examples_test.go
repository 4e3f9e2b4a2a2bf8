// Package examples runs the example service repositories under examples/ as their teams would: the chart
// is pushed to a real OCI registry on the loopback address their Chart.yaml names, `helm dependency update`
// fetches it from there, and `go test` runs in the example's own module directory, importing the kit by
// module path.
package examples

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/go-service/go-service/internal/repo"
	"github.com/go-service/go-service/test/publish"
	"github.com/go-service/go-service/test/tools"
)

// registryOf finds the loopback registry of a Chart.yaml's go-service dependency.
var registryOf = regexp.MustCompile(`repository: oci://(127\.0\.0\.1:\d+)/charts`)

func TestExamples(t *testing.T) {
	root, err := repo.Root()
	require.NoError(t, err)
	dirs, err := filepath.Glob(filepath.Join(root, "examples", "*", "go.mod"))
	require.NoError(t, err)
	require.NotEmpty(t, dirs, "no example module under examples/")
	for _, gomod := range dirs {
		dir := filepath.Dir(gomod)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			chartYAML, err := os.ReadFile(filepath.Join(dir, "chart", "Chart.yaml"))
			require.NoError(t, err)
			m := registryOf.FindSubmatch(chartYAML)
			require.NotNil(t, m, "the example's chart depends on go-service from a loopback OCI registry")
			h := publish.NewHelm(t)
			registry := publish.StartRegistry(t, string(m[1]))
			repository, out := h.Push(t, filepath.Join(root, "charts", "go-service"), registry)
			t.Logf("pushed to %s: %s", repository, out)
			t.Log(h.Run(t, "dependency", "update", filepath.Join(dir, "chart"), "--plain-http"))

			cmd := exec.Command("go", "test", "-count=1", "-v", "./...")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(tools.Path(t, "helm"))+string(os.PathListSeparator)+os.Getenv("PATH"))
			out2, err := cmd.CombinedOutput()
			t.Logf("go test ./... in %s:\n%s", dir, out2)
			require.NoError(t, err, "the example's own tests")
		})
	}
}
