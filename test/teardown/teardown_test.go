// Package teardown_test checks that tearing the local cluster down leaves nothing behind on this
// machine: no process, iptables chain, network namespace, interface, mount, cgroup or state directory.
package teardown_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-service/go-service/cluster"
)

func TestDownLeavesNoResidue(t *testing.T) {
	if os.Getenv("KUBECONFIG") != "" {
		t.Skip("KUBECONFIG names another cluster: the local cluster's teardown is not exercised")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	// Tear down a real running cluster: start one if none runs.
	if _, ok := cluster.Status(ctx, cluster.Options{}); !ok {
		_, err := cluster.Up(ctx, cluster.Options{})
		require.NoError(t, err)
	}
	before := cluster.Residue()
	require.NotEmpty(t, before, "a running cluster shows up in Residue (the check can see what it looks for)")

	start := time.Now()
	require.NoError(t, cluster.Down(ctx, cluster.Options{}))
	t.Logf("cluster-down took %s; it removed %d item(s)", time.Since(start).Round(100*time.Millisecond), len(before))
	assert.Empty(t, cluster.Residue())
	status, ok := cluster.Status(ctx, cluster.Options{})
	assert.False(t, ok)
	assert.Equal(t, "no cluster", status)
}
