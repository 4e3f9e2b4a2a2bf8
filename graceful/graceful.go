// Package graceful is the Go side of the go-service chart's shutdown contract: an HTTP server that leaves
// a Kubernetes Service without dropping a request.
//
// On SIGTERM (the Run context is cancelled) it, in order:
//  1. fails its readiness endpoint (503) at once and answers every request with "Connection: close",
//     so clients with connection pools leave the pod after their next response; idle keep-alive
//     connections are not closed yet (closing a connection a client is about to reuse loses the request
//     it sends on it, and a POST is never retried);
//  2. keeps serving in-flight and new requests for ShutdownDelay (GO_SERVICE_SHUTDOWN_DELAY: the
//     endpoint-propagation delay when no preStop hook covers it, 0 when one does);
//  3. waits until no connection is serving a request and none has been opened, used or closed for
//     KeepAliveQuiet (at most 4 x KeepAliveQuiet): a connection still in use is closed by its own next
//     response, a client whose connection was just closed that way reaches for another of its pool (an
//     idle one, which must still be open), and new connections still arriving mean some proxy has not
//     yet removed the endpoint;
//  4. closes its listener and the idle connections, and waits for in-flight requests with
//     http.Server.Shutdown, and for the long-lived streams registered with Stream (whose contexts
//     ended after step 2: see streams.go), at most DrainTimeout (GO_SERVICE_DRAIN_TIMEOUT);
//  5. returns nil after a clean drain (exit 0), a *DrainError if the drain timed out.
//
// The liveness endpoint stays healthy throughout, so a draining pod is never restarted. With the chart's
// preStop mode httpGet, the kubelet calls PreStopPath: the handler starts draining and answers after
// PreStopDelay.
package graceful

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Config is the shutdown budget and the endpoints, as the chart passes them.
type Config struct {
	Addr          string        // listen address, ":" + GO_SERVICE_HTTP_PORT
	ShutdownDelay time.Duration // GO_SERVICE_SHUTDOWN_DELAY
	PreStopDelay  time.Duration // GO_SERVICE_PRESTOP_DELAY
	DrainTimeout  time.Duration // GO_SERVICE_DRAIN_TIMEOUT
	ReadinessPath string        // GO_SERVICE_READINESS_PATH
	LivenessPath  string        // GO_SERVICE_LIVENESS_PATH
	PreStopPath   string        // GO_SERVICE_PRESTOP_PATH
	// KeepAliveQuiet is how long a connection must have been idle before the shutdown closes it
	// (GO_SERVICE_KEEPALIVE_QUIET, default 500ms; the wait is bounded by 4 x KeepAliveQuiet). Behind a
	// proxy sidecar the chart doubles it, so that the proxy, which closes its own idle client
	// connections after half the default, is done before the app stops listening.
	KeepAliveQuiet time.Duration
}

// Defaults match the chart's defaults.
var Defaults = Config{
	Addr: ":8080", ShutdownDelay: 0, PreStopDelay: 5 * time.Second, DrainTimeout: 15 * time.Second,
	ReadinessPath: "/healthz/ready", LivenessPath: "/healthz/live", PreStopPath: "/shutdown/prestop",
	KeepAliveQuiet: 500 * time.Millisecond,
}

// FromEnv reads the GO_SERVICE_* variables over Defaults. An invalid value is an error naming the
// variable.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Defaults
	durations := []struct {
		name string
		dst  *time.Duration
	}{
		{"GO_SERVICE_SHUTDOWN_DELAY", &c.ShutdownDelay},
		{"GO_SERVICE_PRESTOP_DELAY", &c.PreStopDelay},
		{"GO_SERVICE_DRAIN_TIMEOUT", &c.DrainTimeout},
		{"GO_SERVICE_KEEPALIVE_QUIET", &c.KeepAliveQuiet},
	}
	for _, d := range durations {
		if v := getenv(d.name); v != "" {
			parsed, err := time.ParseDuration(v)
			if err != nil || parsed < 0 {
				return c, fmt.Errorf("%s=%q: want a non-negative duration such as 5s", d.name, v)
			}
			*d.dst = parsed
		}
	}
	if v := getenv("GO_SERVICE_HTTP_PORT"); v != "" {
		port, err := strconv.Atoi(v)
		if err != nil || port < 1 || port > 65535 {
			return c, fmt.Errorf("GO_SERVICE_HTTP_PORT=%q: want a port number", v)
		}
		c.Addr = ":" + v
	}
	for name, dst := range map[string]*string{
		"GO_SERVICE_READINESS_PATH": &c.ReadinessPath, "GO_SERVICE_LIVENESS_PATH": &c.LivenessPath, "GO_SERVICE_PRESTOP_PATH": &c.PreStopPath,
	} {
		if v := getenv(name); v != "" {
			if v[0] != '/' {
				return c, fmt.Errorf("%s=%q: want a path starting with /", name, v)
			}
			*dst = v
		}
	}
	return c, c.Validate()
}

// ConfigError is a configuration the server cannot honour.
type ConfigError struct {
	Field  string // the Config field (and GO_SERVICE_* variable) at fault
	Reason string
}

func (e *ConfigError) Error() string { return "graceful: " + e.Field + ": " + e.Reason }

// Validate checks that the health and preStop endpoints are distinct paths of their own: readiness fails
// while the server drains and liveness must not, so one path cannot serve both; "/" is the app's.
func (c Config) Validate() error {
	seen := map[string]string{}
	for _, p := range []struct{ field, path string }{
		{"ReadinessPath (GO_SERVICE_READINESS_PATH)", c.ReadinessPath},
		{"LivenessPath (GO_SERVICE_LIVENESS_PATH)", c.LivenessPath},
		{"PreStopPath (GO_SERVICE_PRESTOP_PATH)", c.PreStopPath},
	} {
		switch {
		case p.path == "" || p.path[0] != '/':
			return &ConfigError{Field: p.field, Reason: fmt.Sprintf("%q: want a path starting with /", p.path)}
		case p.path == "/":
			return &ConfigError{Field: p.field, Reason: `"/" is the application's path; give the endpoint its own path`}
		case seen[p.path] != "":
			return &ConfigError{Field: p.field, Reason: fmt.Sprintf("%q is also %s: readiness fails while draining and liveness must not, so each endpoint needs its own path", p.path, seen[p.path])}
		}
		seen[p.path] = p.field
	}
	return nil
}

// Server serves an application handler plus the health and preStop endpoints.
type Server struct {
	cfg      Config
	srv      *http.Server
	log      *slog.Logger
	draining atomic.Bool
	// drainStarted is closed when draining starts (SIGTERM or the preStop call).
	drainStarted chan struct{}
	startOnce    atomic.Bool
	err          error // a configuration error, returned by Serve

	connsMu sync.Mutex
	conns   map[net.Conn]http.ConnState // open connections' states, from the server's ConnState hook
	lastUse time.Time                   // the last change of any connection's state, under connsMu

	// streamsEnd is closed when the shutdown delay is over; streams counts those registered with Stream
	// and not done (streamsCond signals a change).
	streamsEnd     chan struct{}
	endStreamsOnce sync.Once
	streamsMu      sync.Mutex
	streamsCond    *sync.Cond
	streams        int
}

// New returns a server for app. A nil logger discards logs. A Config that fails Validate makes Serve
// return its *ConfigError.
func New(cfg Config, app http.Handler, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: logger, drainStarted: make(chan struct{}), conns: map[net.Conn]http.ConnState{}, streamsEnd: make(chan struct{})}
	s.streamsCond = sync.NewCond(&s.streamsMu)
	if s.err = cfg.Validate(); s.err != nil {
		s.srv = &http.Server{Addr: cfg.Addr}
		return s
	}
	mux := http.NewServeMux()
	mux.HandleFunc(cfg.ReadinessPath, s.readiness)
	mux.HandleFunc(cfg.LivenessPath, func(w http.ResponseWriter, r *http.Request) { health(w, r, http.StatusOK, "ok\n") })
	mux.HandleFunc(cfg.PreStopPath, s.preStop)
	mux.Handle("/", app)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			w.Header().Set("Connection", "close") // the server closes the connection after this response
		}
		mux.ServeHTTP(w, r)
	})
	s.srv = &http.Server{Addr: cfg.Addr, Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second, ConnState: s.track}
	return s
}

func (s *Server) track(c net.Conn, st http.ConnState) {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	s.lastUse = time.Now()
	if st == http.StateClosed || st == http.StateHijacked {
		delete(s.conns, c)
		return
	}
	s.conns[c] = st
}

// quiet reports whether no connection is serving a request and none has been opened, used or closed for
// d: only then may Shutdown close the idle ones. While a connection serves, its client may be about to
// reuse another: a response taken before draining started may leave its connection open (and its
// ConnState hook can even run after the client has read it), and one taken since closes its connection,
// so that the client's next request goes out on another pooled connection, often one idle for long (a
// pool hands out its most recently used connection first). Closing that one at that moment loses the
// request sent on it (EOF), and a POST is never retried.
//
// A connection still counted idle whose next request has already arrived (unread bytes: its reading
// goroutine has not run yet) is not quiet either: closing it loses that request the same way.
func (s *Server) quiet(d time.Duration) bool {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	for _, st := range s.conns {
		if st == http.StateActive {
			return false
		}
	}
	return !s.pendingLocked() && time.Since(s.lastUse) >= d
}

// pending reports whether an idle connection holds a request its server has not read yet.
func (s *Server) pending() bool {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	return s.pendingLocked()
}

// pendingLocked is pending with connsMu held.
func (s *Server) pendingLocked() bool {
	for c, st := range s.conns {
		if st == http.StateIdle && pendingBytes(c) > 0 {
			return true
		}
	}
	return false
}

// active counts the connections serving a request.
func (s *Server) active() int {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	n := 0
	for _, st := range s.conns {
		if st == http.StateActive {
			n++
		}
	}
	return n
}

// waitQuiet waits until the idle connections have been idle for KeepAliveQuiet, at most four times
// that (then at most KeepAliveQuiet more while an idle connection holds an unread request), and never
// past ctx's deadline (the drain timeout).
func (s *Server) waitQuiet(ctx context.Context) {
	q := s.cfg.KeepAliveQuiet
	if q <= 0 {
		return
	}
	// until is d from now, or ctx's deadline if that comes first.
	until := func(d time.Duration) time.Time {
		at := time.Now().Add(d)
		if dl, ok := ctx.Deadline(); ok && dl.Before(at) {
			return dl
		}
		return at
	}
	for deadline := until(4 * q); !s.quiet(q) && time.Now().Before(deadline); {
		time.Sleep(q / 10)
	}
	// Past the bound, connections still in use are closed by Shutdown, but one whose request has
	// already arrived gets up to KeepAliveQuiet more to be read: closing it would lose that request.
	for deadline := until(q); s.pending() && time.Now().Before(deadline); {
		time.Sleep(q / 50)
	}
}

// DrainStarted is closed when the server starts draining (SIGTERM or its preStop endpoint).
func (s *Server) DrainStarted() <-chan struct{} { return s.drainStarted }

// Draining reports whether the server has started draining.
func (s *Server) Draining() bool { return s.draining.Load() }

// StartDraining fails readiness and makes every response close its connection. It is idempotent.
func (s *Server) StartDraining(reason string) {
	if s.startOnce.Swap(true) {
		return
	}
	s.draining.Store(true)
	close(s.drainStarted)
	s.log.Info("draining: readiness fails, responses close their connections", "reason", reason)
}

func (s *Server) readiness(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		health(w, r, http.StatusServiceUnavailable, "draining\n")
		return
	}
	health(w, r, http.StatusOK, "ok\n")
}

// preStop is called by the kubelet before SIGTERM in the chart's preStop mode httpGet.
func (s *Server) preStop(w http.ResponseWriter, r *http.Request) {
	s.StartDraining("preStop hook")
	select {
	case <-time.After(s.cfg.PreStopDelay):
	case <-r.Context().Done():
	}
	_, _ = w.Write([]byte("ok\n"))
}

// ListenAndServe listens on cfg.Addr and calls Serve.
func (s *Server) ListenAndServe(ctx context.Context) error {
	if s.err != nil {
		return s.err
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is cancelled (SIGTERM), then runs the shutdown sequence. It returns nil
// after a clean drain.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.err != nil {
		return s.err
	}
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(ln) }()
	s.log.Info("serving", "addr", ln.Addr().String(), "shutdownDelay", s.cfg.ShutdownDelay, "drainTimeout", s.cfg.DrainTimeout)
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
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	if n := s.OpenStreams(); n > 0 {
		s.log.Info("ending long-lived streams", "streams", n)
	}
	s.endStreams()
	s.waitQuiet(sctx)
	s.log.Info("closing the listener, draining in-flight requests", "timeout", s.cfg.DrainTimeout)
	if err := s.srv.Shutdown(sctx); err != nil {
		_ = s.srv.Close()
		return &DrainError{Timeout: s.cfg.DrainTimeout, OpenStreams: s.OpenStreams(), Err: err}
	}
	if open := s.waitStreams(sctx); open > 0 {
		return &DrainError{Timeout: s.cfg.DrainTimeout, OpenStreams: open}
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	s.log.Info("drained cleanly", "after", time.Since(start).Round(time.Millisecond))
	return nil
}
