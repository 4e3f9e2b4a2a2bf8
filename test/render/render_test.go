package render

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

func TestDecodeIsStrict(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, doc, want string
	}{
		{"unknown field", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  replica: 2\n", `unknown field "spec.replica"`},
		{"misplaced field", "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec:\n  ports:\n  - port: 80\n    nodeport: 30000\n", `unknown field "spec.ports[0].nodeport"`},
		{"duplicate field", "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\n  name: b\n", `already set in map`},
		{"unknown kind", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: a}\n", `no kind "Widget" is registered`},
		{"wrong type", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  replicas: two\n", `cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Decode(tc.doc)
			// The decoder's own message, not the document the error quotes (which always holds the field).
			var de *DecodeError
			require.ErrorAs(t, err, &de)
			assert.Contains(t, de.Err.Error(), tc.want)
		})
	}
}

func TestDecodeTypedInOrder(t *testing.T) {
	t.Parallel()
	objs, err := Decode("---\n# Source: x\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n")
	require.NoError(t, err)
	require.Len(t, objs, 2, "comment-only documents are skipped")
	assert.Equal(t, "s", objs[0].(*corev1.Service).Name)
	assert.Equal(t, "d", objs[1].(*appsv1.Deployment).Name)
	assert.Equal(t, "Deployment", objs[1].GetObjectKind().GroupVersionKind().Kind)
}

func TestMergeValues(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := filepath.Join(dir, "a.yaml")
	b := filepath.Join(dir, "b.yaml")
	require.NoError(t, os.WriteFile(a, []byte("x: {p: 1, z: 2}\nkeep: true\n"), 0o644))
	require.NoError(t, os.WriteFile(b, []byte("x: {p: 3}\n"), 0o644))
	got, err := MergeValues([]string{a, b}, map[string]any{"x": map[string]any{"z": nil}, "n": 5})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"x": map[string]any{"p": float64(3), "z": nil}, "keep": true, "n": float64(5)}, got)

	_, err = MergeValues([]string{filepath.Join(dir, "missing.yaml")}, nil)
	assert.Error(t, err)
}

func TestRenderHonoursKubeVersion(t *testing.T) {
	t.Parallel()
	_, err := Render(Options{KubeVersion: "not-a-version"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `kube version "not-a-version"`)
	r, err := Render(Options{KubeVersion: "1.29.0"})
	require.NoError(t, err)
	assert.Contains(t, r.Notes, "Kubernetes v1.29.0")
}
