// Package publish publishes the chart the ways users consume it, on loopback only: packaged with helm
// package, pushed to a real OCI registry (CNCF Distribution, built from the module proxy, started for
// the test with in-memory storage) and served from a classic chart repository (index.yaml over HTTP).
// Every server stops, and every file goes, when the test ends.
package publish

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-service/go-service/test/tools"
)

// Helm runs the pinned helm with its cache, config and data in temporary directories (registry logins,
// repository indexes), so a test never reads or writes the user's.
type Helm struct {
	bin string
	env []string
}

// NewHelm returns a Helm isolated for the test.
func NewHelm(tb testing.TB) *Helm {
	tb.Helper()
	return &Helm{bin: tools.Path(tb, "helm"), env: append(os.Environ(),
		"HELM_CACHE_HOME="+tb.TempDir(), "HELM_CONFIG_HOME="+tb.TempDir(), "HELM_DATA_HOME="+tb.TempDir())}
}

// Run runs helm and fails the test with its output when it fails.
func (h *Helm) Run(tb testing.TB, args ...string) string {
	tb.Helper()
	cmd := exec.Command(h.bin, args...)
	cmd.Env = h.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("helm %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// Package packages a chart directory into dir and returns the archive's path.
func (h *Helm) Package(tb testing.TB, chartDir, dir string) string {
	tb.Helper()
	h.Run(tb, "package", chartDir, "-d", dir)
	archives, err := filepath.Glob(filepath.Join(dir, "*.tgz"))
	if err != nil || len(archives) == 0 {
		tb.Fatalf("helm package %s wrote no archive into %s", chartDir, dir)
	}
	return archives[len(archives)-1]
}

// ServeRepository indexes dir as a chart repository (merging an existing index.yaml, as `make release`
// does) and serves it over HTTP on loopback; it returns the repository's URL.
func (h *Helm) ServeRepository(tb testing.TB, dir string) string {
	tb.Helper()
	args := []string{"repo", "index", dir}
	if _, err := os.Stat(filepath.Join(dir, "index.yaml")); err == nil {
		args = append(args, "--merge", filepath.Join(dir, "index.yaml"))
	}
	h.Run(tb, args...)
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	tb.Cleanup(srv.Close)
	return srv.URL
}

// StartRegistry starts a CNCF Distribution registry on a loopback address (addr, or a free port when
// addr is ""), with in-memory storage, waits until it answers /v2/, and stops it when the test ends. It
// returns host:port.
func StartRegistry(tb testing.TB, addr string) string {
	tb.Helper()
	bin := tools.Path(tb, "registry")
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatalf("registry address: %v", err)
	}
	addr = l.Addr().String()
	l.Close()
	cfg := filepath.Join(tb.TempDir(), "config.yml")
	config := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  inmemory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", addr)
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		tb.Fatal(err)
	}
	logFile := filepath.Join(tb.TempDir(), "registry.log")
	logOut, err := os.Create(logFile)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfg)
	cmd.Stdout, cmd.Stderr = logOut, logOut
	// No proxy, no telemetry: the registry only ever talks to loopback.
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none", "OTEL_SDK_DISABLED=true")
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		logOut.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v2/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(logFile)
			tb.Fatalf("registry exited before answering: %v\n%s", err, log)
		case <-ctx.Done():
			log, _ := os.ReadFile(logFile)
			tb.Fatalf("registry on %s did not answer /v2/ within a minute\n%s", addr, log)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Push packages a chart directory and pushes it to the registry's charts repository with `helm push`;
// it returns the repository to depend on (oci://REGISTRY/charts) and helm's output.
func (h *Helm) Push(tb testing.TB, chartDir, registry string) (repository, out string) {
	tb.Helper()
	repository = "oci://" + registry + "/charts"
	return repository, h.Run(tb, "push", h.Package(tb, chartDir, tb.TempDir()), repository, "--plain-http")
}

// Dependency is one go-service entry of an umbrella chart.
type Dependency struct {
	Alias, Version, Repository string
}

// Umbrella writes an umbrella chart named shop that depends on go-service once per dependency (and its
// values.yaml when values is not nil) into a temporary directory, runs `helm dependency update` on it, as
// a team's CI does, and returns its directory.
func (h *Helm) Umbrella(tb testing.TB, values []byte, deps ...Dependency) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "shop")
	chartYAML := "apiVersion: v2\nname: shop\nversion: 1.0.0\ndependencies:\n"
	for _, d := range deps {
		chartYAML += fmt.Sprintf("  - name: go-service\n    alias: %s\n    version: %s\n    repository: %s\n", d.Alias, d.Version, d.Repository)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Chart.yaml"), []byte(chartYAML), 0o644); err != nil {
		tb.Fatal(err)
	}
	if values != nil {
		if err := os.WriteFile(filepath.Join(dir, "values.yaml"), values, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	h.Run(tb, "dependency", "update", dir, "--plain-http")
	return dir
}
