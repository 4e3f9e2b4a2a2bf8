// Package render is this repository's use of the public render kit (github.com/go-service/go-service/render)
// for its own suites: it renders charts/go-service by default, loaded once per process, and keeps the
// helpers that only make sense here (the Kubernetes versions the chart is tested on, the umbrella
// chart built against this checkout).
package render

import (
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"

	kit "github.com/go-service/go-service/render"
	"github.com/go-service/go-service/rules"
	"github.com/go-service/go-service/test/publish"
	"github.com/go-service/go-service/test/tools"
	"k8s.io/apimachinery/pkg/runtime"
)

// KubeVersions are the Kubernetes versions the suites render for: the chart's minimum, the versions where
// its output changes (native preStop sleep at 1.30, unhealthyPodEvictionPolicy at 1.31, sleep GA at 1.34)
// and the newest.
var KubeVersions = []string{"1.27.0", "1.29.0", "1.30.0", "1.31.0", "1.34.0", "1.37.0"}

// DefaultKubeVersion is the kit's default.
const DefaultKubeVersion = kit.DefaultKubeVersion

// Options, Result and DecodeError are the kit's.
type (
	Options     = kit.Options
	Result      = kit.Result
	DecodeError = kit.DecodeError
)

// ChartDir returns the absolute path of charts/go-service.
func ChartDir() (string, error) {
	root, err := tools.RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "charts", "go-service"), nil
}

// repoChart is charts/go-service, loaded once (its schema compiled once) for every render of the process.
var repoChart = sync.OnceValues(func() (*kit.Chart, error) {
	dir, err := ChartDir()
	if err != nil {
		return nil, err
	}
	return kit.Load(dir)
})

// Render renders opts.Chart, or charts/go-service when it is empty.
func Render(opts Options) (*Result, error) {
	if opts.Chart != "" {
		return kit.Render(opts)
	}
	c, err := repoChart()
	if err != nil {
		return nil, err
	}
	return c.Render(opts)
}

// MustRender renders or fails the test.
func MustRender(tb testing.TB, opts Options) *Result {
	tb.Helper()
	res, err := Render(opts)
	if err != nil {
		kv := opts.KubeVersion
		if kv == "" {
			kv = DefaultKubeVersion
		}
		tb.Fatalf("render (kube %s): %v", kv, err)
	}
	return res
}

// Decode and MergeValues are the kit's.
func Decode(manifest string) ([]runtime.Object, error) { return kit.Decode(manifest) }

// MergeValues reads values files in order and merges overrides over them, as Helm merges -f and --set.
func MergeValues(files []string, overrides map[string]any) (map[string]any, error) {
	return kit.MergeValues(files, overrides)
}

// All, One, Named and Has are the kit's.
func All[T runtime.Object](r *Result) []T              { return kit.All[T](r) }
func One[T runtime.Object](tb testing.TB, r *Result) T { tb.Helper(); return kit.One[T](tb, r) }
func Named[T runtime.Object](tb testing.TB, r *Result, name string) T {
	tb.Helper()
	return kit.Named[T](tb, r, name)
}
func Has[T runtime.Object](r *Result) bool { return kit.Has[T](r) }

// ZeroDowntimeViolations checks a release with the rules package and returns each violation's message.
func ZeroDowntimeViolations(r *Result, kubeVersion string) []string {
	v, err := rules.Check(r.Objects, rules.Options{KubeVersion: kubeVersion})
	if err != nil {
		return []string{err.Error()}
	}
	out := make([]string, len(v))
	for i, x := range v {
		out[i] = x.Error()
	}
	return out
}

var relativeRepo = regexp.MustCompile(`repository: file://[./]*charts/go-service`)

// BuildDependencies copies an umbrella chart directory whose dependencies name charts/go-service by a
// relative file:// repository into a temporary directory, points those repositories at the real chart,
// and runs `helm dependency build` there, as a user's CI would. It returns the built chart's directory.
func BuildDependencies(tb testing.TB, umbrellaDir string) string {
	tb.Helper()
	chartDir, err := ChartDir()
	if err != nil {
		tb.Fatal(err)
	}
	dst := tb.TempDir()
	entries, err := os.ReadDir(umbrellaDir)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && e.Name() != "templates" {
			continue // charts/ is built below
		}
		if e.IsDir() {
			copyTemplates(tb, filepath.Join(umbrellaDir, e.Name()), filepath.Join(dst, e.Name()))
			continue
		}
		data, err := os.ReadFile(filepath.Join(umbrellaDir, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		if e.Name() == "Chart.yaml" {
			data = relativeRepo.ReplaceAll(data, []byte("repository: file://"+chartDir))
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	publish.NewHelm(tb).Run(tb, "dependency", "build", dst)
	return dst
}

// copyTemplates copies an umbrella chart's own templates (files, one level) to dst.
func copyTemplates(tb testing.TB, src, dst string) {
	tb.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		tb.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err == nil {
			err = os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644)
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
}
