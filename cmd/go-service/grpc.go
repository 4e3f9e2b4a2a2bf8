package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/go-service/go-service/graceful"
	"github.com/go-service/go-service/graceful/grpcx"
	"github.com/go-service/go-service/load"
)

// serveGraceful runs graceful's HTTP server and, when GO_SERVICE_GRPC_PORT is set (the chart's
// grpc.enabled), grpcx's gRPC server beside it: the gRPC health follows the HTTP server's drain, and both
// run their shutdown sequence on SIGTERM. It returns when both have.
func serveGraceful(ctx context.Context, log *slog.Logger, getenv func(string) string, h *graceful.Server, answer string) error {
	if getenv("GO_SERVICE_GRPC_PORT") == "" {
		return h.ListenAndServe(ctx)
	}
	cfg, err := grpcx.FromEnv(getenv)
	if err != nil {
		return err
	}
	g := grpcx.New(cfg, log)
	load.RegisterWhoami(g.GRPC(), answer)
	g.Follow(ctx, h)
	errc := make(chan error, 2)
	go func() { errc <- wrap("http", h.ListenAndServe(ctx)) }()
	go func() { errc <- wrap("grpc", g.ListenAndServe(ctx)) }()
	first := <-errc
	if first != nil {
		return first // the other server ends with the process
	}
	return <-errc
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// startNaiveGRPC is the naive mode's gRPC server, when GO_SERVICE_GRPC_PORT is set: Whoami, and a health
// service that answers SERVING for the server and for grpcx's liveness service until the end. The
// returned stop is what the naive mode calls at SIGTERM: grpc.Server.Stop, at once, with no NOT_SERVING
// first and no GOAWAY, cutting the calls in flight: the gRPC negative control.
func startNaiveGRPC(log *slog.Logger, getenv func(string) string, answer string) (stop func(), err error) {
	if getenv("GO_SERVICE_GRPC_PORT") == "" {
		return func() {}, nil
	}
	cfg, err := grpcx.FromEnv(getenv)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	s := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus(grpcx.LivenessService, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, hs)
	load.RegisterWhoami(s, answer)
	go func() {
		if err := s.Serve(ln); err != nil {
			log.Error("grpc serve", "err", err)
		}
	}()
	return s.Stop, nil
}
