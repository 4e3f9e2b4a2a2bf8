package lint_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/repo"
	"sigs.k8s.io/yaml"

	"github.com/go-service/go-service/test/tools"
)

// versionPolicy checks a chart directory against the chart repository that holds its released versions
// (an index.yaml and the archives, as `helm repo index` writes them):
//   - a released version is frozen: the directory must hold exactly that archive's files;
//   - an unreleased version is above every released one, has a section in CHANGELOG.md, and its
//     artifacthub.io/changes annotation lists the section's entries.
func versionPolicy(chartDir, repoDir string) error {
	c, err := loader.LoadDir(chartDir)
	if err != nil {
		return err
	}
	v, err := semver.StrictNewVersion(c.Metadata.Version)
	if err != nil {
		return fmt.Errorf("Chart.yaml version %q is not a semantic version: %w", c.Metadata.Version, err)
	}
	index, err := repo.LoadIndexFile(filepath.Join(repoDir, "index.yaml"))
	if err != nil {
		return err
	}
	for _, released := range index.Entries[c.Name()] {
		rv, err := semver.StrictNewVersion(released.Version)
		if err != nil {
			return fmt.Errorf("%s: version %q: %w", repoDir, released.Version, err)
		}
		if rv.Equal(v) {
			archive, err := loader.LoadFile(filepath.Join(repoDir, released.URLs[0]))
			if err != nil {
				return err
			}
			if diff := fileDiff(archive, c); diff != "" {
				return fmt.Errorf("%s changed since version %s was released (%s) without raising version in Chart.yaml: %s", chartDir, v, released.URLs[0], diff)
			}
			return nil
		}
		if rv.GreaterThan(v) {
			return fmt.Errorf("Chart.yaml version %s is below the released %s", v, rv)
		}
	}
	// Unreleased: a changelog section and the Artifact Hub annotation that agree.
	log, err := os.ReadFile(filepath.Join(chartDir, "CHANGELOG.md"))
	if err != nil {
		return err
	}
	_, section, ok := strings.Cut(string(log), "\n## "+v.String()+"\n")
	if !ok {
		return fmt.Errorf("CHANGELOG.md has no section \"## %s\" for the new version", v)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var changes []struct{ Kind, Description string }
	if err := yaml.Unmarshal([]byte(c.Metadata.Annotations["artifacthub.io/changes"]), &changes); err != nil || len(changes) == 0 {
		return fmt.Errorf("Chart.yaml: the artifacthub.io/changes annotation lists no change for %s (%v)", v, err)
	}
	for _, ch := range changes {
		if !strings.Contains(section, "- "+ch.Kind+": "+ch.Description+"\n") {
			return fmt.Errorf("Chart.yaml artifacthub.io/changes has %q (%s), which CHANGELOG.md's section %s does not", ch.Description, ch.Kind, v)
		}
	}
	n := 0
	for _, l := range strings.Split(section, "\n") {
		if strings.HasPrefix(l, "- ") {
			n++
		}
	}
	if n != len(changes) {
		return fmt.Errorf("CHANGELOG.md's section %s has %d entries and artifacthub.io/changes %d", v, n, len(changes))
	}
	return nil
}

// fileDiff names the files that differ between two loaded charts ("" when none does).
func fileDiff(a, b *chart.Chart) string {
	files := func(c *chart.Chart) map[string][]byte {
		m := map[string][]byte{}
		for _, f := range c.Raw {
			m[f.Name] = f.Data
		}
		return m
	}
	fa, fb := files(a), files(b)
	var diff []string
	for name, data := range fb {
		old, ok := fa[name]
		switch {
		case !ok:
			diff = append(diff, "added "+name)
		case !bytes.Equal(old, data):
			diff = append(diff, "changed "+name)
		}
	}
	for name := range fa {
		if _, ok := fb[name]; !ok {
			diff = append(diff, "removed "+name)
		}
	}
	return strings.Join(diff, ", ")
}

// Nothing under charts/go-service changes without a new version: chart-repo holds the released ones.
func TestChartVersionPolicy(t *testing.T) {
	t.Parallel()
	root := tools.MustRepoRoot(t)
	chartDir, repoDir := filepath.Join(root, "charts", "go-service"), filepath.Join(root, "chart-repo")
	require.NoError(t, versionPolicy(chartDir, repoDir))

	// Each rule fails on a copy of the chart broken the way it guards against.
	withChartYAML := func(t *testing.T, edit func(string) string) string {
		dir := filepath.Join(t.TempDir(), "go-service")
		require.NoError(t, os.CopyFS(dir, os.DirFS(chartDir)))
		data, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "Chart.yaml"), []byte(edit(string(data))), 0o644))
		return dir
	}
	for _, tc := range []struct {
		name string
		edit func(string) string
		want string
	}{
		{"a change under a released version", func(s string) string { return versionRe(s, "0.2.0") }, "changed since version 0.2.0 was released (go-service-0.2.0.tgz) without raising version in Chart.yaml"},
		{"a version below a release", func(s string) string { return versionRe(s, "0.1.5") }, "Chart.yaml version 0.1.5 is below the released 0.2.0"},
		{"a new version without a changelog", func(s string) string { return versionRe(s, "0.9.0") }, `CHANGELOG.md has no section "## 0.9.0"`},
		{"an annotation the changelog lacks", func(s string) string {
			return strings.Replace(s, "A NEL in a key is shown escaped in the message.", "Something else.", 1)
		}, `artifacthub.io/changes has "Something else." (fixed), which CHANGELOG.md's section`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := versionPolicy(withChartYAML(t, tc.edit), repoDir)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func versionRe(chartYAML, version string) string {
	var out []string
	for _, l := range strings.Split(chartYAML, "\n") {
		if strings.HasPrefix(l, "version: ") {
			l = "version: " + version
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}
