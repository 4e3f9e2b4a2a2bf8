package main

import (
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
	h, track := newProxy(u, proxy.Config, 200*time.Millisecond, slog.New(slog.DiscardHandler))
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
