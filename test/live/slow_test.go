package live_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/go-service/go-service/cluster"
	"github.com/go-service/go-service/test/kube"
	"github.com/go-service/go-service/test/live"
)

// Slow endpoint propagation, as on a large cluster: kube-proxy's minSyncPeriod raised to 5 s. The chart's
// defaults must still lose nothing, and a preStop delay shorter than the lag must be seen losing
// requests: that is what shutdown.preStop.delaySeconds is for. (This file's tests run last: they
// replace the local cluster.)
func TestSlowPropagation(t *testing.T) {
	if env.Local == nil {
		t.Skip("needs the local cluster: the propagation lag of the cluster named by KUBECONFIG cannot be changed here")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	slow, err := kube.Connect(ctx, cluster.Options{Nodes: nodes(), ProxyMinSyncPeriod: "5s"})
	require.NoError(t, err, "restart the local cluster with a 5s kube-proxy minSyncPeriod")
	env, proxyMinSync = slow, 5*time.Second

	t.Run("chart defaults lose nothing", func(t *testing.T) {
		ns := env.Namespace(t, "lag-defaults")
		r := install(t, ns, map[string]string{"replicaCount": "3"}, true)
		tr := live.StartTraffic(t, env, ns, r.serviceIP(), live.TrafficOptions{KeepAliveRate: 50})
		rollouts(t, r, tr, 2, "rollout")
		runs := tr.Stop(t, "5s lag: rolling update x2 (defaults)", "zero failures", minSyncGap())
		for _, run := range runs {
			run.Floor = rolloutFloor(2, 3, 1, 5)
		}
		record(t, runs, false)
	})
	t.Run("a preStop delay shorter than the lag loses requests", func(t *testing.T) {
		ns := env.Namespace(t, "lag-short")
		r := install(t, ns, map[string]string{"replicaCount": "3", "shutdown.preStop.delaySeconds": "1"}, true)
		tr := live.StartTraffic(t, env, ns, r.serviceIP(), live.TrafficOptions{KeepAliveRate: 50})
		rollouts(t, r, tr, 2, "rollout")
		record(t, tr.Stop(t, "5s lag: preStop 1s (shorter than the lag)", "failures", minSyncGap()), true)
	})
}
