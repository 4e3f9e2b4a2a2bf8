// Command go-service is the reference Go service of the go-service chart: the shutdown contract done
// right (package graceful), and for the tests the usual ways of getting it wrong, a load generator and
// a one-shot HTTP client, all in one static binary.
//
//	go-service                 serve; GO_SERVICE_MODE picks how SIGTERM is handled:
//	                             graceful (default)  the graceful package's sequence
//	                             naive               the common pattern: http.Server.Shutdown at once on SIGTERM
//	                             no-signal           no handler: SIGTERM kills the process at once
//	                             ignore-sigterm      ignores SIGTERM (killed at the end of the grace period)
//	                             crash               exits 3 at once (a bad release)
//	go-service load -url U -rate R -duration D [-keepalive]   open-loop load; prints the result as JSON
//	go-service get URL         one GET; exit 0 on HTTP 200 (the helm test hook's client)
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
		case "serve":
		default:
			fmt.Fprintf(os.Stderr, "go-service: unknown command %q (serve, load, get)\n", args[0])
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
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil && d > 0 && d <= time.Minute {
			time.Sleep(d)
		}
		fmt.Fprintf(w, "pod=%s version=%s\n", host, version)
	})
	mode := os.Getenv("GO_SERVICE_MODE")
	log.Info("starting", "mode", mode, "pod", host, "version", version)
	switch mode {
	case "", "graceful":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		defer stop()
		if err := graceful.New(cfg, app, log).ListenAndServe(ctx); err != nil {
			log.Error("shutdown", "err", err)
			return 1
		}
		log.Info("exiting 0")
		return 0
	case "naive":
		// What most services do: on SIGTERM, stop listening at once and wait for in-flight requests.
		srv := &http.Server{Addr: cfg.Addr, Handler: naiveMux(cfg, app)}
		go func() {
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGTERM)
			<-sig
			log.Info("SIGTERM: Shutdown now")
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
	case "crash":
		log.Error("crash mode: exiting at once (a release that never becomes ready)")
		return 3
	default:
		log.Error("unknown GO_SERVICE_MODE", "mode", mode)
		return 2
	}
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

func runLoad(args []string) int {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	var cfg load.Config
	fs.StringVar(&cfg.URL, "url", "", "URL to request")
	fs.IntVar(&cfg.Rate, "rate", 200, "requests per second")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "how long")
	fs.BoolVar(&cfg.KeepAlive, "keepalive", false, "reuse connections")
	fs.DurationVar(&cfg.Timeout, "timeout", 5*time.Second, "per-request timeout")
	_ = fs.Parse(args)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	res, err := load.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
