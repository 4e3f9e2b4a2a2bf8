package live

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/go-service/go-service/cluster"
	"github.com/go-service/go-service/disrupt"
	"github.com/go-service/go-service/load"
	"github.com/go-service/go-service/test/kube"
)

// lag is the endpoint propagation lag of the slow cluster: kube-proxy's minSyncPeriod. The chart's
// default preStop delay (5 s) is meant to bridge lags up to about 3 s (the sync period, plus the endpoint
// controller and the rule sync themselves); a longer lag needs a longer shutdown.preStop.delaySeconds.
const lag = 3 * time.Second

// Slow endpoint propagation, as on a large cluster: kube-proxy's minSyncPeriod raised to 3 s. kube-proxy
// syncs at once when the last sync is older than that, so the lag only shows when endpoint changes come
// in bursts: the negative control sets minReadySeconds 0, so each pod's removal follows its
// replacement's readiness at once. The chart's defaults (whose minReadySeconds 5 also spaces the changes)
// must lose nothing, and a preStop delay shorter than the lag must be seen losing
// requests: that is what shutdown.preStop.delaySeconds is for. The negative control runs the plain
// net/http app, which closes its listener at SIGTERM (the graceful package keeps it open while new
// connections still arrive, which would hide the short delay). (This test runs alone, after the
// other serial ones and before the concurrent ones: it replaces the local cluster, and puts the usual
// one back when it ends.)
func TestSlowPropagation(t *testing.T) {
	if env.Local == nil {
		t.Skip("needs the local cluster: the propagation lag of the cluster named by KUBECONFIG cannot be changed here")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// The scenarios that run beside each other (concurrent) start after this test: they get the usual
	// cluster back, with what they share loaded, even when the slow one did not start.
	usual := proxyMinSync
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		back, err := kube.Connect(ctx, cluster.Options{Nodes: nodes()})
		if err != nil {
			lostCluster = err
			t.Errorf("restart the local cluster with the usual kube-proxy minSyncPeriod: %v", err)
			return
		}
		env, proxyMinSync = back, usual
		shared(t)
	})
	slow, err := kube.Connect(ctx, cluster.Options{Nodes: nodes(), ProxyMinSyncPeriod: lag.String()})
	require.NoError(t, err, "restart the local cluster with a %s kube-proxy minSyncPeriod", lag)
	env, proxyMinSync = slow, lag

	t.Run("chart defaults lose nothing", repeated(func(t *testing.T) {
		ns := env.Namespace(t, "lag-defaults")
		r := install(t, ns, map[string]string{"replicaCount": "3"}, true)
		tr := traffic(t, r)
		rollouts(t, r, tr, 2, "rollout")
		stop(t, tr, "3s lag: rolling update x2 (defaults)", disrupt.ZeroFailures, rolloutFloor(2, 3, 1, 5))
	}))
	t.Run("a preStop delay shorter than the lag loses requests", func(t *testing.T) {
		ns := env.Namespace(t, "lag-short")
		r := install(t, ns, map[string]string{"replicaCount": "3", "minReadySeconds": "0", "shutdown.preStop.delaySeconds": "1",
			"env[0].name": "GO_SERVICE_MODE", "env[0].value": "plain"}, true)
		tr := traffic(t, r)
		rollouts(t, r, tr, 2, "rollout")
		// Refused while the pod still exists, timed out once it is gone and its IP still in the rules.
		stop(t, tr, "3s lag: preStop 1s (shorter than the lag), plain app", disrupt.FailuresOf(load.KindRefused, load.KindReset, load.KindEOF, load.KindTimeout).On("new-conn"), 0)
	})
}
