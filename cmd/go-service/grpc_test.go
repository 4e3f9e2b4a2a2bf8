package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/go-service/go-service/graceful"
	"github.com/go-service/go-service/graceful/grpcx"
	"github.com/go-service/go-service/load"
)

// freePort is a loopback port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// With GO_SERVICE_GRPC_PORT (what the chart sets for grpc.enabled) the reference service serves gRPC
// beside HTTP: Whoami names the pod, the health service answers what the kubelet's grpc probes ask (the
// server SERVING, LivenessService SERVING), and on SIGTERM the server turns NOT_SERVING, keeps liveness,
// and both servers drain and return.
func TestServesGRPCBesideHTTP(t *testing.T) {
	t.Parallel()
	httpPort, grpcPort := freePort(t), freePort(t)
	env := map[string]string{
		"GO_SERVICE_HTTP_PORT": strconv.Itoa(httpPort), "GO_SERVICE_GRPC_PORT": strconv.Itoa(grpcPort),
		"GO_SERVICE_SHUTDOWN_DELAY": "300ms", "GO_SERVICE_DRAIN_TIMEOUT": "2s", "GO_SERVICE_GRPC_MAX_CONNECTION_AGE": "1m",
	}
	getenv := func(k string) string { return env[k] }
	cfg, err := graceful.FromEnv(getenv)
	require.NoError(t, err)
	ctx, sigterm := context.WithCancel(context.Background())
	defer sigterm()
	done := make(chan error, 1)
	go func() {
		done <- serveGraceful(ctx, slog.New(slog.DiscardHandler), getenv, graceful.New(cfg, http.NotFoundHandler(), nil), "pod=test")
	}()

	cc, err := grpc.NewClient("127.0.0.1:"+strconv.Itoa(grpcPort), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer cc.Close()
	health := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		resp, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			return healthpb.HealthCheckResponse_UNKNOWN
		}
		return resp.Status
	}
	require.Eventually(t, func() bool { return health("") == healthpb.HealthCheckResponse_SERVING }, 5*time.Second, 20*time.Millisecond)
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, health(grpcx.LivenessService))
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, health(load.WhoamiService))
	out := new(wrapperspb.StringValue)
	require.NoError(t, cc.Invoke(context.Background(), load.WhoamiMethod, wrapperspb.String(""), out))
	assert.Equal(t, "pod=test", out.GetValue())

	sigterm()
	assert.Eventually(t, func() bool { return health("") == healthpb.HealthCheckResponse_NOT_SERVING }, time.Second, 10*time.Millisecond)
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, health(grpcx.LivenessService), "liveness holds while draining")
	select {
	case err := <-done:
		assert.NoError(t, err, "both servers drained cleanly")
	case <-time.After(10 * time.Second):
		t.Fatal("serveGraceful did not return after SIGTERM")
	}
}

// A bad gRPC setting stops the service with an error that names the variable.
func TestBadGRPCSettingIsRefused(t *testing.T) {
	t.Parallel()
	env := map[string]string{"GO_SERVICE_GRPC_PORT": "9090", "GO_SERVICE_GRPC_MAX_CONNECTION_AGE": "soon"}
	err := serveGraceful(context.Background(), slog.New(slog.DiscardHandler), func(k string) string { return env[k] }, graceful.New(graceful.Defaults, http.NotFoundHandler(), nil), "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "GO_SERVICE_GRPC_MAX_CONNECTION_AGE")
}

func TestGRPCClientFlag(t *testing.T) {
	t.Parallel()
	var g grpcFlags
	require.NoError(t, g.Set("pick_first:50:10.96.0.10:9090"))
	require.NoError(t, g.Set("round_robin:20:dns:///app-headless.ns.svc:9090"))
	assert.Equal(t, grpcFlags{
		{GRPC: load.GRPCPickFirst, Rate: 50, URL: "10.96.0.10:9090"},
		{GRPC: load.GRPCRoundRobin, Rate: 20, URL: "dns:///app-headless.ns.svc:9090"},
	}, g)
	for _, bad := range []string{"pick_first:50", "pick_first:50:", "least_request:50:10.0.0.1:9090", "pick_first:0:10.0.0.1:9090", "pick_first:x:10.0.0.1:9090"} {
		assert.Error(t, g.Set(bad), bad)
	}
	assert.Len(t, g, 2, "a refused flag adds no client")
}

// The naive mode's gRPC server (the negative control) stays SERVING and cuts the calls in flight at
// SIGTERM: UNAVAILABLE, no GOAWAY first.
func TestNaiveGRPCCutsCallsInFlight(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	env := map[string]string{"GO_SERVICE_GRPC_PORT": strconv.Itoa(port)}
	stop, err := startNaiveGRPC(slog.New(slog.DiscardHandler), func(k string) string { return env[k] }, "pod=naive")
	require.NoError(t, err)
	defer stop()
	cc, err := grpc.NewClient("127.0.0.1:"+strconv.Itoa(port), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer cc.Close()
	for _, service := range []string{"", grpcx.LivenessService} {
		resp, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{Service: service})
		require.NoError(t, err)
		assert.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.Status, "health %q", service)
	}
	res := make(chan error, 1)
	go func() {
		res <- cc.Invoke(context.Background(), load.WhoamiMethod, wrapperspb.String("sleep=5s"), new(wrapperspb.StringValue))
	}()
	time.Sleep(200 * time.Millisecond) // the call reaches the server (were it later, Stop would refuse it the same way)
	stop()
	select {
	case err := <-res:
		assert.Equal(t, load.KindUnavailable, load.ClassifyGRPC(err), "%v", err)
	case <-time.After(3 * time.Second):
		t.Fatal("the call in flight was not cut by Stop")
	}

	stop, err = startNaiveGRPC(nil, func(string) string { return "" }, "")
	require.NoError(t, err, "without GO_SERVICE_GRPC_PORT nothing is served")
	stop()
}
