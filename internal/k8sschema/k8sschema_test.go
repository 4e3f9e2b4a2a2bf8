package k8sschema_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-service/go-service/internal/k8sschema"
)

func decode(tb testing.TB, s string) map[string]any {
	tb.Helper()
	var m map[string]any
	require.NoError(tb, json.Unmarshal([]byte(s), &m))
	return m
}

func encode(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	require.NoError(tb, err)
	return string(b)
}

const defs = `{
  "io.k8s.api.core.v1.Thing": {
    "description": "Thing is a test object.\n\nMore detail that is dropped.",
    "type": "object",
    "required": ["name"],
    "properties": {
      "name": {"type": "string", "default": "", "x-kubernetes-list-type": "atomic"},
      "count": {"type": "integer", "format": "int32"},
      "big": {"type": "integer", "format": "int64"},
      "mode": {"type": "string", "enum": ["A", "B"], "description": "Mode.\n\nPossible enum values:\n - A"},
      "port": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.util.intstr.IntOrString", "description": "dropped"},
      "limits": {"type": "object", "additionalProperties": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.api.resource.Quantity"}},
      "labels": {"type": "object", "additionalProperties": {"type": "string"}},
      "child": {"$ref": "#/definitions/io.k8s.api.core.v1.Child"},
      "children": {"type": "array", "items": {"$ref": "#/definitions/io.k8s.api.core.v1.Child"}}
    }
  },
  "io.k8s.api.core.v1.Child": {"type": "object", "properties": {"thing": {"$ref": "#/definitions/io.k8s.api.core.v1.Thing"}}},
  "io.k8s.api.core.v1.Unused": {"type": "object", "properties": {"x": {"type": "string"}}}
}`

func TestGenerate(t *testing.T) {
	out, err := k8sschema.Generate(decode(t, defs), []string{"io.k8s.api.core.v1.Thing"}, k8sschema.Options{QuantityRef: "#/$defs/quantity"})
	require.NoError(t, err)
	require.Len(t, out, 2, "the root and what it refers to (a cycle is followed once), nothing else")

	thing := decode(t, encode(t, out["io.k8s.api.core.v1.Thing"]))
	props := thing["properties"].(map[string]any)
	for _, tc := range []struct{ name, got, want string }{
		{"description is the first paragraph", encode(t, thing["description"]), `"Thing is a test object."`},
		{"named properties refuse unknown ones", encode(t, thing["additionalProperties"]), `false`},
		{"required is kept", encode(t, thing["required"]), `["name"]`},
		{"defaults and extensions are dropped", encode(t, props["name"]), `{"type":"string"}`},
		{"int32 is bounded", encode(t, props["count"]), `{"maximum":2147483647,"minimum":-2147483648,"type":"integer"}`},
		{"int64 is not", encode(t, props["big"]), `{"type":"integer"}`},
		{"enums are kept", encode(t, props["mode"]), `{"description":"Mode.","enum":["A","B"],"type":"string"}`},
		{"int-or-string takes either, an integer within int32", encode(t, props["port"]), `{"maximum":2147483647,"minimum":-2147483648,"type":["integer","string"]}`},
		{"quantities use the chart's definition", encode(t, props["limits"]), `{"additionalProperties":{"$ref":"#/$defs/quantity"},"type":"object"}`},
		{"maps stay maps", encode(t, props["labels"]), `{"additionalProperties":{"type":"string"},"type":"object"}`},
		{"refs point into $defs", encode(t, props["child"]), `{"$ref":"#/$defs/io.k8s.api.core.v1.Child"}`},
		{"array items are converted", encode(t, props["children"]), `{"items":{"$ref":"#/$defs/io.k8s.api.core.v1.Child"},"type":"array"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.JSONEq(t, tc.want, tc.got)
		})
	}
}

func TestGenerateMissingDefinition(t *testing.T) {
	d := decode(t, defs)
	delete(d, "io.k8s.api.core.v1.Child")
	_, err := k8sschema.Generate(d, []string{"io.k8s.api.core.v1.Thing"}, k8sschema.Options{})
	var missing *k8sschema.MissingError
	require.ErrorAs(t, err, &missing)
	assert.Equal(t, "io.k8s.api.core.v1.Child", missing.Name)
	assert.Equal(t, "io.k8s.api.core.v1.Thing", missing.ReferredBy)

	_, err = k8sschema.Generate(d, []string{"io.k8s.api.core.v1.Nope"}, k8sschema.Options{})
	require.True(t, errors.As(err, &missing))
	assert.Empty(t, missing.ReferredBy)
}

func TestOverlay(t *testing.T) {
	out, err := k8sschema.Generate(decode(t, defs), []string{"io.k8s.api.core.v1.Thing"}, k8sschema.Options{})
	require.NoError(t, err)
	require.NoError(t, k8sschema.Overlay(out, map[string]map[string]map[string]any{"io.k8s.api.core.v1.Thing": {
		"name": {"enum": []any{"a", "b"}, "maxLength": 1},
		"":     {"required": []any{"name"}},
	}}))
	thing := out["io.k8s.api.core.v1.Thing"].(map[string]any)
	assert.JSONEq(t, `{"type":"string","enum":["a","b"],"maxLength":1}`, encode(t, thing["properties"].(map[string]any)["name"]))
	assert.Equal(t, []any{"name"}, thing["required"], "required is added to the definition")

	err = k8sschema.Overlay(out, map[string]map[string]map[string]any{"io.k8s.api.core.v1.Thing": {"nope": {"enum": []any{"a"}}}})
	assert.ErrorContains(t, err, `io.k8s.api.core.v1.Thing has no property "nope"`, "an overlay cannot outlive the property it fixes")
	err = k8sschema.Overlay(out, map[string]map[string]map[string]any{"io.k8s.api.core.v1.Thing": {"": {"required": []any{"gone"}}}})
	assert.ErrorContains(t, err, `has no property "gone" to require`)
	var missing *k8sschema.MissingError
	assert.ErrorAs(t, k8sschema.Overlay(out, map[string]map[string]map[string]any{"io.k8s.api.core.v1.Gone": {"x": {"enum": []any{"a"}}}}), &missing)
}
