package load

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// whoamiServer serves WhoamiMethod on a loopback port until the test ends.
func whoamiServer(t *testing.T, answer string, opts ...grpc.ServerOption) (*grpc.Server, *countingListener) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cl := &countingListener{Listener: l}
	s := grpc.NewServer(opts...)
	RegisterWhoami(s, answer)
	go func() { _ = s.Serve(cl) }()
	t.Cleanup(s.Stop)
	return s, cl
}

func TestGRPCCallsShareOneConnection(t *testing.T) {
	t.Parallel()
	_, l := whoamiServer(t, "pod=a version=1 mode=graceful")
	res, err := Run(context.Background(), Config{URL: l.Addr().String(), GRPC: GRPCPickFirst, Rate: 100, Duration: time.Second})
	require.NoError(t, err)
	assert.InDelta(t, 100, res.Sent, 10, "open loop at the rate")
	assert.Zero(t, res.Failed, res.Samples)
	assert.Equal(t, res.OK, res.Backends["pod=a version=1 mode=graceful"], "the backend is the answer's line")
	assert.Len(t, res.Requests, res.Sent, "every call is recorded")
	assert.EqualValues(t, 1, l.n.Load(), "every call multiplexed on one connection")
	assert.Equal(t, "gRPC pick_first", res.Mode())
}

// A server that ends its connections with a GOAWAY (MaxConnectionAge) moves the client to new
// connections without failing a call: what graceful/grpcx does when a pod drains.
func TestGRPCClientFollowsGOAWAY(t *testing.T) {
	t.Parallel()
	_, l := whoamiServer(t, "pod=a", grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionAge: 200 * time.Millisecond, MaxConnectionAgeGrace: time.Second}))
	res, err := Run(context.Background(), Config{URL: l.Addr().String(), GRPC: GRPCPickFirst, Rate: 100, Duration: 1500 * time.Millisecond})
	require.NoError(t, err)
	assert.Zero(t, res.Failed, res.Samples)
	assert.GreaterOrEqual(t, l.n.Load(), int64(3), "the client reconnected after each GOAWAY")
}

// A server that stops without a GOAWAY (grpc.Server.Stop) fails the calls after it: UNAVAILABLE.
func TestGRPCStopFailsAsUnavailable(t *testing.T) {
	t.Parallel()
	var served atomic.Int64
	s, l := whoamiServer(t, "pod=a", grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		served.Add(1)
		return h(ctx, req)
	}))
	ctx, cancel := context.WithCancel(context.Background())
	var res *Result
	done := make(chan error, 1)
	go func() {
		var err error
		res, err = Run(ctx, Config{URL: l.Addr().String(), GRPC: GRPCPickFirst, Rate: 100})
		done <- err
	}()
	require.Eventually(t, func() bool { return served.Load() >= 10 }, 5*time.Second, 10*time.Millisecond, "the server answered calls")
	s.Stop()
	time.Sleep(500 * time.Millisecond) // calls sent while nothing listens, the measurement itself
	cancel()
	require.NoError(t, <-done)
	require.Positive(t, res.OK, "calls before the stop succeeded")
	assert.Positive(t, res.ByKind[KindUnavailable], res.Samples)
	assert.Equal(t, res.Failed, res.ByKind[KindUnavailable], "every failure is UNAVAILABLE: %v", res.ByKind)
}

func TestGRPCConfigIsChecked(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown policy", Config{GRPC: "least_request"}, `GRPC "least_request": want pick_first or round_robin`},
		{"a method", Config{GRPC: GRPCPickFirst, Method: "POST"}, "takes no Method, KeepAlive nor AskClose"},
		{"keep-alive", Config{GRPC: GRPCRoundRobin, KeepAlive: true}, "takes no Method, KeepAlive nor AskClose"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.URL, tc.cfg.Rate = "127.0.0.1:1", 10
			_, err := Run(context.Background(), tc.cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestClassifyGRPC(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want string
	}{
		{status.Error(codes.Unavailable, "connection refused"), KindUnavailable},
		{status.Error(codes.DeadlineExceeded, "context deadline exceeded"), KindTimeout},
		{context.DeadlineExceeded, KindTimeout},
		{status.Error(codes.Internal, "stream terminated by RST_STREAM"), KindOther},
		{errors.New("anything else"), KindOther},
	} {
		assert.Equal(t, tc.want, ClassifyGRPC(tc.err), "%v", tc.err)
	}
}

// GRPCRequest reaches the server: the reference service's sleep keeps every call in flight that long.
func TestGRPCRequestIsSent(t *testing.T) {
	t.Parallel()
	_, l := whoamiServer(t, "pod=a")
	res, err := Run(context.Background(), Config{URL: l.Addr().String(), GRPC: GRPCPickFirst, GRPCRequest: "sleep=300ms", Rate: 20, Duration: 500 * time.Millisecond})
	require.NoError(t, err)
	require.NotEmpty(t, res.Requests)
	assert.Zero(t, res.Failed, res.Samples)
	for _, q := range res.Requests {
		assert.GreaterOrEqual(t, q.Latency(), 300*time.Millisecond)
	}
}
