package chart_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-service/go-service/test/render"
)

// ciValuesFiles returns charts/go-service/ci/*-values.yaml: the realistic configurations that lint, ct and
// the golden files cover.
func ciValuesFiles(tb testing.TB) []string {
	tb.Helper()
	dir, err := render.ChartDir()
	require.NoError(tb, err)
	files, err := filepath.Glob(filepath.Join(dir, "ci", "*-values.yaml"))
	require.NoError(tb, err)
	require.NotEmpty(tb, files, "no ci/*-values.yaml")
	return files
}

// goldenText is what a golden file holds: the manifest, the hooks, and NOTES.txt as a comment.
func goldenText(r *render.Result) string {
	var b strings.Builder
	b.WriteString(strings.TrimSpace(r.Manifest))
	b.WriteString("\n")
	for _, h := range r.Hooks {
		fmt.Fprintf(&b, "---\n# Source: %s (hook: %v)\n%s\n", h.Path, h.Events, strings.TrimSpace(h.Manifest))
	}
	b.WriteString("---\n# NOTES.txt\n")
	for _, line := range strings.Split(strings.TrimRight(r.Notes, "\n"), "\n") {
		b.WriteString(strings.TrimRight("# "+line, " ") + "\n")
	}
	return b.String()
}

// Every ci values file, rendered for every Kubernetes version, matches its golden file. Run
// `go test ./test/chart -run TestGolden -update` (or `make golden`) after an intended change and review
// the diff.
func TestGolden(t *testing.T) {
	t.Parallel()
	for _, file := range ciValuesFiles(t) {
		name := strings.TrimSuffix(filepath.Base(file), "-values.yaml")
		for _, kube := range render.KubeVersions {
			t.Run(name+"/kube-"+kube, func(t *testing.T) {
				t.Parallel()
				r := mustRender(t, render.Options{
					KubeVersion: kube, ReleaseName: "golden", Namespace: "golden", ValuesFiles: []string{file},
				})
				got := goldenText(r)
				path := filepath.Join("testdata", "golden", name, "kube-"+kube+".yaml")
				if *update {
					require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
					require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
				}
				want, err := os.ReadFile(path)
				require.NoError(t, err, "missing golden file: run with -update")
				assert.Equal(t, string(want), got, "%s differs: run `make golden` and review the diff", path)
			})
		}
	}
}

// Each realistic configuration also renders a release that meets the zero-downtime rules (where the
// configuration means to: all of them do).
func TestCIValuesAreZeroDowntime(t *testing.T) {
	t.Parallel()
	for _, file := range ciValuesFiles(t) {
		for _, kube := range render.KubeVersions {
			t.Run(filepath.Base(file)+"/kube-"+kube, func(t *testing.T) {
				t.Parallel()
				r := mustRender(t, render.Options{KubeVersion: kube, ValuesFiles: []string{file}})
				assert.Empty(t, render.ZeroDowntimeViolations(r, kube))
			})
		}
	}
}
