package chart_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/go-service/go-service/test/render"
)

// mustRender renders a case the suite expects to succeed, requires Helm 4's `helm template` to render
// the same objects for the same values (kit users test what they deploy) and, with -record-renders DIR,
// writes what it rendered (manifest and hooks) to DIR for the live suite's server-side dry-run.
func mustRender(tb testing.TB, opts render.Options) *render.Result {
	tb.Helper()
	r := render.MustRender(tb, opts)
	if *cliParity {
		assertCLIParity(tb, opts, r, "helm")
	}
	record(tb, r)
	return r
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func record(tb testing.TB, r *render.Result) {
	tb.Helper()
	if *recordRenders == "" {
		return
	}
	docs := []string{r.Manifest}
	for _, h := range r.Hooks {
		docs = append(docs, h.Manifest)
	}
	base := filepath.Join(*recordRenders, unsafeName.ReplaceAllString(tb.Name(), "_"))
	for i := 1; ; i++ {
		name := base + ".yaml"
		if i > 1 {
			name = fmt.Sprintf("%s.%d.yaml", base, i) // a test that renders more than once
		}
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if os.IsExist(err) {
			continue
		}
		if err == nil {
			_, err = f.WriteString(strings.Join(docs, "\n---\n"))
			err = errors.Join(err, f.Close())
		}
		if err != nil {
			tb.Fatalf("record the render: %v", err)
		}
		return
	}
}

// envVar returns the container's environment variable, failing the test when it is missing.
func envVar(tb testing.TB, c corev1.Container, name string) corev1.EnvVar {
	tb.Helper()
	for _, e := range c.Env {
		if e.Name == name {
			return e
		}
	}
	tb.Fatalf("container %s has no env %s", c.Name, name)
	return corev1.EnvVar{}
}

// hasEnv reports whether the container sets the environment variable.
func hasEnv(c corev1.Container, name string) bool {
	for _, e := range c.Env {
		if e.Name == name {
			return true
		}
	}
	return false
}

func containsAny(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// m is shorthand for nested values.
type m = map[string]any

func objectLabels(o runtime.Object) (map[string]string, bool) {
	a, err := meta.Accessor(o)
	if err != nil {
		return nil, false
	}
	return a.GetLabels(), true
}
