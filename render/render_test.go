package render

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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

// chartDir is this repository's chart, which the kit's tests render.
const chartDir = "../charts/go-service"

func TestRenderHonoursKubeVersion(t *testing.T) {
	t.Parallel()
	c, err := Load(chartDir)
	require.NoError(t, err)
	_, err = c.Render(Options{KubeVersion: "not-a-version"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `kube version "not-a-version"`)
	r, err := c.Render(Options{KubeVersion: "1.29.0"})
	require.NoError(t, err)
	assert.Contains(t, r.Notes, "Kubernetes v1.29.0")
}

// The kit validates values with the schema it compiled at Load; its errors are Helm's own, word for word.
func TestSchemaErrorsAreHelms(t *testing.T) {
	t.Parallel()
	c, err := Load(chartDir)
	require.NoError(t, err)
	raw, err := loader.Load(chartDir)
	require.NoError(t, err)
	for _, vals := range []map[string]any{
		{"replicaCount": "three"},
		{"securityContext": map[string]any{"runAsUsr": 1}},
		{"resources": map[string]any{"limits": map[string]any{"cpu": "1 core"}}, "minReadySeconds": -1},
		{"probes": nil},
	} {
		_, err := c.Render(Options{Values: vals})
		require.Error(t, err, "%v", vals)
		merged, err2 := MergeValues(nil, vals)
		require.NoError(t, err2)
		_, helmErr := chartutil.ToRenderValuesWithSchemaValidation(raw, merged, chartutil.ReleaseOptions{Name: "test"}, nil, false)
		require.Error(t, helmErr)
		// The same lines: Helm orders several problems by map iteration, differently from run to run;
		// the kit sorts them by their place in the values.
		assert.ElementsMatch(t, strings.Split(helmErr.Error(), "\n"), strings.Split(err.Error(), "\n"))
		for range 5 {
			_, again := c.Render(Options{Values: vals})
			assert.Equal(t, err.Error(), again.Error(), "the kit's message is stable")
		}
	}
}

func TestDecodeKnownSkipsUnknownKinds(t *testing.T) {
	t.Parallel()
	objs, skipped, err := DecodeKnown("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n")
	require.NoError(t, err)
	require.Len(t, objs, 1)
	assert.Equal(t, []string{"example.com/v1, Kind=Widget"}, skipped)
	_, _, err = DecodeKnown("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  replica: 2\n")
	assert.Error(t, err, "a known kind still decodes strictly")
}

// A custom resource without Go types in the module graph (KEDA's ScaledObject) decodes unstructured; a
// document that is not valid YAML, or repeats a key, still fails.
func TestUnstructuredKinds(t *testing.T) {
	t.Parallel()
	objs, err := Decode("apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: a}\nspec:\n  minReplicaCount: 2\n")
	require.NoError(t, err)
	require.Len(t, objs, 1)
	u, ok := objs[0].(*unstructured.Unstructured)
	require.True(t, ok, "%T", objs[0])
	assert.Equal(t, "a", u.GetName())
	_, err = Decode("apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: a}\nspec:\n  minReplicaCount: 2\n  minReplicaCount: 3\n")
	assert.Error(t, err, "a repeated key")
	objs, skipped, err := DecodeKnown("apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: a}\n")
	require.NoError(t, err)
	assert.Len(t, objs, 1)
	assert.Empty(t, skipped)
}
