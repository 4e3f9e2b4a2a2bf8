// Command go-service is the reference Go service of the go-service chart: the shutdown contract done
// right (package graceful), and for the tests the usual ways of getting it wrong, a load generator and
// a one-shot HTTP client, all in one static binary.
//
//	go-service                 serve; GO_SERVICE_MODE picks how SIGTERM is handled:
//	                             graceful (default)  the graceful package's sequence, and with
//	                                                 GO_SERVICE_GRPC_PORT a gRPC server beside it
//	                                                 (package grpcx: health, /goservice.v1.Whoami/Get)
//	                             naive               the common pattern: http.Server.Shutdown at once on SIGTERM
//	                             no-signal           no handler: SIGTERM kills the process at once
//	                             ignore-sigterm      ignores SIGTERM (killed at the end of the grace period)
//	                             crash               exits 3 at once (a bad release)
//	                             plain               knows nothing of the chart: :8080, 200 on every path,
//	                                                 http.Server.Shutdown on SIGTERM (most Go services)
//	go-service load -url U -client GET:new-conn:200 -client POST:keep-alive:50 [-duration D] [-control ADDR] [-baseline URL]
//	                           open-loop load from several clients; prints the results as JSON
//	go-service get URL         one GET; exit 0 on HTTP 200 (the helm test hook's client)
//	go-service proxy [-listen :8081] [-upstream http://127.0.0.1:8080]
//	                           a reverse proxy in front of the app (the sidecar scenarios)
//	go-service check ...       the zero-downtime rules over manifests, a chart or a running release
//	                           (package check; not in the service image, built with -tags service_only)
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-service/go-service/graceful"
	"github.com/go-service/go-service/load"
)

func main() {
	args := os.Args[1:]
	if len(args) > 0 {
		switch args[0] {
		case "get":
			if len(args) != 2 {
				fmt.Fprintln(os.Stderr, "usage: go-service get URL")
				os.Exit(2)
			}
			os.Exit(get(args[1]))
		case "load":
			os.Exit(runLoad(args[1:]))
		case "check":
			os.Exit(runCheck(args[1:]))
		case "proxy":
			os.Exit(runProxy(args[1:]))
		case "serve":
		default:
			fmt.Fprintf(os.Stderr, "go-service: unknown command %q (serve, load, get, proxy, check)\n", args[0])
			os.Exit(2)
		}
	}
	os.Exit(serve())
}

func serve() int {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cfg, err := graceful.FromEnv(os.Getenv)
	if err != nil {
		log.Error("bad configuration", "err", err)
		return 2
	}
	host, _ := os.Hostname()
	version := os.Getenv("GO_SERVICE_VERSION")
	mode := os.Getenv("GO_SERVICE_MODE")
	// Every answer names the pod, the version and what the app does on SIGTERM (its mode), so a report can
	// say which pod answered and how the app that answered shuts down.
	modeName := mode
	if modeName == "" {
		modeName = "graceful"
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil && d > 0 && d <= time.Minute {
			time.Sleep(d)
		}
		// cpu=<duration> (at most 1s) keeps a core busy that long: load that raises the pods' CPU usage,
		// for an autoscaler to act on.
		if d, err := time.ParseDuration(r.URL.Query().Get("cpu")); err == nil && d > 0 && d <= time.Second {
			spin(d)
		}
		fmt.Fprintf(w, "pod=%s version=%s mode=%s\n", host, version, modeName)
	})
	answer := fmt.Sprintf("pod=%s version=%s mode=%s", host, version, modeName) // a gRPC call's answer
	log.Info("starting", "mode", mode, "pod", host, "version", version)
	switch mode {
	case "", "graceful":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		defer stop()
		if err := serveGraceful(ctx, log, os.Getenv, graceful.New(cfg, app, log), answer); err != nil {
			log.Error("shutdown", "err", err)
			return 1
		}
		log.Info("exiting 0")
		return 0
	case "naive":
		// What most services do: on SIGTERM, stop listening at once and wait for in-flight requests.
		srv := &http.Server{Addr: cfg.Addr, Handler: naiveMux(cfg, app)}
		stopGRPC, err := startNaiveGRPC(log, os.Getenv, answer)
		if err != nil {
			log.Error("grpc", "err", err)
			return 2
		}
		go func() {
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGTERM)
			<-sig
			log.Info("SIGTERM: Shutdown now")
			stopGRPC()
			ctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
			defer cancel()
			_ = srv.Shutdown(ctx)
		}()
		if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
			log.Error("serve", "err", err)
			return 1
		}
		return 0
	case "no-signal", "ignore-sigterm":
		if mode == "ignore-sigterm" {
			signal.Ignore(syscall.SIGTERM)
		}
		if err := http.ListenAndServe(cfg.Addr, naiveMux(cfg, app)); err != nil {
			log.Error("serve", "err", err)
			return 1
		}
		return 0
	case "plain":
		return plain(log, app)
	case "crash":
		log.Error("crash mode: exiting at once (a release that never becomes ready)")
		return 3
	default:
		log.Error("unknown GO_SERVICE_MODE", "mode", mode)
		return 2
	}
}

// plain is the Go service most teams have: a net/http server on :8080 that answers every path (the
// chart's probes included) and calls Shutdown on SIGTERM. It reads none of the GO_SERVICE_* contract.
func plain(log *slog.Logger, app http.Handler) int {
	srv := &http.Server{Addr: ":8080", Handler: app, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		log.Error("serve", "err", err)
		return 1
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

// naiveMux serves always-healthy probes: the naive modes never fail readiness.
func naiveMux(cfg graceful.Config, app http.Handler) http.Handler {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) }
	mux.HandleFunc(cfg.ReadinessPath, ok)
	mux.HandleFunc(cfg.LivenessPath, ok)
	mux.Handle("/", app)
	return mux
}

func get(url string) int {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	fmt.Printf("HTTP %d %s", resp.StatusCode, body)
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}

// runLoad runs one or more clients at once (-client METHOD:CONN:RATE, CONN new-conn, new-conn-close or
// keep-alive) and prints their results as a JSON array. With -control ADDR it also serves GET /stop
// there: the clients stop, the response carries the same JSON, and the command exits, so a caller can
// run the clients for exactly as long as a disruption lasts; GET /healthz answers once the clients are
// sending.
func runLoad(args []string) int {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	url := fs.String("url", "", "URL to request")
	var specs clientFlags
	fs.Var(&specs, "client", "a client, METHOD:CONN:RATE[:QUERY] (GET:new-conn:200, POST:keep-alive:50:sleep=100ms); CONN is new-conn (the client closes each connection after the answer), new-conn-close (it asks the server to, Connection: close) or keep-alive; repeat for several")
	var grpcSpecs grpcFlags
	fs.Var(&grpcSpecs, "grpc", "a gRPC client, POLICY:RATE:TARGET (pick_first:50:10.96.0.10:9090, round_robin:50:dns:///app-headless.ns.svc:9090); repeat for several")
	grpcRequest := fs.String("grpc-request", "", `the gRPC clients' request (e.g. "sleep=500ms")`)
	duration := fs.Duration("duration", 30*time.Second, "how long (0: until stopped)")
	timeout := fs.Duration("timeout", load.DefaultTimeout, "per-request timeout (a slower request has failed)")
	control := fs.String("control", "", "serve GET /stop on this address")
	baseline := fs.String("baseline", "", "also run a control client: GETs on new connections to this URL, a Service nothing disrupts")
	baselineRate := fs.Int("baseline-rate", 20, "the control client's rate")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *baseline != "" && *baselineRate <= 0 {
		fmt.Fprintf(os.Stderr, "go-service load: -baseline-rate %d is not a positive rate\n", *baselineRate)
		return 2
	}
	if len(specs) == 0 && len(grpcSpecs) == 0 {
		specs = clientFlags{{Config: load.Config{Method: http.MethodGet, Rate: 200}}}
	}
	if len(specs) > 0 && *url == "" {
		fmt.Fprintln(os.Stderr, "go-service load: -url is required for the HTTP clients (-client)")
		return 2
	}
	cfgs := make([]load.Config, len(specs))
	for i, s := range specs {
		cfgs[i] = s.Config
		cfgs[i].URL, cfgs[i].Duration, cfgs[i].Timeout = load.WithQuery(*url, s.query), *duration, *timeout
	}
	for _, g := range grpcSpecs {
		g.Duration, g.Timeout, g.GRPCRequest = *duration, *timeout, *grpcRequest
		cfgs = append(cfgs, g)
	}
	if *baseline != "" {
		cfgs = append(cfgs, load.Config{URL: *baseline, Method: http.MethodGet, Rate: *baselineRate, Duration: *duration, Timeout: *timeout, Control: true})
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan []byte, 1)
	if *control != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("sending\n")) })
		mux.HandleFunc("GET /stop", func(w http.ResponseWriter, r *http.Request) {
			cancel()
			select {
			case data := <-done:
				done <- data
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(data)
			case <-r.Context().Done():
			}
		})
		srv := &http.Server{Addr: *control, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.ListenAndServe() }()
		defer func() {
			sctx, c := context.WithTimeout(context.Background(), 30*time.Second)
			defer c()
			_ = srv.Shutdown(sctx) // waits for the /stop response to be written
		}()
	}
	res, err := load.RunAll(ctx, cfgs)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	data, err := json.Marshal(res)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	done <- data
	fmt.Printf("%s\n", data)
	return 0
}

// clientFlags parses repeated -client METHOD:CONN:RATE[:QUERY] flags.
type clientFlags []clientSpec

// clientSpec is one -client flag: the client, and the query string its URL gets once -url is known.
type clientSpec struct {
	load.Config
	query string
}

func (c *clientFlags) String() string { return fmt.Sprint(len(*c), " client(s)") }

func (c *clientFlags) Set(v string) error {
	parts := strings.Split(v, ":")
	if len(parts) != 3 && len(parts) != 4 {
		return fmt.Errorf("%q: want METHOD:CONN:RATE[:QUERY], e.g. POST:keep-alive:50 or POST:keep-alive:50:sleep=100ms", v)
	}
	rate, err := strconv.Atoi(parts[2])
	if err != nil || rate <= 0 {
		return fmt.Errorf("%q: rate %q is not a positive number", v, parts[2])
	}
	var keepAlive, askClose bool
	switch parts[1] {
	case "new-conn":
	case "new-conn-close":
		askClose = true
	case "keep-alive":
		keepAlive = true
	default:
		return fmt.Errorf("%q: connection %q: want new-conn, new-conn-close or keep-alive", v, parts[1])
	}
	spec := clientSpec{Config: load.Config{Method: strings.ToUpper(parts[0]), KeepAlive: keepAlive, AskClose: askClose, Rate: rate}}
	if len(parts) == 4 {
		spec.query = parts[3]
	}
	*c = append(*c, spec)
	return nil
}

// grpcFlags parses repeated -grpc POLICY:RATE:TARGET flags (the target last, as it has colons of its
// own).
type grpcFlags []load.Config

func (g *grpcFlags) String() string { return fmt.Sprint(len(*g), " gRPC client(s)") }

func (g *grpcFlags) Set(v string) error {
	parts := strings.SplitN(v, ":", 3)
	if len(parts) != 3 || parts[2] == "" {
		return fmt.Errorf("%q: want POLICY:RATE:TARGET, e.g. pick_first:50:10.96.0.10:9090", v)
	}
	if parts[0] != load.GRPCPickFirst && parts[0] != load.GRPCRoundRobin {
		return fmt.Errorf("%q: policy %q: want %s or %s", v, parts[0], load.GRPCPickFirst, load.GRPCRoundRobin)
	}
	rate, err := strconv.Atoi(parts[1])
	if err != nil || rate <= 0 {
		return fmt.Errorf("%q: rate %q is not a positive number", v, parts[1])
	}
	*g = append(*g, load.Config{GRPC: parts[0], Rate: rate, URL: parts[2]})
	return nil
}

// spin keeps the calling goroutine on a CPU for d.
func spin(d time.Duration) {
	var x uint64
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i := range uint64(1000) {
			x ^= i * 2654435761
		}
	}
	runtime.KeepAlive(x) // the work is not optimised away
}
