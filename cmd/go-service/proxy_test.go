package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-service/go-service/graceful"
)

// The proxy passes the app's body, and follows the app's drain: the app's "Connection: close" (a
// hop-by-hop header a reverse proxy drops) closes the client's connection too, the idle client
// connections are closed once none has been used for the quiet period, and with the app gone it answers
// 502.
func TestProxyFollowsTheAppsDrain(t *testing.T) {
	t.Parallel()
	var draining atomic.Bool
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if draining.Load() {
			w.Header().Set("Connection", "close")
		}
		_, _ = io.WriteString(w, "pod=app\n")
	}))
	defer app.Close()
	u, err := url.Parse(app.URL)
	require.NoError(t, err)
	proxy := httptest.NewUnstartedServer(nil)
	h, track, _ := newProxy(u, proxy.Config, 200*time.Millisecond, slog.New(slog.DiscardHandler))
	var closed atomic.Int32
	proxy.Config.Handler = h
	proxy.Config.ConnState = func(c net.Conn, st http.ConnState) {
		track(c, st)
		if st == http.StateClosed {
			closed.Add(1)
		}
	}
	proxy.Start()
	defer proxy.Close()
	get := func(c *http.Client) *http.Response {
		t.Helper()
		resp, err := c.Get(proxy.URL)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, "pod=app\n", string(body))
		return resp
	}
	idle := &http.Client{Transport: &http.Transport{}}
	assert.False(t, get(idle).Close, "keep-alive while the app serves")

	draining.Store(true)
	assert.True(t, get(&http.Client{Transport: &http.Transport{}}).Close, "the app's Connection: close is passed on")
	require.Eventually(t, func() bool { return closed.Load() == 2 }, 5*time.Second, 10*time.Millisecond,
		"the idle connection is closed after the quiet period, without a request on it")

	app.Close()
	resp, err := idle.Get(proxy.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode, "the app gone: 502")
}

// closeRecorder is a listener that records when it was closed.
type closeRecorder struct {
	net.Listener
	at atomic.Int64
}

func (l *closeRecorder) Close() error {
	l.at.CompareAndSwap(0, time.Now().UnixNano())
	return l.Listener.Close()
}

// serveGracefulApp serves a graceful app (no shutdown delay, the given keep-alive quiet period) on a
// loopback listener that records when it is closed. sigterm starts the app's shutdown; served returns
// Serve's result. The app is stopped when the test ends.
func serveGracefulApp(t *testing.T, quiet time.Duration) (app *graceful.Server, ln *closeRecorder, u *url.URL, sigterm context.CancelFunc, served <-chan error) {
	t.Helper()
	cfg := graceful.Defaults
	cfg.Addr, cfg.ShutdownDelay, cfg.DrainTimeout, cfg.KeepAliveQuiet = "127.0.0.1:0", 0, 5*time.Second, quiet
	app = graceful.New(cfg, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "pod=app\n") }), nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln = &closeRecorder{Listener: l}
	ctx, sigterm := context.WithCancel(context.Background())
	t.Cleanup(sigterm)
	errc := make(chan error, 1)
	go func() { errc <- app.Serve(ctx, ln) }()
	u, err = url.Parse("http://" + l.Addr().String())
	require.NoError(t, err)
	return app, ln, u, sigterm, errc
}

// In front of a graceful app, the proxy closes its idle client connections well before the app, seeing
// the same requests, closes its listener: a client that reuses an idle pooled connection after the app
// is gone would otherwise get a 502 for a POST no one can retry (seen in CI: bursts of 502 on keep-alive
// POSTs from the moment an app started draining). With the proxy's quiet period equal to the app's, the
// two close within a few milliseconds of each other, and this test fails.
func TestProxyClosesIdleConnectionsBeforeTheApp(t *testing.T) {
	t.Parallel()
	app, appLn, u, sigterm, served := serveGracefulApp(t, graceful.Defaults.KeepAliveQuiet)
	proxy := httptest.NewUnstartedServer(nil)
	h, track, _ := newProxy(u, proxy.Config, defaultProxyQuiet, slog.New(slog.DiscardHandler))
	var idleClosedAt atomic.Int64
	var closes atomic.Int32
	proxy.Config.Handler = h
	proxy.Config.ConnState = func(c net.Conn, st http.ConnState) {
		track(c, st)
		if st == http.StateClosed && closes.Add(1) == 2 { // the first is the draining response's own
			idleClosedAt.Store(time.Now().UnixNano())
		}
	}
	proxy.Start()
	defer proxy.Close()
	get := func(c *http.Client) *http.Response {
		t.Helper()
		resp, err := c.Get(proxy.URL)
		require.NoError(t, err)
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp
	}
	pooled := &http.Client{Transport: &http.Transport{}}
	assert.False(t, get(pooled).Close, "a pooled connection, idle from now on")

	sigterm()
	require.Eventually(t, app.Draining, 2*time.Second, time.Millisecond)
	assert.True(t, get(&http.Client{Transport: &http.Transport{}}).Close, "the app drains: its Connection: close is passed on")
	require.NoError(t, <-served, "the app drained cleanly")
	require.NotZero(t, idleClosedAt.Load(), "the proxy closed the idle pooled connection")
	margin := time.Duration(appLn.at.Load() - idleClosedAt.Load())
	t.Logf("the proxy closed its idle client connection %s before the app closed its listener", margin)
	assert.Greater(t, margin, 100*time.Millisecond, "the proxy's idle client connections are gone well before the app stops listening")
}

// When the app drains while no request passes through the proxy, the proxy still learns it (the app's
// readiness turns 503) and closes its idle client connections before the app closes its listener. A
// proxy that learned it from responses only kept them open, and the first request on one after the app
// had gone got 502 (a live rollout on a saturated machine lost two keep-alive POSTs this way: their pod's
// app had drained with no request through its proxy for a second). Without watchReadiness this test
// fails: the idle connection is still open when the app has stopped listening.
func TestProxyLearnsTheDrainWithoutTraffic(t *testing.T) {
	t.Parallel()
	_, appLn, u, sigterm, served := serveGracefulApp(t, time.Second) // what the chart sets behind a proxy in the request path
	proxy := httptest.NewUnstartedServer(nil)
	h, track, drain := newProxy(u, proxy.Config, defaultProxyQuiet, slog.New(slog.DiscardHandler))
	var idleClosedAt atomic.Int64
	proxy.Config.Handler = h
	proxy.Config.ConnState = func(c net.Conn, st http.ConnState) {
		track(c, st)
		if st == http.StateClosed {
			idleClosedAt.CompareAndSwap(0, time.Now().UnixNano())
		}
	}
	proxy.Start()
	defer proxy.Close()
	watch, stopWatching := context.WithCancel(context.Background())
	defer stopWatching()
	go watchReadiness(watch, u.String()+graceful.Defaults.ReadinessPath, 50*time.Millisecond, drain)

	pooled := &http.Client{Transport: &http.Transport{}}
	resp, err := pooled.Get(proxy.URL)
	require.NoError(t, err)
	_, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.False(t, resp.Close, "a pooled connection, idle from now on")

	sigterm() // no request passes through the proxy from here on
	require.NoError(t, <-served, "the app drained cleanly")
	require.NotZero(t, idleClosedAt.Load(), "the proxy closed the idle pooled connection")
	margin := time.Duration(appLn.at.Load() - idleClosedAt.Load())
	t.Logf("the proxy closed its idle client connection %s before the app closed its listener", margin)
	assert.Greater(t, margin, 100*time.Millisecond, "closed well before the app stops listening")
}
