package live

import (
	"maps"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/go-service/go-service/disrupt"
	"github.com/go-service/go-service/load"
)

// grpcValues are a gRPC service's settings: the reference app serves gRPC on containerPorts.grpc beside
// HTTP (grpc.enabled), the kubelet probes it with its own gRPC health checks, and connections end with a
// GOAWAY after the chart's default maximum age.
var grpcValues = map[string]string{
	"replicaCount": "3", "containerPorts.grpc": "9090", "grpc.enabled": "true",
	"probes.startup.type": "grpc", "probes.startup.port": "grpc",
	"probes.readiness.type": "grpc", "probes.readiness.port": "grpc",
	"probes.liveness.type": "grpc", "probes.liveness.port": "grpc",
}

// 1c. Rolling updates of a gRPC service lose no call: gRPC clients multiplex their calls on one
// long-lived connection to the Service's cluster IP (kube-proxy picks a pod once per connection), from
// the host and from a pod, beside the HTTP clients. A draining pod turns its gRPC health NOT_SERVING (the
// kubelet's readiness probe takes it out of the endpoints) and, after the shutdown delay, sends GOAWAY,
// so the clients reconnect to another pod before it stops.
func TestGRPCRollingUpdate(t *testing.T) {
	concurrent(t)
	attempts(t, testGRPCRollingUpdate)
}

func testGRPCRollingUpdate(t *testing.T) {
	ns := env.Namespace(t, "grpc")
	r := install(t, ns, grpcValues, true)
	c := r.pods()[0].Spec.Containers[0]
	require.NotNil(t, c.ReadinessProbe.GRPC, "the readiness probe is the kubelet's gRPC health check")
	require.NotNil(t, c.LivenessProbe.GRPC, "the liveness probe is the kubelet's gRPC health check")
	tr := trafficTo(t, r.target(r.fullname()), disrupt.Options{GRPCPort: 9090})
	rollouts(t, r, tr, 3, "rollout")
	stop(t, tr, "gRPC: rolling update x3", disrupt.ZeroFailures, rolloutFloor(3, 3, 1, 5))
}

// 2c. The gRPC negative control: the same rollouts with an app whose gRPC server stops at SIGTERM
// (GO_SERVICE_MODE=naive: grpc.Server.Stop at once, health SERVING to the end, no GOAWAY, no preStop
// delay) and calls that take 500 ms, so the connection always carries calls when its pod goes. The gRPC
// clients must see UNAVAILABLE inside the rollouts, or they could not see a drop.
func TestGRPCNegativeControl(t *testing.T) {
	concurrent(t)
	ns := env.Namespace(t, "naive-grpc")
	values := naiveValues("naive")
	maps.Copy(values, grpcValues)
	r := install(t, ns, values, true)
	tr := trafficTo(t, r.target(r.fullname()), disrupt.Options{GRPCPort: 9090, GRPCRequest: "sleep=500ms"})
	rollouts(t, r, tr, 2, "rollout")
	stop(t, tr, "negative control: gRPC server stopped at SIGTERM", disrupt.FailuresOf(load.KindUnavailable).On("gRPC"), 0)
}
