package disrupt_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gruntwork-io/terratest/modules/helm"
	"github.com/gruntwork-io/terratest/modules/k8s"

	"github.com/go-service/go-service/disrupt"
)

// A rolling update under load in a terratest test: install the release, start the load, upgrade, stop.
// Stop fails the test on any lost request, any request slower than a second, too little load around
// the rollout, or a rollout that replaced nothing; the reports go to results/disruption.
func Example() {
	var t *testing.T // the test's own
	kubectl := k8s.NewKubectlOptions("", "", "shop-test")
	opts := &helm.Options{KubectlOptions: kubectl, ExtraArgs: map[string][]string{"install": {"--wait"}}}
	helm.Install(t, opts, "./chart", "shop")

	tr := disrupt.Start(t, disrupt.Target{Helm: opts, Release: "shop", Deployment: "shop-api", Service: "shop-api"},
		disrupt.Options{LoadImage: "registry.example.com/go-service:0.1.0"})
	tr.Upgrade(t, "rollout", "./chart", map[string]string{"api.image.tag": "v2"})
	tr.Stop(t, disrupt.Scenario{Name: "rolling update"})
}

// The pause after a disruption and what the gates require follow from the cluster's propagation lag.
func ExampleOptions_Settle() {
	o := disrupt.Options{ProxyMinSync: 3 * time.Second}
	fmt.Println("settle:", o.Settle())
	fmt.Println("load must run on after the disruption for:", o.Policy().SettleAfter)
	// Output:
	// settle: 4.5s
	// load must run on after the disruption for: 4s
}
