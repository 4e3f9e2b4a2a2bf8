package chart_test

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/go-service/go-service/test/render"
)

// injections are strings a less trusted values file could use to add fields to a manifest or change
// what a value means: a newline and indentation, a mapping, a comment, template braces, quotes, Unicode
// line separators.
var injections = []string{
	"x\n      hostNetwork: true",
	"x\nhostNetwork: true",
	"x: y",
	"x #y",
	"{{ .Release.Name }}",
	`x"y'z`,
	"x\u2028hostPID: true",
	"x\u0085hostIPC: true",
}

// Every string that reaches a manifest is quoted or goes through toYaml: each string leaf of the chart's
// values (every optional block set, testdata/every-string-values.yaml), set to each injection, either is
// refused with a message that names the value, or renders with exactly the keys the same render has with
// a harmless string there, and the payload intact in some value.
func TestNoInjection(t *testing.T) {
	t.Parallel()
	chart, err := render.ChartDir()
	require.NoError(t, err)
	overlay := filepath.Join("testdata", "every-string-values.yaml")
	base, err := render.MergeValues([]string{filepath.Join(chart, "values.yaml"), overlay}, nil)
	require.NoError(t, err)
	opts := func(values map[string]any) render.Options {
		return render.Options{Values: values, APIVersions: []string{"gateway.networking.k8s.io/v1", "monitoring.coreos.com/v1"}}
	}
	leaves := stringLeaves(base, nil)
	require.Greater(t, len(leaves), 40, "the walk reaches the chart's strings")
	// rendered counts the payloads that rendered (the others were refused): the parallel subtests add to it,
	// and it is read once they have all ended.
	var rendered atomic.Int64
	t.Run("leaves", func(t *testing.T) {
		for _, leaf := range leaves {
			t.Run(strings.Join(leaf, "."), func(t *testing.T) {
				t.Parallel()
				const marker = "zz-marker"
				baseline, err := render.Render(opts(withLeaf(base, leaf, marker)))
				if err != nil {
					// A value with a format of its own (an enum, a pattern): payloads must be refused too.
					baseline = nil
				}
				for _, payload := range injections {
					res, err := render.Render(opts(withLeaf(base, leaf, payload)))
					if err != nil {
						assert.Contains(t, err.Error(), leafName(leaf), "the refusal of %q names the value", payload)
						continue
					}
					require.NotNil(t, baseline, "%q renders where %q does not", payload, marker)
					rendered.Add(1)
					want := keyPaths(t, baseline, marker, marker)
					got := keyPaths(t, res, payload, marker)
					assert.Equal(t, want, got, "%q changed the manifest's keys", payload)
					if carries(t, baseline, marker) { // the value reaches the manifest
						if templated(leaf) && strings.Contains(payload, "{{") {
							// A value the chart renders with tpl: the template's output is carried.
							out := strings.ReplaceAll(payload, "{{ .Release.Name }}", "test")
							assert.True(t, carries(t, res, out), "%q is carried as its rendering %q", payload, out)
							continue
						}
						if encoded(leaf) {
							// An OpenTelemetry attribute value: carried percent-encoded, as the specification says.
							out := strings.ReplaceAll(url.QueryEscape(payload), "+", "%20")
							assert.True(t, carries(t, res, out), "%q is carried as its percent-encoding %q", payload, out)
							continue
						}
						assert.True(t, carries(t, res, payload), "%q is carried verbatim as a value", payload)
					}
				}
			})
		}
	})
	// Most strings take any text: a test whose payloads were all refused would check nothing.
	t.Logf("%d payload renders checked over %d string values", rendered.Load(), len(leaves))
	assert.Greater(t, rendered.Load(), int64(len(leaves)), "payloads render and are checked, not only refused")
}

// templatedLeaves are the values the chart renders with tpl (documented in values.yaml): there a template
// is rendered, and only what it renders is carried.
var templatedLeaves = regexp.MustCompile(`^(podAnnotations|deploymentAnnotations|(service|ingress|httpRoute|serviceAccount)\.annotations|config\.data)\..+$|^env\.\d+\.value$|^ingress\.hosts\.\d+\.host$|^ingress\.tls\.\d+\.hosts\.\d+$|^extraObjects\.`)

func templated(leaf []string) bool { return templatedLeaves.MatchString(strings.Join(leaf, ".")) }

// encoded reports whether the chart carries the value percent-encoded (OpenTelemetry attribute values).
func encoded(leaf []string) bool {
	return strings.HasPrefix(strings.Join(leaf, "."), "otel.resourceAttributes.")
}

// stringLeaves lists the paths of every string in a values tree (map keys and list indices).
func stringLeaves(v any, path []string) [][]string {
	var out [][]string
	for _, p := range allPaths(v, path) {
		if _, ok := nodeAt(v, p).(string); ok {
			out = append(out, p)
		}
	}
	return out
}

// nodeAt is the node of a values tree at path (nil when there is none).
func nodeAt(v any, path []string) any {
	for _, k := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			var i int
			if _, err := fmt.Sscan(k, &i); err != nil || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// withLeaf returns a deep copy of values with the string at path set to s.
func withLeaf(values map[string]any, path []string, s string) map[string]any {
	return withValue(values, path, s)
}

// withValue returns a deep copy of values with the node at path set to s.
func withValue(values map[string]any, path []string, s any) map[string]any {
	out := deepCopy(values).(map[string]any)
	var cur any = out
	for i, k := range path {
		last := i == len(path)-1
		switch x := cur.(type) {
		case map[string]any:
			if last {
				x[k] = s
			}
			cur = x[k]
		default:
			return out // an earlier change replaced the parent with a scalar
		case []any:
			var j int
			_, _ = fmt.Sscan(k, &j)
			if j >= len(x) {
				return out // an earlier change removed this element
			}
			if last {
				x[j] = s
			}
			cur = x[j]
		}
	}
	return out
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = deepCopy(e)
		}
		return l
	}
	return v
}

// leafName is the last map key of a path: what a refusal must name.
func leafName(path []string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if _, err := fmt.Sscan(path[i], new(int)); err != nil {
			return path[i]
		}
	}
	return path[0]
}

// keyPaths lists every key path of the rendered documents (manifest and hooks), with the payload in keys
// replaced by the marker.
func keyPaths(t *testing.T, r *render.Result, payload, marker string) []string {
	t.Helper()
	var out []string
	for i, doc := range documents(t, r) {
		var walk func(v any, p string)
		walk = func(v any, p string) {
			switch x := v.(type) {
			case map[string]any:
				for k, e := range x {
					kp := p + "." + strings.ReplaceAll(k, payload, marker)
					out = append(out, kp)
					walk(e, kp)
				}
			case []any:
				for j, e := range x {
					walk(e, fmt.Sprintf("%s[%d]", p, j))
				}
			}
		}
		walk(doc, fmt.Sprint(i))
	}
	slices.Sort(out)
	return out
}

// carries reports whether some string value or key of the render contains the payload intact.
func carries(t *testing.T, r *render.Result, payload string) bool {
	t.Helper()
	found := false
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				found = found || strings.Contains(k, payload)
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case string:
			found = found || strings.Contains(x, payload)
		}
	}
	for _, d := range documents(t, r) {
		walk(d)
	}
	return found
}

func documents(t *testing.T, r *render.Result) []any {
	t.Helper()
	text := r.Manifest
	for _, h := range r.Hooks {
		text += "\n---\n" + h.Manifest
	}
	var docs []any
	for _, d := range strings.Split(text, "\n---") {
		var v any
		require.NoError(t, yaml.Unmarshal([]byte(d), &v), "a rendered document parses:\n%s", d)
		if v != nil {
			docs = append(docs, v)
		}
	}
	return docs
}
