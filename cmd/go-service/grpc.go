package main

import (
	"context"
	"fmt"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/go-service/go-service/graceful"
	"github.com/go-service/go-service/graceful/grpcx"
)

// whoamiService is the reference service's one gRPC method, /goservice.v1.Whoami/Get: it answers with
// the same line as an HTTP request ("pod=… version=… mode=…"), so a gRPC client can tell which pod
// answered. It needs no generated code: the request and the answer are protobuf's well-known
// StringValue.
const whoamiService = "goservice.v1.Whoami"

func registerWhoami(s *grpc.Server, answer string) {
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: whoamiService,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Get", Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			if err := dec(new(wrapperspb.StringValue)); err != nil {
				return nil, err
			}
			return wrapperspb.String(answer), nil
		}}},
	}, struct{}{})
}

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
	registerWhoami(g.GRPC(), answer)
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
