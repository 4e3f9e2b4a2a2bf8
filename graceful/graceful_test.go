package graceful

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// start serves a handler that sleeps for ?ms= milliseconds, on a loopback port.
func start(t *testing.T, cfg Config) (base string, cancel context.CancelFunc, done <-chan error, s *Server) {
	t.Helper()
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d, err := time.ParseDuration(r.URL.Query().Get("d")); err == nil {
			time.Sleep(d)
		}
		_, _ = w.Write([]byte("hello\n"))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s = New(cfg, app, nil)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, ln) }()
	t.Cleanup(cancel)
	return "http://" + ln.Addr().String(), cancel, errc, s
}

// loopbackPair is both ends of a TCP connection on loopback, closed when the test ends.
func loopbackPair(tb testing.TB) (client, server net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(tb, err)
	tb.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	require.NoError(tb, err)
	tb.Cleanup(func() { server.Close() })
	return client, server
}

// fresh is a client that opens a new connection per request.
var fresh = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func get(t *testing.T, url string) (int, http.Header, error) {
	t.Helper()
	resp, err := fresh.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header, nil
}

// The test budget is wide (seconds) where a step must happen inside it, so a loaded machine does not
// fail a check; the lower bounds ("not before the delay") are exact.
func testConfig() Config {
	c := Defaults
	c.ShutdownDelay = 2 * time.Second
	c.DrainTimeout = 3 * time.Second
	c.PreStopDelay = 300 * time.Millisecond
	return c
}

func TestShutdownSequence(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	base, cancel, done, s := start(t, cfg)
	code, _, err := get(t, base+"/healthz/ready")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	keepAlive := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	resp, err := keepAlive.Get(base + "/")
	require.NoError(t, err)
	resp.Body.Close()
	require.False(t, resp.Close, "keep-alive before draining")

	// A request in flight across the whole shutdown.
	var wg sync.WaitGroup
	wg.Add(1)
	var inflightCode int
	var inflightErr error
	go func() {
		defer wg.Done()
		resp, err := fresh.Get(base + "/?d=2500ms")
		if err != nil {
			inflightErr = err
			return
		}
		inflightCode = resp.StatusCode
		resp.Body.Close()
	}()
	require.Eventually(t, func() bool { return s.active() == 1 }, 2*time.Second, 5*time.Millisecond, "the request has arrived")

	sigterm := time.Now()
	cancel()
	require.Eventually(t, s.Draining, time.Second, 5*time.Millisecond)

	// 1. readiness fails at once; liveness stays healthy.
	code, _, err = get(t, base+"/healthz/ready")
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, code, "readiness fails as soon as draining starts")
	code, _, err = get(t, base+"/healthz/live")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code, "liveness stays healthy while draining")

	// 2. new requests are still served during the delay, without keep-alive.
	code, _, err = get(t, base+"/")
	require.NoError(t, err, "a new connection during the shutdown delay is served")
	assert.Equal(t, http.StatusOK, code)
	resp, err = keepAlive.Get(base + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.True(t, resp.Close, "keep-alives are off while draining: the server closes the connection")
	require.Less(t, time.Since(sigterm), cfg.ShutdownDelay, "checked within the delay")

	// 3. after the delay the listener closes: new connections are refused.
	require.Eventually(t, func() bool {
		_, _, err := get(t, base+"/")
		return errors.Is(err, syscall.ECONNREFUSED)
	}, 3*cfg.ShutdownDelay, 20*time.Millisecond, "the listener closes after the delay")
	assert.GreaterOrEqual(t, time.Since(sigterm), cfg.ShutdownDelay, "not before the delay")

	// 4. the request in flight completes, then Serve returns nil (exit 0).
	wg.Wait()
	require.NoError(t, inflightErr)
	assert.Equal(t, http.StatusOK, inflightCode, "the in-flight request completes during the drain")
	select {
	case err := <-done:
		assert.NoError(t, err, "a clean drain")
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not return after the drain")
	}
}

func TestDrainTimeout(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.ShutdownDelay = 0
	cfg.DrainTimeout = 150 * time.Millisecond
	base, cancel, done, s := start(t, cfg)
	go func() { _, _, _ = get(t, base+"/?d=10s") }()
	require.Eventually(t, func() bool { return s.active() == 1 }, 2*time.Second, 5*time.Millisecond, "the request has arrived")
	begin := time.Now()
	cancel()
	select {
	case err := <-done:
		require.Error(t, err)
		assert.Contains(t, err.Error(), "drain not finished within 150ms")
		assert.Less(t, time.Since(begin), 5*time.Second, "gives up at the drain timeout, not at the request's end")
	case <-time.After(8 * time.Second):
		t.Fatal("Serve did not give up at the drain timeout")
	}
}

func TestPreStopHandler(t *testing.T) {
	t.Parallel()
	base, _, _, s := start(t, testConfig())
	begin := time.Now()
	code, _, err := get(t, base+"/shutdown/prestop")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	assert.GreaterOrEqual(t, time.Since(begin), 300*time.Millisecond, "the hook answers after the preStop delay")
	assert.True(t, s.Draining())
	code, _, err = get(t, base+"/healthz/ready")
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	code, _, err = get(t, base+"/")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code, "still serving: SIGTERM has not come yet")
}

func TestFromEnv(t *testing.T) {
	t.Parallel()
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := FromEnv(env(map[string]string{
		"GO_SERVICE_SHUTDOWN_DELAY": "5s", "GO_SERVICE_DRAIN_TIMEOUT": "30s", "GO_SERVICE_PRESTOP_DELAY": "0s",
		"GO_SERVICE_HTTP_PORT": "9000", "GO_SERVICE_READINESS_PATH": "/ready", "GO_SERVICE_KEEPALIVE_QUIET": "1s",
	}))
	require.NoError(t, err)
	assert.Equal(t, time.Second, c.KeepAliveQuiet)
	assert.Equal(t, 5*time.Second, c.ShutdownDelay)
	assert.Equal(t, 30*time.Second, c.DrainTimeout)
	assert.Equal(t, time.Duration(0), c.PreStopDelay)
	assert.Equal(t, ":9000", c.Addr)
	assert.Equal(t, "/ready", c.ReadinessPath)
	assert.Equal(t, Defaults.LivenessPath, c.LivenessPath)

	d, err := FromEnv(env(nil))
	require.NoError(t, err)
	assert.Equal(t, Defaults, d)

	for name, val := range map[string]string{
		"GO_SERVICE_DRAIN_TIMEOUT": "15", "GO_SERVICE_SHUTDOWN_DELAY": "-1s", "GO_SERVICE_KEEPALIVE_QUIET": "soon", "GO_SERVICE_HTTP_PORT": "http", "GO_SERVICE_LIVENESS_PATH": "live",
	} {
		_, err := FromEnv(env(map[string]string{name: val}))
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), name+"=")
	}
}

// One path for liveness and readiness (or "/" for an endpoint) is refused with a *ConfigError, by
// FromEnv and by Serve, instead of the ServeMux's "pattern conflicts" panic.
func TestConflictingPathsAreRefused(t *testing.T) {
	t.Parallel()
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name  string
		vars  map[string]string
		field string
	}{
		{"liveness on the readiness path", map[string]string{"GO_SERVICE_LIVENESS_PATH": "/healthz/ready"}, "LivenessPath"},
		{"preStop on the liveness path", map[string]string{"GO_SERVICE_PRESTOP_PATH": "/healthz/live"}, "PreStopPath"},
		{"readiness on the app's root", map[string]string{"GO_SERVICE_READINESS_PATH": "/"}, "ReadinessPath"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := FromEnv(env(tt.vars))
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Contains(t, ce.Field, tt.field)
			var srv *Server
			require.NotPanics(t, func() { srv = New(cfg, http.NotFoundHandler(), nil) })
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			defer ln.Close()
			require.ErrorAs(t, srv.Serve(context.Background(), ln), &ce)
		})
	}
}

// A keep-alive connection idle when draining starts is not closed under the client: its next request
// (a POST, which no client retries) is served on the same connection, and that response closes it.
// Only connections idle for KeepAliveQuiet are closed by the shutdown. (KeepAliveQuiet is long here
// so a loaded machine cannot stretch the test's own steps past it; the test still ends at once, since
// the second response closes the only connection.)
func TestIdleKeepAliveIsClosedByItsNextResponse(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.ShutdownDelay = 0
	cfg.KeepAliveQuiet = 10 * time.Second
	base, cancel, done, s := start(t, cfg)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	post := func() (*http.Response, bool, error) {
		var reused bool
		req, err := http.NewRequest(http.MethodPost, base+"/", strings.NewReader("x"))
		require.NoError(t, err)
		req.GetBody = nil // never replayed
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}))
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, reused, err
	}
	resp, _, err := post()
	require.NoError(t, err)
	require.False(t, resp.Close, "keep-alive before draining")

	cancel()
	require.Eventually(t, s.Draining, time.Second, 5*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // the connection stays idle into the drain
	select {
	case <-done:
		t.Fatal("the server shut down while a keep-alive connection had been idle for less than KeepAliveQuiet")
	default:
	}
	resp, reused, err := post()
	require.NoError(t, err, "the POST on the idle connection is served")
	assert.True(t, reused, "on the connection that was idle when draining started")
	assert.True(t, resp.Close, "and its response closes it")
	select {
	case err := <-done:
		require.NoError(t, err, "then the drain completes")
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not return")
	}
}

// The drain's quiet check: not while any connection serves a request (taken before draining started,
// its response may keep its connection open; taken since, its response closes it and its client reaches
// for another pooled connection), nor until none has been opened, used or closed for the quiet time.
func TestQuietWaitsForEveryConnectionToSettle(t *testing.T) {
	s := New(testConfig(), http.NotFoundHandler(), nil)
	before, since, stale := &net.TCPConn{}, &net.TCPConn{}, &net.TCPConn{}
	s.track(stale, http.StateIdle)
	s.track(before, http.StateActive)
	time.Sleep(2 * time.Millisecond)
	s.StartDraining("test")
	assert.False(t, s.quiet(time.Millisecond), "a request taken before draining started is still being served")
	s.track(before, http.StateIdle)
	assert.False(t, s.quiet(time.Hour), "its connection just went idle")
	time.Sleep(2 * time.Millisecond)
	assert.True(t, s.quiet(time.Millisecond), "and has been idle long enough")
	s.track(since, http.StateActive)
	time.Sleep(2 * time.Millisecond)
	assert.False(t, s.quiet(time.Millisecond), "a request taken since draining started is being served")
	s.track(since, http.StateClosed)
	assert.False(t, s.quiet(time.Hour), "its connection just closed: its client is about to use another")
	time.Sleep(2 * time.Millisecond)
	assert.True(t, s.quiet(time.Millisecond), "and nothing has happened since")
}

// A client's stale pooled connection outlives the drain of its busy one: the client sends on a
// connection idle for longer than KeepAliveQuiet as soon as the response to a request taken after
// draining started has closed its other connection (what a pool does when its recent connection goes),
// and that request is served. A live rollout under CPU load lost exactly such a POST (EOF) while the
// quiet check ignored requests taken since draining started.
func TestStaleConnectionOutlivesTheLastResponse(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.ShutdownDelay = 300 * time.Millisecond
	cfg.KeepAliveQuiet = 500 * time.Millisecond
	base, cancel, done, s := start(t, cfg)
	addr := strings.TrimPrefix(base, "http://")
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}
	post := func(c net.Conn, r *bufio.Reader, query string) (*http.Response, error) {
		if _, err := io.WriteString(c, "POST /"+query+" HTTP/1.1\r\nHost: go-service\r\nContent-Length: 1\r\n\r\nx"); err != nil {
			return nil, err
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp, nil
	}
	stale, staleR := dial()
	busy, busyR := dial()
	resp, err := post(stale, staleR, "")
	require.NoError(t, err)
	require.False(t, resp.Close, "keep-alive before draining")
	time.Sleep(cfg.KeepAliveQuiet + 100*time.Millisecond) // the stale connection idles past the quiet time

	cancel()
	require.Eventually(t, s.Draining, time.Second, time.Millisecond)
	resp, err = post(busy, busyR, "?d=700ms") // taken in the shutdown delay, still served when it ends
	require.NoError(t, err)
	require.True(t, resp.Close, "the busy connection's response closes it")
	resp, err = post(stale, staleR, "")
	require.NoError(t, err, "the POST on the stale connection right after is served")
	assert.True(t, resp.Close, "and its response closes it")
	select {
	case err := <-done:
		require.NoError(t, err, "then the drain completes")
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}

// A connection the server still counts idle, but whose next request has already arrived (its reading
// goroutine has not run: on a busy machine, for hundreds of milliseconds), is not quiet: closing it
// would lose that request (a live rollout under CPU load lost a keep-alive POST this way, EOF).
func TestQuietWaitsForARequestNotYetRead(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("unread bytes are read with SIOCINQ, on Linux only")
	}
	client, server := loopbackPair(t)

	s := New(testConfig(), http.NotFoundHandler(), nil)
	s.track(server, http.StateIdle)
	time.Sleep(2 * time.Millisecond)
	require.True(t, s.quiet(time.Millisecond), "an idle connection with nothing to read is quiet")

	req := "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
	_, err := client.Write([]byte(req))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return pendingBytes(server) == len(req) }, 5*time.Second, time.Millisecond, "the request reached the server's socket")
	assert.False(t, s.quiet(time.Millisecond), "a request waits to be read on an idle connection")
	assert.True(t, s.pending())

	buf := make([]byte, len(req))
	_, err = io.ReadFull(server, buf)
	require.NoError(t, err)
	assert.False(t, s.pending(), "read: nothing waits")
	assert.True(t, s.quiet(time.Millisecond))
}
