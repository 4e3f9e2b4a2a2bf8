package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/go-service/go-service/cluster/image"
	"github.com/go-service/go-service/internal/repo"
)

// ldflags stamp the components with their real version (otherwise they report v0.0.0-master).
func ldflags() string {
	v := KubernetesVersion
	minor := strings.Split(strings.TrimPrefix(v, "v"), ".")[1]
	return strings.Join([]string{"-s", "-w",
		"-X k8s.io/component-base/version.gitVersion=" + v,
		"-X k8s.io/component-base/version.gitMajor=1",
		"-X k8s.io/component-base/version.gitMinor=" + minor,
		"-X k8s.io/component-base/version.gitTreeState=clean",
		"-X k8s.io/component-base/version.buildDate=2026-01-01T00:00:00Z",
		"-X k8s.io/client-go/pkg/version.gitVersion=" + v,
	}, " ")
}

// sourceKey hashes the files that determine a build output, plus the Go version.
func sourceKey(ctx context.Context, dir string, patterns ...string) (string, error) {
	h := sha256.New()
	goVersion, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOVERSION: %w", err)
	}
	h.Write(goVersion)
	var files []string
	for _, p := range patterns {
		m, err := filepath.Glob(filepath.Join(dir, p))
		if err != nil {
			return "", err
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", filepath.Base(f), len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// buildKey identifies a component build: cluster/hk's go.mod, go.sum and sources, and the Go version.
func buildKey(ctx context.Context) (string, error) {
	root, err := repo.Root()
	if err != nil {
		return "", err
	}
	return sourceKey(ctx, filepath.Join(root, "cluster", "hk"), "go.mod", "go.sum", "*.go")
}

// buildComponents returns the multi-call component binary, built from cluster/hk unless the cache has
// it for the same go.mod, go.sum, sources and Go version.
func buildComponents(ctx context.Context, o *Options) (string, error) {
	root, err := repo.Root()
	if err != nil {
		return "", err
	}
	src := filepath.Join(root, "cluster", "hk")
	key, err := buildKey(ctx)
	if err != nil {
		return "", err
	}
	out := filepath.Join(o.CacheDir, "hk", key, "hk")
	if _, err := os.Stat(out); err == nil {
		o.Log("components: cached %s", out)
		return out, nil
	}
	o.Log("components: building Kubernetes %s from cluster/hk (cold: about 5 minutes on 2 cores)", KubernetesVersion)
	start := time.Now()
	tmp := out + ".tmp"
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", ldflags(), "-o", tmp, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build components: %w\n%s", err, b)
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	o.Log("components: built in %s", time.Since(start).Round(time.Second))
	return out, nil
}

// PauseImage is the sandbox image every pod runs, built from cluster/pause.
const PauseImage = "docker.io/go-service/pause:1.0"

// buildPause returns the pause image tarball (cached like the components).
func buildPause(ctx context.Context, o *Options) (string, error) {
	root, err := repo.Root()
	if err != nil {
		return "", err
	}
	key, err := sourceKey(ctx, filepath.Join(root, "cluster", "pause"), "*.go")
	if err != nil {
		return "", err
	}
	dir := filepath.Join(o.CacheDir, "images", key)
	tar := filepath.Join(dir, "pause.tar")
	if _, err := os.Stat(tar); err == nil {
		return tar, nil
	}
	built, err := image.Build(ctx, image.Spec{Ref: PauseImage, Package: "./cluster/pause", Dir: root, Binary: "/pause"}, dir)
	if err != nil {
		return "", err
	}
	return tar, os.Rename(built, tar)
}

// Build builds, or finds in the cache, everything Up needs: the component binary, the pause image and
// the CoreDNS and metrics-server images, side by side as Up does. It needs no root.
func Build(ctx context.Context, o Options) error {
	if err := o.defaults(); err != nil {
		return err
	}
	b := newBringUp(o)
	b.startBuilds(ctx)
	for _, w := range []struct {
		ch   chan built
		what string
	}{{b.hkBuild, "components"}, {b.pauseBuild, "pause image"}, {b.dnsBuild, "CoreDNS image"}, {b.metricsBuild, "metrics-server image"}} {
		path, err := awaitBuild(ctx, w.ch, w.what)
		if err != nil {
			return err
		}
		o.Log("%s: %s", w.what, path)
	}
	return nil
}
