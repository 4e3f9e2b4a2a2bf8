package grpcx

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/go-service/go-service/graceful"
)

// slowService has one unary method, /test.Slow/Call, that waits for the duration named in its request's
// service field (e.g. "300ms") and records the client's address: a call that is in flight for a while,
// without generated code.
type slowService struct {
	mu    sync.Mutex
	peers map[string]int
}

func (s *slowService) register(g *grpc.Server) {
	g.RegisterService(&grpc.ServiceDesc{
		ServiceName: "test.Slow",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Call", Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(healthpb.HealthCheckRequest)
			if err := dec(in); err != nil {
				return nil, err
			}
			if p, ok := peer.FromContext(ctx); ok {
				s.mu.Lock()
				s.peers[p.Addr.String()]++
				s.mu.Unlock()
			}
			d, _ := time.ParseDuration(in.Service)
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return nil, status.FromContextError(ctx.Err()).Err()
			}
			return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
		}}},
	}, s)
}

func (s *slowService) clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.peers)
}

func call(ctx context.Context, cc *grpc.ClientConn, d time.Duration) error {
	return cc.Invoke(ctx, "/test.Slow/Call", &healthpb.HealthCheckRequest{Service: d.String()}, new(healthpb.HealthCheckResponse))
}

// start serves s on loopback until the returned cancel (SIGTERM); done yields Serve's result.
func start(t *testing.T, s *Server) (addr string, cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, ln) }()
	return ln.Addr().String(), cancel, errc
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { cc.Close() })
	return cc
}

func healthOf(t *testing.T, cc *grpc.ClientConn) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	resp, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{Service: "test.Slow"})
	require.NoError(t, err)
	return resp.Status
}

// On SIGTERM: health NOT_SERVING at once, calls still served through the shutdown delay, then the call in
// flight finishes, Serve returns nil, and the listener is closed.
func TestDrainSequence(t *testing.T) {
	svc := &slowService{peers: map[string]int{}}
	s := New(Config{ShutdownDelay: 300 * time.Millisecond, DrainTimeout: 3 * time.Second}, nil)
	svc.register(s.GRPC())
	addr, sigterm, done := start(t, s)
	cc := dial(t, addr)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, healthOf(t, cc))

	inFlight := make(chan error, 1)
	go func() { inFlight <- call(context.Background(), cc, 800*time.Millisecond) }()
	time.Sleep(100 * time.Millisecond) // the call is on the server before SIGTERM
	began := time.Now()
	sigterm()
	require.Eventually(t, func() bool { return healthOf(t, cc) == healthpb.HealthCheckResponse_NOT_SERVING }, time.Second, 10*time.Millisecond)
	assert.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, healthStatus(t, cc, ""), "the server as a whole (readiness) is NOT_SERVING")
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, healthStatus(t, cc, LivenessService), "liveness stays SERVING while the server drains")
	assert.NoError(t, call(context.Background(), cc, 50*time.Millisecond), "a call during the shutdown delay is served")

	assert.NoError(t, <-inFlight, "the call in flight at SIGTERM finished")
	require.NoError(t, <-done, "a clean drain")
	assert.GreaterOrEqual(t, time.Since(began), 300*time.Millisecond, "it served through the delay")
	_, err := net.DialTimeout("tcp", addr, time.Second)
	assert.Error(t, err, "the listener is closed after the drain")
}

// The same check on a server that stops at SIGTERM (grpc's Stop, no drain) loses the call in flight:
// what TestDrainSequence asserts can fail.
func TestPlainStopLosesTheCallInFlight(t *testing.T) {
	svc := &slowService{peers: map[string]int{}}
	g := grpc.NewServer()
	svc.register(g)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = g.Serve(ln) }()
	cc := dial(t, ln.Addr().String())
	inFlight := make(chan error, 1)
	go func() { inFlight <- call(context.Background(), cc, 800*time.Millisecond) }()
	time.Sleep(100 * time.Millisecond)
	g.Stop()
	err = <-inFlight
	require.Error(t, err)
	assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
}

// A stream that never ends cannot hold the pod past its budget: at DrainTimeout the server cancels it
// and says so.
func TestStreamIsCutAtTheDrainTimeout(t *testing.T) {
	s := New(Config{DrainTimeout: 400 * time.Millisecond}, nil)
	addr, sigterm, done := start(t, s)
	cc := dial(t, addr)
	watch, err := healthpb.NewHealthClient(cc).Watch(context.Background(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	first, err := watch.Recv()
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, first.Status)
	began := time.Now()
	sigterm()
	var de *DrainError
	select {
	case err := <-done:
		require.True(t, errors.As(err, &de), "a *DrainError, got %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return: GracefulStop waited on the stream past the drain timeout")
	}
	assert.Equal(t, 400*time.Millisecond, de.Timeout)
	assert.Less(t, time.Since(began), 2*time.Second)
	for {
		if _, err := watch.Recv(); err != nil {
			assert.Equal(t, codes.Unavailable, status.Code(err), "the stream was cut: %v", err)
			break
		}
	}
}

// MaxConnectionAge ends a long-lived connection with a GOAWAY: the client moves to a new connection (a
// new client port) and no call fails on the way.
func TestConnectionsAgeOut(t *testing.T) {
	svc := &slowService{peers: map[string]int{}}
	s := New(Config{DrainTimeout: time.Second, MaxConnectionAge: 300 * time.Millisecond}, nil)
	svc.register(s.GRPC())
	addr, _, _ := start(t, s)
	cc := dial(t, addr)
	for i := 0; i < 40; i++ {
		require.NoError(t, call(context.Background(), cc, 20*time.Millisecond), "call %d", i)
		time.Sleep(30 * time.Millisecond)
	}
	assert.GreaterOrEqual(t, svc.clients(), 3, "the connection was replaced as it aged (2 s of calls, 300 ms connections)")

	never := &slowService{peers: map[string]int{}}
	s0 := New(Config{DrainTimeout: time.Second}, nil)
	never.register(s0.GRPC())
	addr0, _, _ := start(t, s0)
	cc0 := dial(t, addr0)
	for i := 0; i < 20; i++ {
		require.NoError(t, call(context.Background(), cc0, 20*time.Millisecond))
		time.Sleep(30 * time.Millisecond)
	}
	assert.Equal(t, 1, never.clients(), "without a maximum age the client keeps its connection")
}

// In one process beside graceful's HTTP server, the gRPC health follows the HTTP server's drain (its
// preStop endpoint).
func TestFollowsTheHTTPServer(t *testing.T) {
	h := graceful.New(graceful.Defaults, http.NotFoundHandler(), nil)
	s := New(Config{DrainTimeout: time.Second}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.Follow(ctx, h)
	addr, _, _ := start(t, s)
	cc := dial(t, addr)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, overall(t, cc))
	h.StartDraining("preStop hook")
	assert.Eventually(t, func() bool { return overall(t, cc) == healthpb.HealthCheckResponse_NOT_SERVING }, time.Second, 10*time.Millisecond)
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, healthStatus(t, cc, LivenessService))
}

// A drain that starts before Serve (the HTTP server's preStop endpoint was called first) is not undone
// when Serve marks the registered services SERVING.
func TestDrainBeforeServeStays(t *testing.T) {
	svc := &slowService{peers: map[string]int{}}
	s := New(Config{DrainTimeout: time.Second}, nil)
	svc.register(s.GRPC())
	s.StartDraining("preStop hook")
	addr, _, _ := start(t, s)
	cc := dial(t, addr)
	assert.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, healthStatus(t, cc, "test.Slow"))
	assert.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, healthStatus(t, cc, ""))
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, healthStatus(t, cc, LivenessService))
}

func overall(t *testing.T, cc *grpc.ClientConn) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	return healthStatus(t, cc, "")
}

// healthStatus is the health service's answer for one service name.
func healthStatus(t *testing.T, cc *grpc.ClientConn, service string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	resp, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{Service: service})
	require.NoError(t, err)
	return resp.Status
}

func TestFromEnv(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	c, err := FromEnv(env(map[string]string{"GO_SERVICE_SHUTDOWN_DELAY": "2s", "GO_SERVICE_DRAIN_TIMEOUT": "20s", "GO_SERVICE_GRPC_PORT": "50051", "GO_SERVICE_GRPC_MAX_CONNECTION_AGE": "30s"}))
	require.NoError(t, err)
	assert.Equal(t, Config{Addr: ":50051", ShutdownDelay: 2 * time.Second, DrainTimeout: 20 * time.Second, MaxConnectionAge: 30 * time.Second}, c)
	c, err = FromEnv(env(nil))
	require.NoError(t, err)
	assert.Equal(t, Defaults, c)
	for _, tc := range []struct{ name, value, want string }{
		{"GO_SERVICE_GRPC_PORT", "0", "GO_SERVICE_GRPC_PORT"},
		{"GO_SERVICE_GRPC_PORT", "grpc", "GO_SERVICE_GRPC_PORT"},
		{"GO_SERVICE_GRPC_MAX_CONNECTION_AGE", "-1s", "GO_SERVICE_GRPC_MAX_CONNECTION_AGE"},
		{"GO_SERVICE_GRPC_MAX_CONNECTION_AGE", "soon", "GO_SERVICE_GRPC_MAX_CONNECTION_AGE"},
		{"GO_SERVICE_DRAIN_TIMEOUT", "forever", "GO_SERVICE_DRAIN_TIMEOUT"},
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			_, err := FromEnv(env(map[string]string{tc.name: tc.value}))
			assert.ErrorContains(t, err, tc.want)
		})
	}
	assert.Nil(t, ServerOptions(Config{}), "no maximum age, no keepalive option")
	assert.Len(t, ServerOptions(Defaults), 1)
}
