package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-service/go-service/graceful"
)

// runProxy is a small reverse proxy for the sidecar scenarios: a container in the request path, in
// front of the app (what a service mesh or an auth proxy is). It forwards every request to -upstream and
// follows the app's drain: the app's "Connection: close" (a hop-by-hop header a proxy would drop) is
// passed on, so a client's pooled connection leaves the pod with its next response, and once no client
// connection has been used for -quiet the idle ones are closed, as the graceful package does (an idle
// connection kept open would carry a later request to an app that has gone). It also polls the app's
// readiness path (-ready-path), so that it learns the app drains even when no request passes through.
// -quiet defaults to half
// the app's own quiet period (graceful.Defaults.KeepAliveQuiet): both timers restart on the same requests (the proxy forwards each one), so with equal periods the app
// could close its listener at the moment the proxy still accepts a request on an idle client connection
// and answers it 502; with half, the proxy's idle client connections are gone before the app closes. On SIGTERM it calls
// http.Server.Shutdown: it stops listening at once and finishes the requests in flight. As a native
// sidecar it gets SIGTERM only after the app has exited; as a regular container it gets it as soon as the
// pod starts terminating, while the endpoint is still in use.
func runProxy(args []string) int {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	listen := fs.String("listen", ":8081", "listen address")
	upstream := fs.String("upstream", "http://127.0.0.1:8080", "the app's URL")
	drain := fs.Duration("drain-timeout", 15*time.Second, "how long requests in flight may take after SIGTERM")
	quiet := fs.Duration("quiet", defaultProxyQuiet, "once the app drains, close idle client connections after this long without a request; keep it below the app's own quiet period")
	readyPath := fs.String("ready-path", graceful.Defaults.ReadinessPath, "the app's readiness path, polled to learn that it drains even when no request passes (empty: learn it from responses only)")
	poll := fs.Duration("poll", 100*time.Millisecond, "how often the app's readiness path is polled")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	u, err := url.Parse(*upstream)
	if err != nil || u.Scheme == "" || u.Host == "" {
		fmt.Fprintf(os.Stderr, "go-service proxy: -upstream %q is not an absolute URL\n", *upstream)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("proxy", *listen)
	srv := &http.Server{Addr: *listen, ReadHeaderTimeout: 10 * time.Second}
	var appDrains func(why string)
	srv.Handler, srv.ConnState, appDrains = newProxy(u, srv, *quiet, log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if *readyPath != "" {
		go watchReadiness(ctx, u.ResolveReference(&url.URL{Path: *readyPath}).String(), *poll, appDrains)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("proxying", "upstream", u.String())
	select {
	case err := <-errc:
		log.Error("serve", "err", err)
		return 1
	case <-ctx.Done():
	}
	log.Info("SIGTERM: closing the listener, finishing requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), *drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

// defaultProxyQuiet is half the app's own quiet period: the proxy closes its idle client connections
// before the app, seeing the same requests, can close its listener.
var defaultProxyQuiet = graceful.Defaults.KeepAliveQuiet / 2

// watchReadiness polls the app's readiness URL every poll and calls drain once it answers 503 (the app
// has started draining): a proxy that learned it only from a response would keep its idle client
// connections open through a drain no request passed, and the first request on one after the app
// closed its listener would get 502.
func watchReadiness(ctx context.Context, readyURL string, poll time.Duration, drain func(why string)) {
	client := &http.Client{Timeout: poll * 5, Transport: &http.Transport{DisableKeepAlives: true}}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, readyURL, nil)
		if err != nil {
			return
		}
		resp, err := client.Do(req)
		if err != nil {
			continue // not listening yet, or gone: nothing to learn
		}
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			drain("the app's readiness fails")
			return
		}
	}
}

// newProxy forwards to u. When the app closes a connection, or drain is called (the app's readiness
// fails: watchReadiness), the app is draining: client connections are closed after their response too,
// and the idle client connections of srv are closed once none has been used for quiet. It returns the
// handler, srv's ConnState hook and drain.
func newProxy(u *url.URL, srv *http.Server, quiet time.Duration, log *slog.Logger) (http.Handler, func(net.Conn, http.ConnState), func(why string)) {
	var (
		mu       sync.Mutex
		lastUsed time.Time
		draining atomic.Bool
	)
	track := func(_ net.Conn, st http.ConnState) {
		if st == http.StateActive || st == http.StateNew {
			mu.Lock()
			lastUsed = time.Now()
			mu.Unlock()
		}
	}
	closeIdleWhenQuiet := func() {
		// No bound: the app keeps serving for as long as its own delay says (the proxy cannot know it),
		// and closing an idle connection under traffic loses the request a client is sending on it.
		for {
			mu.Lock()
			idle := time.Since(lastUsed)
			mu.Unlock()
			if idle >= quiet {
				log.Info("the app drains and no client connection was used for the quiet period: closing the idle ones", "quiet", quiet)
				srv.SetKeepAlivesEnabled(false) // closes the idle connections; later responses close theirs
				return
			}
			time.Sleep(quiet - idle)
		}
	}
	drain := func(why string) {
		if !draining.Swap(true) {
			log.Info("the app is draining: responses close their connections", "learned", why)
			go closeIdleWhenQuiet()
		}
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Close || draining.Load() {
			resp.Header.Set("Connection", "close")
		}
		if resp.Close {
			drain("a response closed its connection")
		}
		return nil
	}
	rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, err error) {
		log.Warn("upstream", "err", err)
		http.Error(w, "upstream: "+err.Error(), http.StatusBadGateway)
	}
	return rp, track, drain
}
