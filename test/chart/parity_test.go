package chart_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/gruntwork-io/terratest/modules/helm"
	"github.com/gruntwork-io/terratest/modules/k8s"
	"github.com/gruntwork-io/terratest/modules/logger"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-service/go-service/test/render"
)

// cliCase is one render through the helm CLI (terratest's helm module) and the same through the SDK.
type cliCase struct {
	name       string
	kube       string
	valuesFile string            // optional
	set        map[string]string // helm --set
	values     m                 // the same values as --set gives them, for the SDK
}

func cliCases(tb testing.TB) []cliCase {
	cases := []cliCase{
		{name: "defaults-1.29", kube: "1.29.0"},
		{name: "defaults-1.34", kube: "1.34.0"},
		{name: "set-values", kube: "1.34.0",
			set:    map[string]string{"replicaCount": "4", "shutdown.preStop.delaySeconds": "9", "podDisruptionBudget.minAvailable": "50%"},
			values: m{"replicaCount": 4, "shutdown": m{"preStop": m{"delaySeconds": 9}}, "podDisruptionBudget": m{"minAvailable": "50%"}}},
	}
	for _, f := range ciValuesFiles(tb) {
		cases = append(cases, cliCase{name: filepath.Base(f), kube: "1.31.0", valuesFile: f})
	}
	return cases
}

// renderCLI renders through `helm template` with terratest, as users of terratest do.
func renderCLI(tb testing.TB, chartDir string, c cliCase) string {
	tb.Helper()
	opts := &helm.Options{
		Logger:         logger.Discard,
		KubectlOptions: k8s.NewKubectlOptions("", "", "parity"),
		SetValues:      c.set,
	}
	if c.valuesFile != "" {
		opts.ValuesFiles = []string{c.valuesFile}
	}
	out, err := helm.RenderTemplateE(tb, opts, chartDir, "parity", nil, "--kube-version", c.kube)
	require.NoError(tb, err)
	return out
}

func renderSDK(tb testing.TB, c cliCase) *render.Result {
	tb.Helper()
	return render.MustRender(tb, sdkOptions(c))
}

// sdkOptions are a case's options for the in-process render.
func sdkOptions(c cliCase) render.Options {
	opts := render.Options{KubeVersion: c.kube, ReleaseName: "parity", Namespace: "parity", Values: c.values}
	if c.valuesFile != "" {
		opts.ValuesFiles = []string{c.valuesFile}
	}
	return opts
}

// The in-process SDK path renders exactly the objects `helm template` renders: the render suite's
// speed comes at no cost in fidelity.
func TestSDKMatchesHelmCLI(t *testing.T) {
	t.Parallel()
	chartDir, err := render.ChartDir()
	require.NoError(t, err)
	for _, c := range cliCases(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cli := renderCLI(t, chartDir, c)
			cliObjs, err := render.Decode(cli)
			require.NoError(t, err)
			sdk := renderSDK(t, c)
			require.NotEmpty(t, sdk.Objects)
			assert.Equal(t, sdk.Objects, cliObjs)
			assert.True(t, strings.HasPrefix(strings.TrimSpace(cli), "---\n# Source: go-service/templates/"), "CLI output looks like helm template output")
		})
	}
	t.Run("guardrail error through the CLI", func(t *testing.T) {
		t.Parallel()
		_, err := helm.RenderTemplateE(t, &helm.Options{Logger: logger.Discard, SetValues: map[string]string{"strategy.rollingUpdate.maxSurge": "0"}},
			chartDir, "parity", nil, "--kube-version", "1.34.0")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "strategy.rollingUpdate.maxSurge and strategy.rollingUpdate.maxUnavailable are both 0")
	})
}
