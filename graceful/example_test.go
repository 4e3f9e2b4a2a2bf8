package graceful_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-service/go-service/graceful"
)

// A service that serves requests and a server-sent event stream, and leaves its pods without dropping
// either: the stream ends when the shutdown delay is over, with a hint that makes the client reconnect
// (to another pod) at once.
func Example() {
	cfg, err := graceful.FromEnv(os.Getenv) // the GO_SERVICE_* variables the chart sets
	if err != nil {
		log.Fatal(err) // names the variable at fault
	}
	ticks := make(chan int)
	mux := http.NewServeMux()
	var srv *graceful.Server
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		ctx, done := srv.Stream(r.Context())
		defer done()
		w.Header().Set("Content-Type", "text/event-stream")
		for {
			select {
			case <-ctx.Done():
				_ = graceful.EndEventStream(w, 0)
				return
			case n := <-ticks:
				fmt.Fprintf(w, "id: %d\ndata: tick\n\n", n)
				_ = http.NewResponseController(w).Flush()
			}
		}
	})
	srv = graceful.New(cfg, mux, slog.Default())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := srv.ListenAndServe(ctx); err != nil {
		log.Fatal(err) // a *graceful.DrainError: requests or streams outlasted GO_SERVICE_DRAIN_TIMEOUT
	}
}
