package chart_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-service/go-service/test/render"
)

// The same guardrails trip for every Kubernetes version (the output differs, the checks must not).
func TestGuardrailsOnEveryVersion(t *testing.T) {
	t.Parallel()
	for _, kube := range render.KubeVersions {
		t.Run("kube-"+kube, func(t *testing.T) {
			t.Parallel()
			_, err := render.Render(render.Options{KubeVersion: kube, Values: m{"shutdown": m{"terminationGracePeriodSeconds": 10}}})
			require.Error(t, err)
			assert.Contains(t, err.Error(), "shutdown.terminationGracePeriodSeconds (10) must be greater than")
		})
	}
}

// The chart refuses clusters older than it supports instead of rendering for them.
func TestKubeVersionFloor(t *testing.T) {
	t.Parallel()
	_, err := render.Render(render.Options{KubeVersion: "1.26.0"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "chart requires kubeVersion: >=1.27.0-0")
}

// A release name that makes the full name an invalid Service name (it starts with a digit) is refused
// with the name it would have and the fix; fullnameOverride fixes it.
func TestReleaseNameMakesAValidServiceName(t *testing.T) {
	t.Parallel()
	_, err := render.Render(render.Options{ReleaseName: "1shop"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `the resources would be named "1shop-go-service" (from the release name "1shop" and nameOverride)`)
	assert.Contains(t, err.Error(), "Set fullnameOverride (e.g. svc-1shop-go-service)")
	res, err := render.Render(render.Options{ReleaseName: "1shop", Values: map[string]any{"fullnameOverride": "shop"}})
	require.NoError(t, err)
	assert.Contains(t, res.Manifest, `name: "shop"`)
}
