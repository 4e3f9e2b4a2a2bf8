// Package chart_test is the render suite: it renders charts/go-service in-process with the Helm SDK for
// explicit Kubernetes versions, decodes every document strictly into typed objects and asserts the
// zero-downtime rules, every value, every guardrail, the dependency-chart use and golden files.
package chart_test

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/go-service/go-service/test/tools"
)

var (
	update = flag.Bool("update", false, "rewrite the golden files under testdata/golden from the current chart")
	// recordRenders names a directory where every render the suite expects to succeed is written, one
	// file per test: the live suite applies them with server-side dry-run (TestServerSideDryRun).
	recordRenders = flag.String("record-renders", "", "write every render expected to succeed to this directory")
	// cliParity compares every render the suite expects to succeed with Helm 4's `helm template` (on by
	// default; the live suite's recording run, which needs only the renders, turns it off).
	cliParity = flag.Bool("cli-parity", true, "compare every render with Helm 4's helm template")
)

func TestMain(m *testing.M) {
	flag.Parse()
	// terratest's helm module runs `helm` from PATH: put the pinned build first.
	if err := tools.PutOnPath("helm", "helm3"); err != nil {
		fmt.Fprintln(os.Stderr, "render suite:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}
