package live_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/go-service/go-service/test/render"
)

// 16. Server-side proof that what the chart renders is what the API server accepts: every ci values
// file, and every optional block filled (test/chart/testdata/every-string-values.yaml), rendered for
// this cluster's version and created with server-side dry-run (admission and validation run, nothing is
// stored). A render the API server rejects is a bug of the chart, whatever the values. Kinds whose API
// this cluster does not serve (Gateway API, Prometheus Operator) are listed, not counted.
func TestServerSideDryRun(t *testing.T) {
	ctx := context.Background()
	cfg, err := clientcmd.BuildConfigFromFlags("", env.Kubeconfig)
	require.NoError(t, err)
	dyn, err := dynamic.NewForConfig(cfg)
	require.NoError(t, err)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(env.Client.Discovery()))
	version, err := env.Client.Discovery().ServerVersion()
	require.NoError(t, err)
	kube := strings.TrimPrefix(strings.SplitN(version.GitVersion, "+", 2)[0], "v")

	chart, err := render.ChartDir()
	require.NoError(t, err)
	files, err := filepath.Glob(filepath.Join(chart, "ci", "*-values.yaml"))
	require.NoError(t, err)
	files = append(files, filepath.Join("..", "chart", "testdata", "every-string-values.yaml"))
	ns := env.Namespace(t, "dryrun")
	accepted, unserved := 0, map[string]bool{}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			res, err := render.Render(render.Options{ValuesFiles: []string{f}, KubeVersion: kube, Namespace: ns, ReleaseName: "dry",
				APIVersions: []string{"gateway.networking.k8s.io/v1", "monitoring.coreos.com/v1"}})
			require.NoError(t, err)
			for _, obj := range res.Objects {
				u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
				require.NoError(t, err)
				item := &unstructured.Unstructured{Object: u}
				gvk := obj.GetObjectKind().GroupVersionKind()
				item.SetGroupVersionKind(gvk)
				m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
				if err != nil {
					unserved[gvk.String()] = true
					continue
				}
				_, err = dyn.Resource(m.Resource).Namespace(ns).Create(ctx, item, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"})
				if assert.NoError(t, err, "%s %s/%s rejected by the API server", filepath.Base(f), gvk.Kind, item.GetName()) {
					accepted++
				}
			}
		})
	}
	t.Logf("%d object(s) accepted by server-side dry-run; not served here, so not checked: %v", accepted, keysOf(unserved))
	require.Positive(t, accepted)
}

func keysOf(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
