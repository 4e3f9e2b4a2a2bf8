package check_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/go-service/go-service/check"
	"github.com/go-service/go-service/render"
)

const chartDir = "../charts/go-service"

func run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := check.Run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// helmCreate renders the chart `helm create` scaffolds (generated with the Helm SDK, as the CLI does).
func helmCreate(t *testing.T) string {
	t.Helper()
	path, err := chartutil.Create("demo", t.TempDir())
	require.NoError(t, err)
	r, err := render.Render(render.Options{Chart: path, KubeVersion: "1.34.0", ReleaseName: "demo"})
	require.NoError(t, err)
	return r.Manifest
}

func TestHelmCreateOutputHasGaps(t *testing.T) {
	code, out, errOut := run(t, helmCreate(t))
	assert.Equal(t, check.Violated, code, errOut)
	for _, want := range []string{
		"Deployment/demo spec.replicas\n  replicas 1: a single pod cannot survive a drain, an eviction or a node failure\n  fix: Run at least 2 replicas [replicas.single]",
		"spec.strategy.rollingUpdate.maxUnavailable\n  maxUnavailable is unset, so the API server makes it 25%",
		"[probes.shared-path]", "[probes.startup]", "[probes.liveness-tolerance]",
		"no preStop hook and no in-app shutdown delay", "[shutdown.prestop]", "[disruption.pdb]",
		"stdin: 7 zero-downtime rule(s) broken (1 Deployment(s), Kubernetes 1.34.0)",
	} {
		assert.Contains(t, out, want)
	}

	code, out, _ = run(t, helmCreate(t), "--format", "json", "-")
	assert.Equal(t, check.Violated, code)
	var rep check.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	var rules []string
	for _, v := range rep.Violations {
		rules = append(rules, v.Rule)
	}
	assert.Equal(t, []string{"replicas.single", "rollout.max-unavailable", "probes.startup", "probes.shared-path", "probes.liveness-tolerance", "shutdown.prestop", "disruption.pdb"}, rules)
	assert.Equal(t, 1, rep.Deployments)
}

func TestThisChartsDefaultsPass(t *testing.T) {
	code, out, errOut := run(t, "", "--chart", chartDir)
	assert.Equal(t, check.OK, code, errOut)
	assert.Equal(t, chartDir+": no zero-downtime rule broken (1 Deployment(s), Kubernetes 1.34.0)\n", out)

	code, out, _ = run(t, "", "--chart", chartDir, "--kube-version", "1.29.0", "--format", "json")
	assert.Equal(t, check.OK, code)
	var rep check.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	assert.Equal(t, "1.29.0", rep.KubeVersion)
	assert.Empty(t, rep.Violations)
	assert.Contains(t, out, `"violations": []`, "an empty list, not null, for CI")
}

func TestValuesFilesAndFiles(t *testing.T) {
	dir := t.TempDir()
	naive := filepath.Join(dir, "naive.yaml")
	require.NoError(t, os.WriteFile(naive, []byte("replicaCount: 4\nstrategy:\n  rollingUpdate:\n    maxUnavailable: 1\n"), 0o644))
	code, out, _ := run(t, "", "--chart", chartDir, "-f", naive)
	assert.Equal(t, check.Violated, code)
	assert.Contains(t, out, "maxUnavailable 1 is not 0: a rollout goes below full capacity")

	// Manifests from a file, with a kind the rules do not cover.
	r, err := render.Render(render.Options{Chart: chartDir})
	require.NoError(t, err)
	file := filepath.Join(dir, "manifests.yaml")
	require.NoError(t, os.WriteFile(file, []byte(r.Manifest+"\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"), 0o644))
	code, out, _ = run(t, "", file)
	assert.Equal(t, check.OK, code)
	assert.Contains(t, out, "not checked (kinds these rules do not cover): example.com/v1, Kind=Widget")
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("shutdown:\n  terminationGracePeriodSeconds: 10\n"), 0o644))
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"missing file", "", []string{filepath.Join(dir, "nope.yaml")}, "no such file"},
		{"refused values", "", []string{"--chart", chartDir, "-f", bad}, "shutdown.terminationGracePeriodSeconds (10) must be greater than"},
		{"not a manifest", "apiVersion: apps/v1\nkind: Deployment\nspec: {replica: 2}\n", nil, `unknown field "spec.replica"`},
		{"live without a namespace", "", []string{"--live", "api"}, "--live needs -n NAMESPACE"},
		{"unknown format", "", []string{"--format", "xml"}, `--format "xml"`},
		{"bad kube version", "", []string{"--chart", chartDir, "--kube-version", "latest"}, `kube version "latest"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := run(t, tc.stdin, tc.args...)
			assert.Equal(t, check.BadInput, code)
			assert.Contains(t, errOut, tc.want)
		})
	}
}

// Wrong invocations, as users type them: each is refused with a message that names the mistake (and the
// usage where a flag does not apply), never run as something else.
func TestWrongInvocations(t *testing.T) {
	dir := t.TempDir()
	manifests := filepath.Join(dir, "rendered.yaml")
	r, err := render.Render(render.Options{Chart: chartDir})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(manifests, []byte(r.Manifest), 0o644))
	empty := filepath.Join(dir, "empty.yaml")
	require.NoError(t, os.WriteFile(empty, []byte("# nothing yet\n---\n"), 0o644))
	service := filepath.Join(dir, "service.yaml")
	require.NoError(t, os.WriteFile(service, []byte("apiVersion: v1\nkind: Service\nmetadata: {name: api}\nspec: {ports: [{port: 80}]}\n"), 0o644))
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		want  []string
	}{
		{"empty stdin", "", nil, []string{"stdin is empty: no manifest to check"}},
		{"an empty file", "", []string{empty}, []string{empty + " is empty"}},
		{"no Deployment", "", []string{service}, []string{"has no Deployment, so nothing to check (kinds read: Service)"}},
		{"a FILE and -f", "", []string{"-f", manifests, manifests}, []string{"one FILE argument or with -f, not both"}},
		{"two FILE arguments", "", []string{manifests, manifests}, []string{"one FILE argument or with -f, not both"}},
		{"--release without --chart", "", []string{"--release", "shop", manifests}, []string{"-release does not apply to checking manifests", "usage:"}},
		{"-n without --chart or --live", "", []string{"-n", "shop", manifests}, []string{"-n does not apply to checking manifests", "usage:"}},
		{"--kubeconfig without --live", "", []string{"--kubeconfig", "/tmp/kc", manifests}, []string{"-kubeconfig does not apply"}},
		{"--kube-version with --live", "", []string{"--live", "-n", "shop", "--kube-version", "1.30.0", "api"}, []string{"-kube-version does not apply to --live", "usage:"}},
		{"-f with --live", "", []string{"--live", "-n", "shop", "-f", manifests, "api"}, []string{"-f does not apply to --live"}},
		{"--kubeconfig with --chart", "", []string{"--chart", chartDir, "--kubeconfig", "/tmp/kc"}, []string{"-kubeconfig does not apply to --chart"}},
		{"--chart and --live", "", []string{"--live", "--chart", chartDir, "-n", "shop", "api"}, []string{"-chart does not apply to --live"}},
		{"--chart with a FILE", "", []string{"--chart", chartDir, manifests}, []string{"--chart takes no FILE argument"}},
		{"an unknown flag", "", []string{"--values", manifests}, []string{"flag provided but not defined: -values", "usage:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, tc.stdin, tc.args...)
			assert.Equal(t, check.BadInput, code, "stdout: %s", out)
			for _, w := range tc.want {
				assert.Contains(t, errOut, w)
			}
		})
	}
}

// kubectl users type -f for a manifest file: it is read as the manifests, not ignored for stdin.
func TestManifestFileWithF(t *testing.T) {
	file := filepath.Join(t.TempDir(), "rendered.yaml")
	require.NoError(t, os.WriteFile(file, []byte(helmCreate(t)), 0o644))
	code, out, errOut := run(t, "", "-f", file)
	assert.Equal(t, check.Violated, code, errOut)
	assert.Contains(t, out, file+": 7 zero-downtime rule(s) broken (1 Deployment(s)")
}
