package render_test

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/go-service/go-service/render"
)

// Load a chart once, then render it for many value sets: the chart is read and its values schema
// compiled once.
func ExampleChart_Render() {
	c, err := render.Load("../charts/go-service")
	if err != nil {
		panic(err)
	}
	for _, replicas := range []int{2, 5} {
		r, err := c.Render(render.Options{KubeVersion: "1.34.0", Values: map[string]any{"replicaCount": replicas}})
		if err != nil {
			panic(err)
		}
		d := render.All[*appsv1.Deployment](r)[0]
		fmt.Println(d.Name, *d.Spec.Replicas, d.Spec.Strategy.RollingUpdate.MaxUnavailable.String())
	}
	// Output:
	// test-go-service 2 0
	// test-go-service 5 0
}

// A refused value is Helm's own error, word for word.
func ExampleChart_Render_refused() {
	c, err := render.Load("../charts/go-service")
	if err != nil {
		panic(err)
	}
	_, err = c.Render(render.Options{Values: map[string]any{"securityContext": map[string]any{"runAsUsr": 1000}}})
	fmt.Print(err)
	// Output:
	// values don't meet the specifications of the schema(s) in the following chart(s):
	// go-service:
	// - at '/securityContext': additional properties 'runAsUsr' not allowed
}
