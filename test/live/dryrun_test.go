package live

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/go-service/go-service/test/render"
	"github.com/go-service/go-service/test/tools"
)

// 16. Server-side proof that what the chart renders is what the API server accepts, created with
// server-side dry-run and strict field validation (admission and validation run, nothing is stored):
//   - every ci values file and every optional block filled (test/chart/testdata/every-string-values.yaml),
//     rendered for this cluster's version;
//   - every render of the render suite that it expects to succeed (its value cases, defaults on every
//     version, golden files, the dependency chart, the fuzz seeds), recorded by running that suite with
//     -record-renders.
//
// A render the API server rejects is a bug of the chart, whatever the values. The Gateway API's
// HTTPRoute and GRPCRoute CRDs, the VerticalPodAutoscaler's and KEDA's ScaledObject (from pinned modules)
// are installed for the test and removed after it, so those objects are validated too (their CRD
// validations included); kinds this cluster still does not serve (the Prometheus
// Operator's ServiceMonitor) are listed, not counted.
func TestServerSideDryRun(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "dryrun")
	d := &dryRun{creator: newCreator(t, ns)}
	for _, crd := range []string{"httproutes", "grpcroutes"} {
		installCRDs(t, d.dyn, "sigs.k8s.io/gateway-api", filepath.Join("config", "crd", "standard", "gateway.networking.k8s.io_"+crd+".yaml"))
	}
	installCRDs(t, d.dyn, "k8s.io/autoscaler/vertical-pod-autoscaler", filepath.Join("deploy", "vpa-v1-crd-gen.yaml"))
	installCRDs(t, d.dyn, kedaModule, filepath.Join("config", "crd", "bases", "keda.sh_scaledobjects.yaml"))
	version, err := env.Client.Discovery().ServerVersion()
	require.NoError(t, err)
	kube := strings.TrimPrefix(strings.SplitN(version.GitVersion, "+", 2)[0], "v")

	renders := 0
	t.Run("a manifest the API server rejects is caught", func(t *testing.T) {
		res, err := render.Render(render.Options{KubeVersion: kube, Namespace: ns})
		require.NoError(t, err)
		dep := render.One[*appsv1.Deployment](t, res)
		c := &dep.Spec.Template.Spec.Containers[0]
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "missing", MountPath: "/missing"})
		err = d.create(ctx, dep, serverDryRun)
		require.Error(t, err, "a mount of a volume the pod does not have")
		assert.Contains(t, err.Error(), "volumeMounts[1].name: Not found")
	})
	t.Run("ci values files", func(t *testing.T) {
		chart, err := render.ChartDir()
		require.NoError(t, err)
		files, err := filepath.Glob(filepath.Join(chart, "ci", "*-values.yaml"))
		require.NoError(t, err)
		files = append(files, filepath.Join("..", "chart", "testdata", "every-string-values.yaml"))
		for _, f := range files {
			t.Run(filepath.Base(f), func(t *testing.T) {
				res, err := render.Render(render.Options{ValuesFiles: []string{f}, KubeVersion: kube, Namespace: ns, ReleaseName: "dry",
					APIVersions: []string{"gateway.networking.k8s.io/v1", "monitoring.coreos.com/v1"}})
				require.NoError(t, err)
				d.createAll(ctx, t, res.Objects)
			})
		}
	})
	t.Run("render suite", func(t *testing.T) {
		dir := t.TempDir()
		// The render stage compared every render with the helm CLIs; recording them needs only the renders.
		cmd := exec.Command("go", "test", "-count=1", "-skip", "TestSDKMatchesHelmCLI|TestRefusalsUnderHelmCLIs|TestHelmTemplateAsTyped",
			"./test/chart", "-args", "-record-renders", dir, "-cli-parity=false")
		cmd.Dir = tools.MustRepoRoot(t)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "the render suite, run to record its renders:\n%s", out)
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		require.NoError(t, err)
		require.Greater(t, len(files), 100, "the render suite recorded its renders")
		for _, f := range files {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			objs, err := render.Decode(string(data))
			require.NoError(t, err, f)
			t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
				d.createAll(ctx, t, objs)
			})
		}
		t.Logf("%d renders of the render suite", len(files))
		renders = len(files)
	})
	t.Logf("%d object(s) of %d render(s) accepted by server-side dry-run; not served here, so not checked: %v", d.accepted, renders, keysOf(d.unserved))
	// Nothing is skipped silently: the kinds not checked are exactly the expected ones, and the counts
	// are the floors the README quotes.
	assert.Equal(t, expectedUnserved, keysOf(d.unserved), "the kinds this cluster does not serve")
	assert.GreaterOrEqual(t, renders, minDryRunRenders, "renders of the render suite checked")
	assert.GreaterOrEqual(t, d.accepted, minDryRunObjects, "objects accepted")
}

// expectedUnserved are the kinds the chart renders that the dry-run cannot check: the Prometheus
// Operator's ServiceMonitor, whose CRD no module this project may use ships.
var expectedUnserved = []string{"monitoring.coreos.com/v1, Kind=ServiceMonitor"}

// The floors of the dry-run's counts (the README quotes them): the render suite's renders, and the
// objects of every render the API server accepted.
const (
	minDryRunRenders = 220
	minDryRunObjects = 1200
)

// creator creates rendered objects in one namespace through the dynamic client.
type creator struct {
	dyn      dynamic.Interface
	mapper   *restmapper.DeferredDiscoveryRESTMapper
	ns       string
	unserved map[string]bool // the kinds create met that this cluster does not serve
}

func newCreator(t *testing.T, ns string) *creator {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", env.Kubeconfig)
	require.NoError(t, err)
	cfg.QPS, cfg.Burst = 200, 400 // some thousand dry-run creates; client-go's default is 5 per second
	dyn, err := dynamic.NewForConfig(cfg)
	require.NoError(t, err)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(env.Client.Discovery()))
	return &creator{dyn: dyn, mapper: mapper, ns: ns, unserved: map[string]bool{}}
}

// errUnserved is returned by create for a kind this cluster does not serve.
var errUnserved = errors.New("kind not served by this cluster")

// serverDryRun creates nothing: admission and validation run, strict about unknown fields.
var serverDryRun = metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"}

// create creates one object in the creator's namespace and returns the API server's answer.
func (c *creator) create(ctx context.Context, obj runtime.Object, opts metav1.CreateOptions) error {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return err
	}
	item := &unstructured.Unstructured{Object: u}
	gvk := obj.GetObjectKind().GroupVersionKind()
	item.SetGroupVersionKind(gvk)
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		c.unserved[gvk.String()] = true
		return errUnserved
	}
	item.SetNamespace(c.ns)
	_, err = c.dyn.Resource(m.Resource).Namespace(c.ns).Create(ctx, item, opts)
	return err
}

// dryRun creates objects with server-side dry-run and counts those the API server accepts.
type dryRun struct {
	*creator
	accepted int
}

// createAll creates each object with server-side dry-run and fails the test for every object the API
// server rejects.
func (d *dryRun) createAll(ctx context.Context, t *testing.T, objs []runtime.Object) {
	t.Helper()
	for _, obj := range objs {
		err := d.create(ctx, obj, serverDryRun)
		if errors.Is(err, errUnserved) {
			continue
		}
		if assert.NoError(t, err, "%s rejected by the API server", obj.GetObjectKind().GroupVersionKind().Kind) {
			d.accepted++
		}
	}
}

// kedaModule is the KEDA release whose ScaledObject CRD checks the chart's ScaledObject. KEDA's Go API
// is not in go.mod (its module brings every scaler's dependencies), so the chart's render kit decodes
// ScaledObject unstructured and this CRD is what validates it.
const kedaModule = "github.com/kedacore/keda/v2@v2.21.0"

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installCRDs creates the CRDs of a file in a module go.mod pins (the Gateway API's routes, the VPA),
// waits until each is established, and removes them when the test ends.
func installCRDs(t *testing.T, dyn dynamic.Interface, module, file string) {
	t.Helper()
	ctx := context.Background()
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module)
	if strings.Contains(module, "@") {
		// A module outside go.mod (KEDA's, only for its CRD): downloaded through the module proxy, outside
		// this module so go.mod and go.sum stay as they are.
		cmd = exec.Command("go", "mod", "download", "-json", module)
		cmd.Dir = t.TempDir()
	}
	out, err := cmd.Output()
	require.NoError(t, err, "locate %s in the module cache", module)
	if strings.Contains(module, "@") {
		var info struct{ Dir string }
		require.NoError(t, json.Unmarshal(out, &info))
		out = []byte(info.Dir)
	}
	data, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), file))
	require.NoError(t, err)
	for _, doc := range strings.Split(string(data), "\n---") {
		if strings.TrimSpace(strings.TrimPrefix(doc, "---")) == "" {
			continue
		}
		crd := &unstructured.Unstructured{}
		require.NoError(t, yaml.Unmarshal([]byte(doc), &crd.Object), file)
		name := crd.GetName()
		_, err = dyn.Resource(crdResource).Create(ctx, crd, metav1.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) {
			require.NoError(t, err, "create the CRD %s", name)
			t.Cleanup(func() {
				err := dyn.Resource(crdResource).Delete(context.Background(), name, metav1.DeleteOptions{})
				assert.NoError(t, err, "remove the CRD %s", name)
			})
		}
		err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			got, err := dyn.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
			for _, c := range conds {
				if c, ok := c.(map[string]any); ok && c["type"] == "Established" && c["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		})
		require.NoError(t, err, "the CRD %s is established", name)
	}
}

func keysOf(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
