// Command hello is a small Go service deployed with the go-service chart: its HTTP server is the
// graceful package's, so SIGTERM fails readiness, keeps serving while the endpoint's removal reaches every
// node, drains in-flight requests and exits 0.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-service/go-service/graceful"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cfg, err := graceful.FromEnv(os.Getenv) // GO_SERVICE_* variables, set by the chart
	if err != nil {
		log.Error("bad configuration", "err", err)
		os.Exit(2)
	}
	pod, _ := os.Hostname()
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The first line names the pod: the disruption kit's reality check reads it to see old and new
		// pods answer during a rollout.
		fmt.Fprintf(w, "pod=%s\nhello, %s\n", pod, r.URL.Query().Get("name"))
	})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := graceful.New(cfg, app, log).ListenAndServe(ctx); err != nil {
		log.Error("shutdown", "err", err)
		os.Exit(1)
	}
}
