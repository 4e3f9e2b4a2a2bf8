// Package image builds container images without Docker: a static Go binary (CGO_ENABLED=0) from a main
// package, plus optional extra files (for example a static `sleep` for exec preStop hooks), written as a
// docker-archive tarball with go-containerregistry, and loaded into a containerd for the kubelet.
//
// For clusters other than the local one, load the tarball yourself (`kind load image-archive`,
// `ctr -n k8s.io images import`) or push it to a registry (see the README).
package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Spec describes an image built from a Go main package.
type Spec struct {
	// Ref is the image reference, e.g. "go-service:0.1.0" (containerd stores it as
	// docker.io/library/go-service:0.1.0, which is also how the kubelet resolves it).
	Ref string
	// Package is the Go main package to build, e.g. "./cmd/reference".
	Package string
	// Tags are build tags for Package (go build -tags).
	Tags []string
	// Prebuilt is a static binary to use instead of building Package.
	Prebuilt string
	// Dir is the directory `go build` runs in (the package's module).
	Dir string
	// Binary is the binary's path in the image (default "/app").
	Binary string
	// Files are extra files copied into the image: path in the image -> path on this machine.
	Files map[string]string
	// Symlinks: path in the image -> link target.
	Symlinks map[string]string
	// Entrypoint defaults to [Binary].
	Entrypoint []string
	// Env of the image config.
	Env []string
}

// Build compiles the package statically and writes the image tarball into outDir. It returns the
// tarball's path.
func Build(ctx context.Context, s Spec, outDir string) (string, error) {
	if s.Ref == "" || (s.Package == "") == (s.Prebuilt == "") {
		return "", fmt.Errorf("image: Ref and one of Package or Prebuilt are required")
	}
	ref, err := name.NewTag(s.Ref)
	if err != nil {
		return "", fmt.Errorf("image ref %q: %w", s.Ref, err)
	}
	if s.Binary == "" {
		s.Binary = "/app"
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", err
	}
	bin := s.Prebuilt
	if bin == "" {
		bin = filepath.Join(outDir, safeName(s.Ref)+".bin")
		args := []string{"build", "-trimpath", "-ldflags", "-s -w", "-o", bin}
		if len(s.Tags) > 0 {
			args = append(args, "-tags", strings.Join(s.Tags, ","))
		}
		cmd := exec.CommandContext(ctx, "go", append(args, s.Package)...)
		cmd.Dir = s.Dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("image %s: go build %s: %w\n%s", s.Ref, s.Package, err, out)
		}
	}
	files := map[string]string{s.Binary: bin}
	for dst, src := range s.Files {
		files[dst] = src
	}
	layer, err := layerOf(files, s.Symlinks)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", s.Ref, err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return "", err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return "", err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = "amd64", "linux"
	entry := s.Entrypoint
	if len(entry) == 0 {
		entry = []string{s.Binary}
	}
	cfg.Config = v1.Config{Entrypoint: entry, Env: append([]string{"PATH=/bin:/usr/bin"}, s.Env...)}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return "", err
	}
	out := filepath.Join(outDir, safeName(s.Ref)+".tar")
	if err := tarball.WriteToFile(out, ref, img); err != nil {
		return "", fmt.Errorf("image %s: write %s: %w", s.Ref, out, err)
	}
	return out, nil
}

// layerOf writes one tar layer with the files (mode 0755), symlinks, /etc/passwd and the usual
// directories, every timestamp fixed so the same inputs give the same layer.
func layerOf(files, links map[string]string) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(0, 0)
	dirs := map[string]bool{}
	mkdirs := func(p string) error {
		parts := strings.Split(strings.Trim(p, "/"), "/")
		for i := 1; i < len(parts); i++ {
			d := strings.Join(parts[:i], "/") + "/"
			if dirs[d] {
				continue
			}
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime}); err != nil {
				return err
			}
		}
		return nil
	}
	add := func(name string, mode int64, data []byte) error {
		if err := mkdirs(name); err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(name, "/"), Mode: mode, Size: int64(len(data)), ModTime: mtime}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []string{"/tmp/", "/etc/", "/proc/", "/sys/", "/dev/", "/var/run/"} {
		if err := mkdirs(d + "x"); err != nil {
			return nil, err
		}
	}
	if err := add("/etc/passwd", 0o644, []byte("root:x:0:0:root:/:/sbin/nologin\nnonroot:x:65532:65532::/:/sbin/nologin\nnobody:x:65534:65534::/:/sbin/nologin\n")); err != nil {
		return nil, err
	}
	for _, dst := range sortedKeys(files) {
		data, err := os.ReadFile(files[dst])
		if err != nil {
			return nil, err
		}
		if err := add(dst, 0o755, data); err != nil {
			return nil, err
		}
	}
	for _, dst := range sortedKeys(links) {
		if err := mkdirs(dst); err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(dst, "/"), Typeflag: tar.TypeSymlink, Linkname: links[dst], Mode: 0o777, ModTime: mtime}); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func safeName(ref string) string {
	return strings.NewReplacer("/", "_", ":", "_", "@", "_").Replace(ref)
}

// Load imports an image tarball into the containerd listening on socket, in the namespace the kubelet
// uses (k8s.io).
func Load(ctx context.Context, tarPath, socket string) error {
	cmd := exec.CommandContext(ctx, "ctr", "--address", socket, "-n", "k8s.io", "images", "import", tarPath)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ctr images import %s into %s: %w\n%s", tarPath, socket, err, out)
	}
	return nil
}
