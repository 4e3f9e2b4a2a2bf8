// Package render renders a Helm chart in-process with the Helm Go SDK, for an explicit Kubernetes
// version, and decodes every document strictly into typed Kubernetes objects: an unknown or duplicate
// field is an error, not a silently dropped value. The render suite and the live suite share it.
package render

import (
	"bufio"
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/go-service/go-service/test/tools"
)

// KubeVersions are the Kubernetes versions the suites render for: the chart's minimum, the versions where
// its output changes (native preStop sleep at 1.30, unhealthyPodEvictionPolicy at 1.31, sleep GA at 1.34)
// and the newest.
var KubeVersions = []string{"1.27.0", "1.29.0", "1.30.0", "1.31.0", "1.34.0", "1.37.0"}

// DefaultKubeVersion is used when Options.KubeVersion is empty.
const DefaultKubeVersion = "1.34.0"

// Options says what to render.
type Options struct {
	// Chart is the chart directory (default: charts/go-service).
	Chart string
	// KubeVersion is the cluster version the chart is rendered for (default DefaultKubeVersion).
	KubeVersion string
	// APIVersions are extra API versions the cluster serves, beyond the built-in groups.
	APIVersions []string
	// ReleaseName and Namespace default to "test" and "default".
	ReleaseName string
	Namespace   string
	// ValuesFiles are read in order, then Values is merged over them (like -f then --set).
	ValuesFiles []string
	Values      map[string]any
	// IsUpgrade renders as `helm upgrade` would.
	IsUpgrade bool
	// SubchartNotes renders the NOTES.txt of dependencies too (helm --render-subchart-notes).
	SubchartNotes bool
}

// Result is one render.
type Result struct {
	// Manifest is the rendered manifest (hooks excluded), as `helm template` prints it.
	Manifest string
	// Hooks are the rendered hook documents (e.g. the helm test pod).
	Hooks []*release.Hook
	// Notes is the rendered NOTES.txt.
	Notes string
	// Objects are the decoded documents of Manifest, then of Hooks, in order.
	Objects []runtime.Object
}

var (
	chartsMu sync.Mutex
	charts   = map[string]*chart.Chart{}
)

// ChartDir returns the absolute path of charts/go-service.
func ChartDir() (string, error) {
	root, err := tools.RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "charts", "go-service"), nil
}

// loadChart loads a chart directory. Charts without dependencies are cached: rendering never mutates
// them. A chart with dependencies is loaded afresh each time, because Helm resolves aliases by rewriting
// the loaded chart's dependency list in place.
func loadChart(dir string) (*chart.Chart, error) {
	chartsMu.Lock()
	defer chartsMu.Unlock()
	if c, ok := charts[dir]; ok {
		return c, nil
	}
	c, err := loader.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", dir, err)
	}
	if len(c.Metadata.Dependencies) == 0 {
		charts[dir] = c
	}
	return c, nil
}

// Render renders the chart. A template `fail`, a schema violation or a document that does not decode
// strictly is returned as an error.
func Render(opts Options) (*Result, error) {
	dir := opts.Chart
	if dir == "" {
		var err error
		if dir, err = ChartDir(); err != nil {
			return nil, err
		}
	}
	chrt, err := loadChart(dir)
	if err != nil {
		return nil, err
	}
	vals, err := MergeValues(opts.ValuesFiles, opts.Values)
	if err != nil {
		return nil, err
	}
	kv := opts.KubeVersion
	if kv == "" {
		kv = DefaultKubeVersion
	}
	kubeVersion, err := chartutil.ParseKubeVersion(kv)
	if err != nil {
		return nil, fmt.Errorf("kube version %q: %w", kv, err)
	}

	install := action.NewInstall(&action.Configuration{})
	install.DryRun = true
	install.ClientOnly = true
	install.Replace = true
	install.IncludeCRDs = true
	install.IsUpgrade = opts.IsUpgrade
	install.SubNotes = opts.SubchartNotes
	install.ReleaseName = defaultString(opts.ReleaseName, "test")
	install.Namespace = defaultString(opts.Namespace, "default")
	install.KubeVersion = kubeVersion
	install.APIVersions = append(chartutil.VersionSet{}, opts.APIVersions...)
	install.DisableOpenAPIValidation = true

	rel, err := install.Run(chrt, vals)
	if err != nil {
		return nil, err
	}
	res := &Result{Manifest: rel.Manifest, Hooks: rel.Hooks, Notes: rel.Info.Notes}
	objs, err := Decode(rel.Manifest)
	if err != nil {
		return res, fmt.Errorf("manifest: %w", err)
	}
	res.Objects = objs
	for _, h := range rel.Hooks {
		objs, err := Decode(h.Manifest)
		if err != nil {
			return res, fmt.Errorf("hook %s: %w", h.Path, err)
		}
		res.Objects = append(res.Objects, objs...)
	}
	return res, nil
}

// MustRender renders or fails the test.
func MustRender(tb testing.TB, opts Options) *Result {
	tb.Helper()
	res, err := Render(opts)
	if err != nil {
		tb.Fatalf("render (kube %s): %v", defaultString(opts.KubeVersion, DefaultKubeVersion), err)
	}
	return res
}

// MergeValues reads values files in order and merges overrides over them, as Helm merges -f and --set.
func MergeValues(files []string, overrides map[string]any) (map[string]any, error) {
	base := map[string]any{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := yaml.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("values file %s: %w", f, err)
		}
		base = chartutil.CoalesceTables(m, base)
	}
	if overrides != nil {
		// Round-trip so that overrides carry the same types as a values file (float64 numbers), and so
		// the caller's map is never shared with the render. Through JSON, which YAML reads: it escapes
		// every control character, where a YAML writer leaves some (U+0085) raw and changes the string.
		data, err := stdjson.Marshal(overrides)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := stdjson.Unmarshal(data, &m); err != nil {
			return nil, err
		}
		base = mergeMaps(base, m)
	}
	return base, nil
}

// mergeMaps merges b over a: maps recursively, anything else (including explicit nulls) replaced.
func mergeMaps(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if bm, ok := v.(map[string]any); ok {
			if am, ok := out[k].(map[string]any); ok {
				out[k] = mergeMaps(am, bm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// Decode splits a multi-document manifest and decodes each document strictly into a typed object.
func Decode(manifest string) ([]runtime.Object, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	var objs []runtime.Object
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if isEmptyDoc(doc) {
			continue
		}
		obj, gvk, err := strictCodec.Decode(doc, nil, nil)
		if err != nil {
			return nil, &DecodeError{Kind: describe(gvk), Doc: firstLines(doc, 12), Err: err}
		}
		objs = append(objs, obj)
	}
	return objs, nil
}

// DecodeError is a rendered document that does not decode strictly into its Kubernetes type.
type DecodeError struct {
	Kind string // the document's group/version/kind, or "document"
	Doc  string // its first lines
	Err  error  // the decoder's own error
}

func (e *DecodeError) Error() string { return fmt.Sprintf("decode %s:\n%s\n%v", e.Kind, e.Doc, e.Err) }

func (e *DecodeError) Unwrap() error { return e.Err }

var strictCodec = json.NewSerializerWithOptions(json.DefaultMetaFactory, Scheme, Scheme,
	json.SerializerOptions{Yaml: true, Strict: true})

func isEmptyDoc(doc []byte) bool {
	for _, line := range bytes.Split(doc, []byte("\n")) {
		l := bytes.TrimSpace(line)
		if len(l) > 0 && l[0] != '#' && string(l) != "---" {
			return false
		}
	}
	return true
}

func describe(gvk *schema.GroupVersionKind) string {
	if gvk == nil {
		return "document"
	}
	return gvk.String()
}

func firstLines(doc []byte, n int) string {
	lines := strings.SplitN(string(doc), "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, "\n")
}

func defaultString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Kinds lists the kinds of the rendered objects, sorted, for messages.
func (r *Result) Kinds() []string {
	var kinds []string
	for _, o := range r.Objects {
		kinds = append(kinds, o.GetObjectKind().GroupVersionKind().Kind)
	}
	sort.Strings(kinds)
	return kinds
}

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
		if e.IsDir() {
			continue // charts/ and templates of the umbrella are not needed here
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
	helm := tools.Path(tb, "helm")
	cmd := exec.Command(helm, "dependency", "build", dst)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+tb.TempDir(), "HELM_CONFIG_HOME="+tb.TempDir(), "HELM_DATA_HOME="+tb.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("helm dependency build %s: %v\n%s", dst, err, out)
	}
	return dst
}

var relativeRepo = regexp.MustCompile(`repository: file://[./]*charts/go-service`)
