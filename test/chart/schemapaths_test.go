package chart_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// schemaNode is a place the values schema describes: its path in the values tree ("0" for a list item)
// and the values that fit its schema (enum members, one of each type), which the fuzz target mixes
// with values that do not fit.
type schemaNode struct {
	path   []string
	values []any
}

// schemaPaths walks values.schema.json from its root, following $ref, items and the branches of
// allOf/anyOf/oneOf, down to maxDepth, and lists every property it reaches with its fitting values.
// The generated io.k8s.* definitions are walked too, so the fuzz target reaches into the Kubernetes
// objects the chart passes through (a volume's secret, an affinity term), not only the keys the
// defaults set.
func schemaPaths(tb testing.TB, chartDir string, maxDepth int) []schemaNode {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	require.NoError(tb, err)
	var root map[string]any
	require.NoError(tb, json.Unmarshal(data, &root))
	defs, _ := root["$defs"].(map[string]any)
	var out []schemaNode
	seen := map[string]bool{}
	var walk func(n map[string]any, path []string, refs []string)
	walk = func(n map[string]any, path []string, refs []string) {
		if len(path) > maxDepth {
			return
		}
		if ref, ok := n["$ref"].(string); ok {
			name := strings.TrimPrefix(ref, "#/$defs/")
			if slices.Contains(refs, name) {
				return // a recursive definition: once is enough
			}
			if d, ok := defs[name].(map[string]any); ok {
				walk(d, path, append(slices.Clone(refs), name))
			}
			return
		}
		if len(path) > 0 {
			key := strings.Join(path, ".")
			if !seen[key] {
				seen[key] = true
				out = append(out, schemaNode{path: slices.Clone(path)})
			}
			i := slices.IndexFunc(out, func(s schemaNode) bool { return strings.Join(s.path, ".") == key })
			out[i].values = append(out[i].values, fitting(n)...)
		}
		if props, ok := n["properties"].(map[string]any); ok {
			keys := make([]string, 0, len(props))
			for k := range props {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				if p, ok := props[k].(map[string]any); ok {
					walk(p, append(slices.Clone(path), k), refs)
				}
			}
		}
		if items, ok := n["items"].(map[string]any); ok {
			walk(items, append(slices.Clone(path), "0"), refs)
		}
		for _, k := range []string{"allOf", "anyOf", "oneOf"} {
			if list, ok := n[k].([]any); ok {
				for _, b := range list {
					if m, ok := b.(map[string]any); ok {
						walk(m, path, refs)
					}
				}
			}
		}
	}
	walk(root, nil, nil)
	return out
}

// fitting lists values that fit a schema node: its enum, or one value of each of its types.
func fitting(n map[string]any) []any {
	if enum, ok := n["enum"].([]any); ok {
		return enum
	}
	var types []string
	switch t := n["type"].(type) {
	case string:
		types = []string{t}
	case []any:
		for _, e := range t {
			types = append(types, fmt.Sprint(e))
		}
	}
	var out []any
	for _, t := range types {
		switch t {
		case "string":
			out = append(out, "a")
		case "integer":
			v := 1.0
			if min, ok := n["minimum"].(float64); ok && min > v {
				v = min
			}
			out = append(out, v)
		case "number":
			out = append(out, 1.5)
		case "boolean":
			out = append(out, true, false)
		case "object":
			out = append(out, map[string]any{})
		case "array":
			out = append(out, []any{})
		}
	}
	return out
}

// setCreating sets the value at path, creating the maps and one-element lists on the way.
func setCreating(values map[string]any, path []string, v any) map[string]any {
	out := deepCopy(values).(map[string]any)
	var set func(cur any, i int) any
	set = func(cur any, i int) any {
		if i == len(path) {
			return v
		}
		if path[i] == "0" {
			l, ok := cur.([]any)
			if !ok || len(l) == 0 {
				l = []any{nil}
			}
			l[0] = set(l[0], i+1)
			return l
		}
		m, ok := cur.(map[string]any)
		if !ok {
			m = map[string]any{}
		}
		m[path[i]] = set(m[path[i]], i+1)
		return m
	}
	return set(out, 0).(map[string]any)
}

func TestSchemaPaths(t *testing.T) {
	dir := t.TempDir()
	schema := `{"type":"object","properties":{
	  "a":{"type":"object","properties":{"b":{"type":"integer","minimum":2}}},
	  "l":{"type":"array","items":{"$ref":"#/$defs/t"}},
	  "e":{"type":"string","enum":["x","y"]}},
	  "$defs":{"t":{"type":"object","properties":{"self":{"$ref":"#/$defs/t"},"s":{"type":["string","boolean"]}}}}}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "values.schema.json"), []byte(schema), 0o644))
	got := map[string][]any{}
	for _, n := range schemaPaths(t, dir, 8) {
		got[strings.Join(n.path, ".")] = n.values
	}
	assert.Equal(t, map[string][]any{
		"a":     {map[string]any{}},
		"a.b":   {2.0},
		"e":     {"x", "y"},
		"l":     {[]any{}},
		"l.0":   {map[string]any{}},
		"l.0.s": {"a", true, false},
	}, got, "the recursive reference (l.0.self) is not followed")

	v := setCreating(map[string]any{"a": map[string]any{"keep": 1}}, []string{"a", "l", "0", "x"}, "v")
	assert.Equal(t, map[string]any{"a": map[string]any{"keep": 1, "l": []any{map[string]any{"x": "v"}}}}, v)
}
