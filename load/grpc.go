package load

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The reference service's gRPC method (cmd/go-service): /goservice.v1.Whoami/Get takes and returns
// protobuf's well-known StringValue, and answers with the line an HTTP request gets ("pod=… version=…
// mode=…"), so a gRPC call names its backend the way an HTTP request does.
const (
	WhoamiService = "goservice.v1.Whoami"
	WhoamiMethod  = "/" + WhoamiService + "/Get"
)

// RegisterWhoami serves WhoamiMethod on s, answering every call with answer. It needs no generated
// code: the request and the answer are protobuf's well-known StringValue. A request of "sleep=<duration>"
// (at most a minute, as the HTTP app's query) answers after that long, so calls are in flight when a pod
// goes.
func RegisterWhoami(s *grpc.Server, answer string) {
	get := func(ctx context.Context, in any) (any, error) {
		if q, err := url.ParseQuery(in.(*wrapperspb.StringValue).GetValue()); err == nil {
			if d, err := time.ParseDuration(q.Get("sleep")); err == nil && d > 0 && d <= time.Minute {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return nil, status.FromContextError(ctx.Err()).Err()
				}
			}
		}
		return wrapperspb.String(answer), nil
	}
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: WhoamiService,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Get", Handler: func(_ any, ctx context.Context, dec func(any) error, intercept grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			if intercept == nil {
				return get(ctx, in)
			}
			// As generated code does: the server's interceptors (logging, metrics, tracing) see the call.
			return intercept(ctx, in, &grpc.UnaryServerInfo{Server: s, FullMethod: WhoamiMethod}, get)
		}}},
	}, struct{}{})
}

// The gRPC clients' balancing policies (Config.GRPC).
const (
	// GRPCPickFirst keeps one HTTP/2 connection to the target (a Service's cluster IP: kube-proxy picks
	// the pod when the connection opens) and multiplexes every call on it, as a plain grpc-go client
	// does; it moves to another pod only when the server ends the connection (GOAWAY) or it breaks.
	GRPCPickFirst = "pick_first"
	// GRPCRoundRobin resolves the target (dns:///<headless Service>:<port>) to the pods' addresses, keeps
	// a connection to each and spreads the calls over them; it resolves again when a connection ends.
	GRPCRoundRobin = "round_robin"
)

// KindUnavailable is a gRPC call that failed with UNAVAILABLE: no connection could take it, or the
// connection it was on went away under it.
const KindUnavailable = "unavailable"

// newGRPCConn is the client's one grpc.ClientConn to cfg.URL (a gRPC target), with the balancing
// policy cfg.GRPC.
func newGRPCConn(cfg Config) (*grpc.ClientConn, error) {
	switch cfg.GRPC {
	case GRPCPickFirst, GRPCRoundRobin:
	default:
		return nil, fmt.Errorf("load: GRPC %q: want %s or %s", cfg.GRPC, GRPCPickFirst, GRPCRoundRobin)
	}
	// No retry policy: a call that fails is the failure it is. (grpc-go still replays, transparently, a
	// call that never left the client, which is what any gRPC client does.)
	sc := fmt.Sprintf(`{"loadBalancingConfig":[{%q:{}}]}`, cfg.GRPC)
	return grpc.NewClient(cfg.URL, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultServiceConfig(sc))
}

// doGRPC makes one call and classifies the outcome.
func doGRPC(conn *grpc.ClientConn, cfg Config) outcome {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	out := new(wrapperspb.StringValue)
	if err := conn.Invoke(ctx, WhoamiMethod, wrapperspb.String(cfg.GRPCRequest), out); err != nil {
		return outcome{kind: ClassifyGRPC(err), msg: err.Error()}
	}
	return outcome{backend: strings.SplitN(out.GetValue(), "\n", 2)[0]}
}

// ClassifyGRPC names the kind of a failed gRPC call: UNAVAILABLE is KindUnavailable, DEADLINE_EXCEEDED
// KindTimeout, and every other status KindOther.
func ClassifyGRPC(err error) string {
	switch status.Code(err) {
	case codes.Unavailable:
		return KindUnavailable
	case codes.DeadlineExceeded:
		return KindTimeout
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return KindTimeout
	}
	return KindOther
}
