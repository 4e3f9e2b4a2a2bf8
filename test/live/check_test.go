package live

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/chartutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/go-service/go-service/check"
	"github.com/go-service/go-service/render"
)

// 17. `go-service check --live` reads a running release: the Deployment, its HPA and budgets, the
// Services in front of it, the cluster's version and kube-proxy's sync period where the API shows it.
// This chart's defaults pass, unless the cluster's kube-proxies have measured, since they started, more
// endpoint propagation lag than its 5-second preStop delay covers (a busy machine; the suite's earlier
// stages count too): then exactly that is reported, with the delay to raise to. A 20-second delay passes
// (unless the lag measured was longer still). The chart `helm create`
// scaffolds does not pass, with the same messages as the offline check.
func TestCheckLive(t *testing.T) {
	ctx := context.Background()
	version, err := env.Client.Discovery().ServerVersion()
	require.NoError(t, err)
	kube := strings.TrimPrefix(strings.SplitN(version.GitVersion, "+", 2)[0], "v")
	scaffold, err := chartutil.Create("demo", t.TempDir())
	require.NoError(t, err)

	// The imported reference image, never pulled, for both: nothing here may reach a registry.
	image := map[string]any{"repository": "go-service", "tag": appImageTagged(t, "0.1.0"), "pullPolicy": "Never"}
	for _, tc := range []struct {
		name, chart, deployment string
		values                  map[string]any // beside the image
		want                    int
		rules                   []string
		chartDelay              time.Duration // the preStop delay the check weighs against the measured lag (0: not this row's question)
	}{
		{"go-service defaults", "../../charts/go-service", "live-go-service", nil, check.OK, nil, 5 * time.Second},
		// A delay longer than any lag this cluster measured passes: the check reads the delay it weighs.
		{"go-service with a 20 s delay", "../../charts/go-service", "live-go-service", map[string]any{"shutdown": map[string]any{"preStop": map[string]any{"delaySeconds": 20}}}, check.OK, nil, 20 * time.Second},
		{"helm create", scaffold, "live-demo", nil, check.Violated, []string{"replicas.single", "rollout.max-unavailable", "probes.startup", "probes.shared-path", "probes.liveness-tolerance", "shutdown.prestop", "disruption.pdb"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := env.Namespace(t, "check")
			values := map[string]any{"image": image}
			maps.Copy(values, tc.values)
			r, err := render.Render(render.Options{Chart: tc.chart, KubeVersion: kube, ReleaseName: "live", Namespace: ns, Values: values})
			require.NoError(t, err)
			createObjects(ctx, t, ns, r.Manifest)

			var out, errOut bytes.Buffer
			args := []string{"--live", "-n", ns, "--kubeconfig", env.Kubeconfig, "--format", "json"}
			if env.Local != nil {
				// The local cluster's kube-proxies serve their metrics on node1's loopback and the other
				// nodes' addresses, which the API server's node proxy does not reach for node1.
				for node, url := range env.Local.ProxyMetricsURLs() {
					args = append(args, "--proxy-metrics", node+"="+url)
				}
			}
			code := check.Run(ctx, append(args, tc.deployment), nil, &out, &errOut)
			var rep check.Report
			require.NoError(t, json.Unmarshal(out.Bytes(), &rep), "stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
			require.NotNil(t, rep.Cluster)
			want, wantRules := tc.want, tc.rules
			if rec := rep.Cluster.RecommendedDelay; tc.chartDelay > 0 && rec != nil && rec.Duration > tc.chartDelay {
				// The lag is the cluster's whole history: the one finding this chart's defaults may get.
				want, wantRules = check.Violated, []string{"cluster.measured-lag"}
				t.Logf("this cluster's kube-proxies measured more lag since they started than the chart's %s preStop delay covers: the check recommends %s", tc.chartDelay, rec.Duration)
				for _, v := range rep.Violations {
					assert.Contains(t, v.Fix, fmt.Sprintf("to %d", int64(rec.Duration/time.Second)), "the fix names the recommended delay")
				}
			}
			require.Equal(t, want, code, "stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
			assert.Equal(t, kube, rep.KubeVersion, "the cluster's version")
			assert.Equal(t, []string{tc.deployment}, rep.Cluster.Services, "the Service that selects the pods")
			assert.NotEmpty(t, rep.Cluster.KubeProxySource, "where the sync period was read, or why not")
			if env.Local != nil {
				require.Len(t, rep.Cluster.Propagation, len(env.Local.Nodes), "every node's lag")
				for _, l := range rep.Cluster.Propagation {
					assert.Empty(t, l.Error, "%s", l)
					t.Logf("endpoint propagation on %s", l)
				}
				require.NotNil(t, rep.Cluster.RecommendedDelay, "a delay recommended from the measured lag")
				var worst time.Duration
				for _, l := range rep.Cluster.Propagation {
					if l.P99 != nil {
						worst = max(worst, l.P99.Duration)
					}
				}
				assert.Equal(t, (worst + 2*time.Second - 1).Truncate(time.Second), rep.Cluster.RecommendedDelay.Duration, "the largest p99 of the nodes, plus a second, in whole seconds")
				t.Logf("recommended preStop delay: %s", rep.Cluster.RecommendedDelay.Duration)
			}
			var got []string
			for _, v := range rep.Violations {
				got = append(got, v.Rule)
			}
			assert.Equal(t, wantRules, got)
			t.Logf("kube-proxy sync period: %s", rep.Cluster.KubeProxySource)
		})
	}
}

// createObjects creates a rendered manifest's objects in the namespace (kinds this cluster does not serve
// are left out).
func createObjects(ctx context.Context, t *testing.T, ns, manifest string) {
	t.Helper()
	objs, _, err := render.DecodeKnown(manifest)
	require.NoError(t, err)
	c := newCreator(t, ns)
	for _, obj := range objs {
		err := c.create(ctx, obj, metav1.CreateOptions{})
		if errors.Is(err, errUnserved) {
			continue
		}
		require.NoError(t, err, "create %s", obj.GetObjectKind().GroupVersionKind().Kind)
	}
}
