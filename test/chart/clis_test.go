package chart_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-service/go-service/test/render"
	"github.com/go-service/go-service/test/tools"
)

// The CLIs users deploy the chart with: Helm 4 (the primary one) and Helm 3, both pinned in go.mod.
var helmCLIs = []string{"helm", "helm3"}

// cliError is a refusal printed by a helm CLI: its stderr, without the "Error: " prefix.
type cliError struct{ stderr string }

func (e *cliError) Error() string { return e.stderr }

// cliLimit bounds the helm processes the render suite runs at once: each is a whole Helm start-up.
var cliLimit = make(chan struct{}, 4)

// cliTemplate renders opts through `helm template` of the named CLI, as a user of that CLI would: the
// values of opts.Values in a values file after opts.ValuesFiles, the same release, namespace, Kubernetes
// version, API versions and upgrade flag. It returns the manifest (hooks included, as helm template
// prints them) or a *cliError with the CLI's message.
func cliTemplate(tb testing.TB, cli string, opts render.Options) (string, error) {
	tb.Helper()
	bin := tools.Path(tb, cli)
	chart := opts.Chart
	if chart == "" {
		var err error
		chart, err = render.ChartDir()
		require.NoError(tb, err)
	}
	name, ns, kube := opts.ReleaseName, opts.Namespace, opts.KubeVersion
	if name == "" {
		name = "test"
	}
	if ns == "" {
		ns = "default"
	}
	if kube == "" {
		kube = render.DefaultKubeVersion
	}
	args := []string{"template", name, chart, "--namespace", ns, "--kube-version", kube}
	for _, f := range opts.ValuesFiles {
		args = append(args, "-f", f)
	}
	if opts.Values != nil {
		// JSON is YAML that keeps every string as it is (a NEL, a line separator), and the directory's
		// name has no comma: helm splits -f at commas, and tb.TempDir is named after the test.
		data, err := json.Marshal(opts.Values)
		require.NoError(tb, err)
		data = escapeC1(data)
		dir, err := os.MkdirTemp("", "values")
		require.NoError(tb, err)
		tb.Cleanup(func() { os.RemoveAll(dir) })
		f := filepath.Join(dir, "values.yaml")
		require.NoError(tb, os.WriteFile(f, data, 0o644))
		args = append(args, "-f", f)
	}
	for _, v := range opts.APIVersions {
		args = append(args, "--api-versions", v)
	}
	if opts.IsUpgrade {
		args = append(args, "--is-upgrade")
	}
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+tb.TempDir(), "HELM_CACHE_HOME="+tb.TempDir(), "HELM_DATA_HOME="+tb.TempDir())
	cliLimit <- struct{}{}
	err := cmd.Run()
	<-cliLimit
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			tb.Fatalf("%s %s: %v", cli, strings.Join(args, " "), err)
		}
		// The CLI's own trailer (a hint about --debug) is not part of the refusal.
		msg := strings.TrimPrefix(stderr.String(), "Error: ")
		msg = strings.TrimRight(strings.TrimSuffix(strings.TrimSpace(msg), "Use --debug flag to render out invalid YAML"), "\n") + "\n"
		return "", &cliError{stderr: msg}
	}
	return stdout.String(), nil
}

// assertCLIParity renders opts through the named helm CLIs and requires the objects the kit rendered
// (res): what a kit user tests is what Helm 4 and Helm 3 deploy.
func assertCLIParity(tb testing.TB, opts render.Options, res *render.Result, clis ...string) {
	tb.Helper()
	var wg sync.WaitGroup
	type result struct {
		out string
		err error
	}
	got := make([]result, len(clis))
	for i, cli := range clis {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := cliTemplate(tb, cli, opts)
			got[i] = result{out, err}
		}()
	}
	wg.Wait()
	for i, cli := range clis {
		if !assert.NoError(tb, got[i].err, "%s template renders what the kit renders", cli) {
			continue
		}
		objs, err := render.Decode(got[i].out)
		if assert.NoError(tb, err, "%s template output decodes", cli) {
			assert.Equal(tb, res.Objects, objs, "%s template renders the kit's objects", cli)
		}
	}
}

// Every case of the refusal table through Helm 4 and Helm 3: the same values are refused with the same
// problems, word for word, and the risky choices render the kit's objects. Helm 4 drops the null
// defaults of values.yaml before it validates; the schema requires no key whose default is null.
func TestRefusalsUnderHelmCLIs(t *testing.T) {
	t.Parallel()
	cases, _ := loadRefusals(t)
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			opts := render.Options{KubeVersion: tc.Kube, Values: tc.Values}
			if tc.Warns != "" {
				res, err := render.Render(opts)
				require.NoError(t, err)
				assertCLIParity(t, opts, res, helmCLIs...)
				return
			}
			for _, cli := range helmCLIs {
				_, err := cliTemplate(t, cli, opts)
				require.Error(t, err, "%s refuses %v", cli, tc.Values)
				kind, lines := problems(err)
				require.NotEmpty(t, kind, "%s: refused by a check or the schema:\n%v", cli, err)
				assert.Equal(t, tc.Refused, lines, "%s: the exact problems", cli)
			}
		})
	}
}

// `helm template charts/go-service`, as a user first types it (no --kube-version, no values), renders
// the chart's defaults under both CLIs.
func TestHelmTemplateAsTyped(t *testing.T) {
	t.Parallel()
	chart, err := render.ChartDir()
	require.NoError(t, err)
	for _, cli := range helmCLIs {
		t.Run(cli, func(t *testing.T) {
			t.Parallel()
			out, err := exec.Command(tools.Path(t, cli), "template", chart).CombinedOutput()
			require.NoError(t, err, "%s template %s:\n%s", cli, chart, out)
			objs, err := render.Decode(string(out))
			require.NoError(t, err)
			assert.NotEmpty(t, objs)
			assert.Contains(t, string(out), "kind: Deployment", fmt.Sprintf("%s renders the Deployment", cli))
		})
	}
}

// escapeC1 escapes the C1 control characters (U+0080 to U+009F) that encoding/json leaves as they are: a
// YAML parser reads a raw NEL (U+0085) as a line break, even inside a quoted string.
func escapeC1(data []byte) []byte {
	var b strings.Builder
	for _, r := range string(data) {
		if r >= 0x80 && r <= 0x9f {
			fmt.Fprintf(&b, "\\u%04x", r)
			continue
		}
		b.WriteRune(r)
	}
	return []byte(b.String())
}
