// Package grpcx is the go-service chart's shutdown contract for a gRPC server, the counterpart of
// graceful's HTTP server.
//
// gRPC multiplexes every call on long-lived HTTP/2 connections, and kube-proxy balances connections, not
// calls: a client stays on one pod until that connection ends. So on SIGTERM (the Serve context is
// cancelled) the server, in order:
//  1. turns its health service (grpc.health.v1, what the kubelet's native gRPC probe asks) NOT_SERVING
//     for the server as a whole ("") and every registered service, and keeps LivenessService SERVING
//     until the process exits, so that a liveness probe does not restart a pod that drains;
//  2. keeps serving for ShutdownDelay (GO_SERVICE_SHUTDOWN_DELAY: the endpoint-propagation delay when no
//     preStop hook covers it), so that calls on connections kube-proxy still sends here succeed;
//  3. calls GracefulStop: every connection gets a GOAWAY (its client opens a new connection, through the
//     Service, to a pod that is not leaving), the listener closes, and the calls in flight finish;
//  4. if they have not finished within DrainTimeout (GO_SERVICE_DRAIN_TIMEOUT: a stream that never ends
//     would block GracefulStop forever), calls Stop, which cancels them, and returns a *DrainError.
//
// ServerOptions bound every connection's age (MaxConnectionAge, with DrainTimeout as the grace for its
// calls in flight), so that long-lived connections spread onto the new pods after a rollout instead of
// staying on the few pods that were up first. Follow ties the server to graceful's HTTP server in the same
// process: when that one starts draining (its preStop endpoint, in the chart's preStop mode httpGet),
// the health service turns NOT_SERVING too.
package grpcx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/go-service/go-service/graceful"
)

// Config is the gRPC side of the shutdown budget.
type Config struct {
	Addr          string        // listen address, ":" + GO_SERVICE_GRPC_PORT
	ShutdownDelay time.Duration // GO_SERVICE_SHUTDOWN_DELAY
	DrainTimeout  time.Duration // GO_SERVICE_DRAIN_TIMEOUT
	// MaxConnectionAge ends every connection (GOAWAY) once it is this old, give or take grpc-go's 10%
	// jitter, so clients rebalance (GO_SERVICE_GRPC_MAX_CONNECTION_AGE; default 1m; 0 never ends them).
	MaxConnectionAge time.Duration
}

// Defaults match the chart's defaults.
var Defaults = Config{Addr: ":9090", ShutdownDelay: graceful.Defaults.ShutdownDelay, DrainTimeout: graceful.Defaults.DrainTimeout, MaxConnectionAge: time.Minute}

// FromEnv reads the GO_SERVICE_* variables over Defaults: the shutdown budget as graceful reads it,
// GO_SERVICE_GRPC_PORT and GO_SERVICE_GRPC_MAX_CONNECTION_AGE. An invalid value is an error naming the
// variable.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Defaults
	h, err := graceful.FromEnv(getenv)
	if err != nil {
		return c, err
	}
	c.ShutdownDelay, c.DrainTimeout = h.ShutdownDelay, h.DrainTimeout
	if v := getenv("GO_SERVICE_GRPC_PORT"); v != "" {
		port, err := strconv.Atoi(v)
		if err != nil || port < 1 || port > 65535 {
			return c, fmt.Errorf("GO_SERVICE_GRPC_PORT=%q: want a port number", v)
		}
		c.Addr = ":" + v
	}
	if v := getenv("GO_SERVICE_GRPC_MAX_CONNECTION_AGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return c, fmt.Errorf("GO_SERVICE_GRPC_MAX_CONNECTION_AGE=%q: want a non-negative duration such as 1m (0: connections never end)", v)
		}
		c.MaxConnectionAge = d
	}
	return c, nil
}

// ServerOptions are the options a server needs for the contract: connections end at MaxConnectionAge,
// and their calls in flight then have DrainTimeout to finish.
func ServerOptions(c Config) []grpc.ServerOption {
	if c.MaxConnectionAge <= 0 {
		return nil
	}
	return []grpc.ServerOption{grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionAge: c.MaxConnectionAge, MaxConnectionAgeGrace: c.DrainTimeout})}
}

// DrainError is a drain that did not finish within DrainTimeout: the calls still in flight were
// cancelled.
type DrainError struct{ Timeout time.Duration }

func (e *DrainError) Error() string {
	return fmt.Sprintf("grpcx: calls still in flight after the drain timeout (%s) were cancelled", e.Timeout)
}

// Server is a gRPC server with the health service and the shutdown sequence.
type Server struct {
	cfg    Config
	grpc   *grpc.Server
	health *health.Server
	log    *slog.Logger
	// mu orders StartDraining and Serve's turn to SERVING, so a drain that starts while Serve starts is
	// never undone; draining is closed when draining starts (under mu).
	mu       sync.Mutex
	draining chan struct{}
}

// New returns a server whose *grpc.Server (GRPC) has ServerOptions(cfg) and opts, and the health service
// registered and SERVING. Register the application's services on GRPC before Serve. A nil logger
// discards logs.
func New(cfg Config, logger *slog.Logger, opts ...grpc.ServerOption) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, grpc: grpc.NewServer(append(ServerOptions(cfg), opts...)...), health: health.NewServer(), log: logger, draining: make(chan struct{})}
	healthpb.RegisterHealthServer(s.grpc, s.health)
	s.health.SetServingStatus(LivenessService, healthpb.HealthCheckResponse_SERVING)
	return s
}

// GRPC is the server to register services on.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// LivenessService is the health service name that stays SERVING while the server drains: what a liveness
// (or startup) probe asks for. The server as a whole ("", what a readiness probe asks for) and every
// registered service turn NOT_SERVING when draining starts. It is the chart's default grpcService for
// those probes.
const LivenessService = "liveness"

// StartDraining turns the health of the server ("") and of every registered service NOT_SERVING, and
// leaves LivenessService SERVING. It is idempotent.
func (s *Server) StartDraining(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.draining:
		return
	default:
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	for name := range s.grpc.GetServiceInfo() {
		if name != healthpb.Health_ServiceDesc.ServiceName {
			s.health.SetServingStatus(name, healthpb.HealthCheckResponse_NOT_SERVING)
		}
	}
	close(s.draining)
	s.log.Info("draining: gRPC health NOT_SERVING", "reason", reason)
}

// Follow starts draining when h does (its preStop endpoint, or its own SIGTERM), until ctx ends.
func (s *Server) Follow(ctx context.Context, h *graceful.Server) {
	go func() {
		select {
		case <-h.DrainStarted():
			s.StartDraining("the HTTP server started draining")
		case <-ctx.Done():
		}
	}()
}

// ListenAndServe listens on cfg.Addr and calls Serve.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is cancelled (SIGTERM), then runs the shutdown sequence. It returns nil
// after a clean drain, a *DrainError when calls had to be cancelled.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	select {
	case <-s.draining: // Follow saw the HTTP server drain first: stay NOT_SERVING
	default:
		for name := range s.grpc.GetServiceInfo() {
			s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
		}
	}
	s.mu.Unlock()
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(ln) }()
	s.log.Info("serving gRPC", "addr", ln.Addr().String(), "shutdownDelay", s.cfg.ShutdownDelay, "drainTimeout", s.cfg.DrainTimeout, "maxConnectionAge", s.cfg.MaxConnectionAge)
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	start := time.Now()
	s.StartDraining("SIGTERM")
	if s.cfg.ShutdownDelay > 0 {
		s.log.Info("still serving while endpoint removal propagates", "for", s.cfg.ShutdownDelay)
		time.Sleep(s.cfg.ShutdownDelay)
	}
	s.log.Info("GOAWAY to every connection, draining the calls in flight", "timeout", s.cfg.DrainTimeout)
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(s.cfg.DrainTimeout):
		s.grpc.Stop()
		<-stopped
		return &DrainError{Timeout: s.cfg.DrainTimeout}
	}
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	s.log.Info("drained cleanly", "after", time.Since(start).Round(time.Millisecond))
	return nil
}
