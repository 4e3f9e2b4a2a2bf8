package rules_test

import (
	"fmt"
	"os"

	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/go-service/go-service/render"
	"github.com/go-service/go-service/rules"
)

// Check the chart `helm create` scaffolds: what it leaves to chance during a rollout or a drain.
func ExampleCheck() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	chart, err := chartutil.Create("demo", dir)
	if err != nil {
		panic(err)
	}
	r, err := render.Render(render.Options{Chart: chart, ReleaseName: "demo", KubeVersion: "1.34.0"})
	if err != nil {
		panic(err)
	}
	violations, err := rules.Check(r.Objects, rules.Options{KubeVersion: "1.34.0"})
	if err != nil {
		panic(err)
	}
	for _, v := range violations {
		fmt.Printf("%s %s: %s\n", v.Rule, v.Field, v.Fix)
	}
	// Output:
	// replicas.single spec.replicas: Run at least 2 replicas
	// rollout.max-unavailable spec.strategy.rollingUpdate.maxUnavailable: Set maxUnavailable to 0
	// probes.startup spec.template.spec.containers[demo].startupProbe: Add a startup probe so liveness starts after the app is up
	// probes.shared-path spec.template.spec.containers[demo].livenessProbe.httpGet.path: Give liveness its own endpoint that stays up while the app drains
	// probes.liveness-tolerance spec.template.spec.containers[demo].livenessProbe: Raise the liveness periodSeconds or failureThreshold
	// shutdown.prestop spec.template.spec.containers[demo].lifecycle.preStop: Add a preStop sleep (5 s or your endpoint propagation time), or delay shutdown in the app
	// disruption.pdb (PodDisruptionBudget): Add a PodDisruptionBudget with maxUnavailable 1 that selects the pods (with 2 or more replicas)
}
