package chart_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	kit "github.com/go-service/go-service/render"
	"github.com/go-service/go-service/test/render"
)

// FuzzValues mutates the chart's values (every optional block filled) and renders them. Half of the
// changes go to a path of the values tree with a value of the wrong kind, out of range, null or empty;
// the other half are guided by the schema: a path it describes (into the Kubernetes objects the chart
// passes through too, created on the way) with a value that fits it (an enum member, one of its types)
// or one that does not. A render either succeeds with objects that
// decode strictly, or is refused by the schema or by the chart's checks; it never panics, never shows a
// template's internals (a nil pointer, a failed include), and never renders what does not decode.
// `go test` runs the seed corpus; `make fuzz` explores.
func FuzzValues(f *testing.F) {
	for _, seed := range []uint64{1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233} {
		b := make([]byte, 8)
		binary.LittleEndian.PutUint64(b, seed)
		f.Add(b, uint8(seed%4+1))
	}
	chart, err := render.ChartDir()
	if err != nil {
		f.Fatal(err)
	}
	base, err := render.MergeValues([]string{filepath.Join(chart, "values.yaml"), filepath.Join("testdata", "every-string-values.yaml")}, nil)
	if err != nil {
		f.Fatal(err)
	}
	paths := allPaths(base, nil)
	guided := schemaPaths(f, chart, 8)
	f.Fuzz(func(t *testing.T, seed []byte, n uint8) {
		var s [32]byte
		copy(s[:], seed)
		rng := rand.New(rand.NewChaCha8(s))
		values := deepCopy(base).(map[string]any)
		var changed []string
		for range int(n%6) + 1 {
			if rng.IntN(2) == 0 {
				p := paths[rng.IntN(len(paths))]
				v := oddValues[rng.IntN(len(oddValues))]
				values = withValue(values, p, v)
				changed = append(changed, strings.Join(p, ".")+"="+describe(v))
				continue
			}
			node := guided[rng.IntN(len(guided))]
			candidates := append(slices.Clone(node.values), oddValues...)
			v := candidates[rng.IntN(len(candidates))]
			values = setCreating(values, node.path, v)
			changed = append(changed, strings.Join(node.path, ".")+"="+describe(v))
		}
		res, err := render.Render(render.Options{Values: values, APIVersions: []string{"gateway.networking.k8s.io/v1", "monitoring.coreos.com/v1"}})
		if err == nil {
			record(t, res)
			return
		}
		msg := err.Error()
		for _, internal := range []string{"nil pointer evaluating", "error calling", "can't evaluate field", "wrong type for value", "invalid value; expected", "incompatible types for comparison", "runtime error"} {
			if strings.Contains(msg, internal) {
				t.Fatalf("values %v: a template's internals instead of a message:\n%s", changed, msg)
			}
		}
		var decodeErr *kit.DecodeError
		switch kind, _ := problems(err); {
		case kind != "": // refused by the schema or the chart's checks
		case errors.As(err, &decodeErr) && strings.Contains(decodeErr.Doc, "templates/extra-objects.yaml"):
			// extraObjects are the user's own manifests, passed through: only their shape is the chart's
			// to check (apiVersion, kind, metadata.name); the API server checks the rest.
		case res != nil:
			t.Fatalf("values %v: rendered objects that do not decode (the API server would reject them):\n%s", changed, msg)
		default:
			t.Fatalf("values %v: refused without naming a value:\n%s", changed, msg)
		}
	})
}

// oddValues are values of every kind, including the wrong ones for most fields.
var oddValues = []any{nil, "", "x", "100%", "150%", "-1", 0.0, -1.0, 1.5, 3e9, true, false, []any{}, []any{"a"}, map[string]any{}, map[string]any{"a": "b"}, strings.Repeat("a", 300)}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if len(x) > 20 {
			return `"` + x[:20] + `..."`
		}
		return `"` + x + `"`
	}
	return fmt.Sprintf("%v", v)
}

// allPaths lists the path of every node of a values tree.
func allPaths(v any, path []string) [][]string {
	var out [][]string
	if len(path) > 0 {
		out = append(out, path)
	}
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			out = append(out, allPaths(x[k], append(slices.Clone(path), k))...)
		}
	case []any:
		for i, e := range x {
			out = append(out, allPaths(e, append(slices.Clone(path), fmt.Sprint(i)))...)
		}
	}
	return out
}
