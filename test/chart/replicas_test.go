package chart_test

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/go-service/go-service/rules"
	"github.com/go-service/go-service/test/render"
)

// managed is one managedFields entry of a live Deployment: who set which of spec's fields, and how.
func managed(manager string, op metav1.ManagedFieldsOperationType, subresource string, fields ...string) metav1.ManagedFieldsEntry {
	spec := map[string]any{}
	for _, f := range fields {
		spec["f:"+f] = map[string]any{}
	}
	raw, _ := json.Marshal(map[string]any{"f:spec": spec})
	return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, Subresource: subresource, APIVersion: "apps/v1",
		FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: raw}}
}

// liveDeployment is a Deployment as lookup returns it: replicas, the chart's annotations and managedFields.
func liveDeployment(tb testing.TB, replicas int32, annotations map[string]string, fields ...metav1.ManagedFieldsEntry) map[string]any {
	tb.Helper()
	d := appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "svc-go-service", Annotations: annotations, ManagedFields: fields},
		Spec:       appsv1.DeploymentSpec{Replicas: &replicas, Template: corev1.PodTemplateSpec{}},
	}
	data, err := json.Marshal(d)
	require.NoError(tb, err)
	var obj map[string]any
	require.NoError(tb, json.Unmarshal(data, &obj))
	return obj
}

// With an autoscaler, the chart renders spec.replicas only where leaving it out would reset the scale,
// whatever deploys it: the decision for each kind of live Deployment lookup can return. The live suite's
// TestScaleKeptByEveryDeployer shows each deployer keeping the scale on a real cluster.
func TestReplicasFromLive(t *testing.T) {
	t.Parallel()
	var (
		left      = map[string]string{rules.ReplicasAnnotation: "autoscaler"}
		helmCSA   = managed("helm", metav1.ManagedFieldsOperationUpdate, "", "replicas", "template")
		helmSSA   = managed("helm", metav1.ManagedFieldsOperationApply, "", "replicas", "template")
		helmSSANo = managed("helm", metav1.ManagedFieldsOperationApply, "", "template")
		hpa       = managed("kube-controller-manager", metav1.ManagedFieldsOperationUpdate, "scale", "replicas")
		argoSSA   = managed("argocd-controller", metav1.ManagedFieldsOperationApply, "", "template")
	)
	cases := []struct {
		name string
		live map[string]any
		min  int
		want string // "" leaves replicas out
	}{
		{name: "no live Deployment (helm template, a first install)", live: nil, min: 2, want: ""},
		{name: "client-side, replicas rendered before (autoscaling turned on)", live: liveDeployment(t, 4, nil, helmCSA), min: 2, want: "4"},
		{name: "client-side, rendered before, the HPA scaled since", live: liveDeployment(t, 7, nil, helmCSA, hpa), min: 2, want: "7"},
		{name: "client-side, rendered before, below the minimum", live: liveDeployment(t, 1, nil, helmCSA), min: 3, want: "3"},
		{name: "client-side, left out before", live: liveDeployment(t, 7, left, helmCSA, hpa), min: 2, want: ""},
		{name: "server-side, only the chart set the scale", live: liveDeployment(t, 4, nil, helmSSA), min: 2, want: "4"},
		{name: "server-side, the HPA set the scale since", live: liveDeployment(t, 7, nil, helmSSANo, hpa), min: 2, want: ""},
		{name: "server-side, left out before", live: liveDeployment(t, 7, left, helmSSANo), min: 2, want: ""},
		{name: "another applier (Argo CD server-side), left out before", live: liveDeployment(t, 5, left, argoSSA, hpa), min: 2, want: ""},
	}
	values := map[string]any{}
	for i, c := range cases {
		values[string(rune('a'+i))] = map[string]any{"live": c.live, "min": c.min}
	}
	chart := render.BuildDependencies(t, filepath.Join("testdata", "replicas"))
	res := render.MustRender(t, render.Options{Chart: chart, Values: map[string]any{"cases": values}})
	var cm *corev1.ConfigMap
	for _, c := range render.All[*corev1.ConfigMap](res) {
		if c.Name == "decisions" {
			cm = c
		}
	}
	require.NotNil(t, cm, "the decisions ConfigMap")
	require.Len(t, cm.Data, len(cases))
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, cm.Data[string(rune('a'+i))])
		})
	}
}
