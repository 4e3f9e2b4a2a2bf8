// Package render renders a Helm chart in process with the Helm Go SDK, for an explicit Kubernetes
// version, and decodes every document strictly into typed Kubernetes objects: an unknown or duplicate
// field is an error, not a silently dropped value.
//
// Load a chart once and render it many times: the chart is read and its values schema compiled once, so
// a suite of value cases costs one template execution each. Errors are Helm's own, word for word (a
// schema violation reads as `helm install` prints it).
package render

import (
	"bufio"
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// DefaultKubeVersion is used when Options.KubeVersion is empty.
const DefaultKubeVersion = "1.34.0"

// Options says what to render.
type Options struct {
	// Chart is the chart directory or archive (used by the package-level Render; Chart.Render ignores it).
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

// Chart is a loaded chart, ready to render many times. It is safe for concurrent use.
type Chart struct {
	dir string
	// chart is the loaded chart of a chart without dependencies; nil for an umbrella chart, which is
	// loaded afresh for each render because Helm resolves aliases by rewriting its dependency list.
	chart *chart.Chart
	// schemas holds the compiled values schema of a chart without dependencies (nil without a schema).
	schema *jsonschema.Schema
	name   string
}

// Load reads a chart directory (or archive) and compiles its values schema.
func Load(dir string) (*Chart, error) {
	c, err := loader.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", dir, err)
	}
	out := &Chart{dir: dir, name: c.Name()}
	if len(c.Metadata.Dependencies) > 0 {
		return out, nil // Helm validates umbrella charts itself, after resolving aliases
	}
	out.chart = c
	if c.Schema != nil {
		if out.schema, err = compileSchema(c.Schema); err != nil {
			return nil, fmt.Errorf("chart %s: values.schema.json: %w", dir, err)
		}
	}
	return out, nil
}

// compileSchema compiles a values schema the way Helm does (chartutil.ValidateAgainstSingleSchema).
func compileSchema(data []byte) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(jsonschema.SchemeURLLoader{"file": jsonschema.FileLoader{}})
	if err := c.AddResource("file:///values.schema.json", doc); err != nil {
		return nil, err
	}
	return c.Compile("file:///values.schema.json")
}

// validate checks the coalesced values against the compiled schema and returns Helm's error, word for word.
func (c *Chart) validate(vals map[string]any) error {
	if c.schema == nil {
		return nil
	}
	err := c.schema.Validate(vals)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		sortCauses(ve)
	}
	msg := strings.TrimPrefix(err.Error(), "jsonschema validation failed with 'file:///values.schema.json#'\n")
	return fmt.Errorf("values don't meet the specifications of the schema(s) in the following chart(s):\n%s:\n%s\n", c.name, msg)
}

// sortCauses orders a validation error's causes by where they are in the values, then by schema
// location, recursively. Helm lists them in map order, which changes from run to run; the kit's
// message has the same lines in a stable order.
func sortCauses(e *jsonschema.ValidationError) {
	sort.SliceStable(e.Causes, func(i, j int) bool {
		a, b := strings.Join(e.Causes[i].InstanceLocation, "/"), strings.Join(e.Causes[j].InstanceLocation, "/")
		if a != b {
			return a < b
		}
		return e.Causes[i].SchemaURL < e.Causes[j].SchemaURL
	})
	for _, c := range e.Causes {
		sortCauses(c)
	}
}

// Render loads the chart named by opts.Chart and renders it once. Load the chart once and use
// Chart.Render to render it many times.
func Render(opts Options) (*Result, error) {
	if opts.Chart == "" {
		return nil, fmt.Errorf("render: Options.Chart is required")
	}
	c, err := Load(opts.Chart)
	if err != nil {
		return nil, err
	}
	return c.Render(opts)
}

// Render renders the chart (opts.Chart is ignored). A template `fail`, a schema violation or a document
// that does not decode strictly is returned as an error.
func (c *Chart) Render(opts Options) (*Result, error) {
	chrt := c.chart
	if chrt == nil {
		var err error
		if chrt, err = loader.Load(c.dir); err != nil {
			return nil, fmt.Errorf("load chart %s: %w", c.dir, err)
		}
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
	if c.chart != nil {
		// Validate with the schema compiled at Load, as Helm would, and let Helm skip its own compile.
		coalesced, err := chartutil.CoalesceValues(chrt, vals)
		if err != nil {
			return nil, err
		}
		if err := c.validate(coalesced); err != nil {
			return nil, err
		}
		install.SkipSchemaValidation = true
	}

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
func (c *Chart) MustRender(tb testing.TB, opts Options) *Result {
	tb.Helper()
	res, err := c.Render(opts)
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
		if runtime.IsNotRegisteredError(err) && gvk != nil && UnstructuredKinds[*gvk] {
			obj, err = decodeUnstructured(doc)
		}
		if err != nil {
			return nil, &DecodeError{Kind: describe(gvk), Doc: firstLines(doc, 12), Err: err}
		}
		objs = append(objs, obj)
	}
	return objs, nil
}

// UnstructuredKinds are the custom resources the chart renders whose Go types are not in the module graph
// (KEDA's API package comes with the whole of KEDA's dependencies): they decode into
// *unstructured.Unstructured, and the live suite's server-side dry-run checks them against their CRD.
var UnstructuredKinds = map[schema.GroupVersionKind]bool{
	{Group: "keda.sh", Version: "v1alpha1", Kind: "ScaledObject"}: true,
}

func decodeUnstructured(doc []byte) (runtime.Object, error) {
	u := &unstructured.Unstructured{}
	if err := yaml.UnmarshalStrict(doc, &u.Object); err != nil {
		return nil, err
	}
	return u, nil
}

// DecodeKnown decodes like Decode, but skips the documents of kinds Scheme does not know (another
// chart's custom resources) and lists their group/version/kind. Known kinds still decode strictly.
func DecodeKnown(manifest string) (objs []runtime.Object, skipped []string, err error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objs, skipped, nil
		}
		if err != nil {
			return nil, nil, err
		}
		if isEmptyDoc(doc) {
			continue
		}
		obj, gvk, err := strictCodec.Decode(doc, nil, nil)
		if runtime.IsNotRegisteredError(err) && gvk != nil && UnstructuredKinds[*gvk] {
			obj, err = decodeUnstructured(doc)
		} else if runtime.IsNotRegisteredError(err) && gvk != nil {
			skipped = append(skipped, gvk.String())
			continue
		}
		if err != nil {
			return nil, nil, &DecodeError{Kind: describe(gvk), Doc: firstLines(doc, 12), Err: err}
		}
		objs = append(objs, obj)
	}
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
