package chart_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
)

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
