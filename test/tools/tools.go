// Package tools locates the repository and builds the command-line tools the tests call (helm, ct,
// helm-docs, the registry). The tools are pinned by `tool` directives (of the root go.mod, or of a tool's
// own module under tools/) and built from the module cache into <repo>/bin, never downloaded.
package tools

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/go-service/go-service/internal/repo"
	"github.com/go-service/go-service/internal/toolflags"
)

// Packages maps each tool name to the main package the root go.mod pins with a `tool` directive. helm is
// Helm 4, the primary CLI; helm3 is Helm 3, still supported (its own lane of the live suite).
var Packages = map[string]string{
	"helm":      "helm.sh/helm/v4/cmd/helm",
	"helm3":     "helm.sh/helm/v3/cmd/helm",
	"ct":        "github.com/helm/chart-testing/v3/ct",
	"helm-docs": "github.com/norwoodj/helm-docs/cmd/helm-docs",
}

// Modules names the tools pinned in a module of their own (its directory under the repository), so their
// dependencies never move the root module's: the CNCF Distribution registry brings the cloud storage SDKs.
var Modules = map[string]string{
	"registry": "tools/registry",
}

func init() {
	Packages["registry"] = "github.com/distribution/distribution/v3/cmd/registry"
}

// RepoRoot returns the directory of the root go.mod (the repository root).
func RepoRoot() (string, error) { return repo.Root() }

// MustRepoRoot is RepoRoot for tests.
func MustRepoRoot(tb testing.TB) string {
	tb.Helper()
	r, err := RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// BinDir is where the tools are built: <repo>/bin.
func BinDir() (string, error) {
	r, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(r, "bin"), nil
}

var (
	buildMu sync.Mutex
	built   = map[string]string{}
)

// Build builds one pinned tool into <repo>/bin (a no-op when it is up to date) and returns its path.
func Build(name string) (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[name]; ok {
		return p, nil
	}
	pkg, ok := Packages[name]
	if !ok {
		return "", fmt.Errorf("unknown tool %q", name)
	}
	bin, err := BinDir()
	if err != nil {
		return "", err
	}
	out := filepath.Join(bin, name)
	flags, err := toolflags.LDFlags(name)
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "build", "-ldflags", flags, "-o", out, pkg)
	cmd.Dir = filepath.Dir(bin)
	if m, ok := Modules[name]; ok {
		cmd.Dir = filepath.Join(cmd.Dir, m)
	}
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, msg)
	}
	built[name] = out
	return out, nil
}

// Path builds the tool if needed and returns its path; the test fails if it cannot be built.
func Path(tb testing.TB, name string) string {
	tb.Helper()
	p, err := Build(name)
	if err != nil {
		tb.Fatalf("tool %s: %v", name, err)
	}
	return p
}

// PutOnPath builds the named tools and puts <repo>/bin first on PATH for this process, for libraries
// (terratest, ct) that look tools up on PATH. Call it from TestMain, before tests run in parallel.
func PutOnPath(names ...string) error {
	for _, n := range names {
		if _, err := Build(n); err != nil {
			return err
		}
	}
	bin, err := BinDir()
	if err != nil {
		return err
	}
	return os.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
}
