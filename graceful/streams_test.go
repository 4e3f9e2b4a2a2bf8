package graceful

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serveWith serves app through a graceful Server built by New, on a loopback port.
func serveWith(t *testing.T, cfg Config, app func(s **Server) http.Handler) (addr string, cancel context.CancelFunc, done <-chan error, s *Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var srv *Server
	srv = New(cfg, app(&srv), nil)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, ln) }()
	t.Cleanup(cancel)
	return ln.Addr().String(), cancel, errc, srv
}

// A server-sent event stream keeps flowing through the shutdown delay (proxies may still send new
// clients here), ends right after it with a reconnect hint (retry: 0), and the server exits cleanly.
func TestEventStreamEndsAfterTheShutdownDelay(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.ShutdownDelay = 400 * time.Millisecond
	addr, cancel, done, _ := serveWith(t, cfg, func(s **Server) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, end := (*s).Stream(r.Context())
			defer end()
			w.Header().Set("Content-Type", "text/event-stream")
			for id := 1; ; id++ {
				select {
				case <-ctx.Done():
					_ = EndEventStream(w, 0)
					return
				case <-time.After(20 * time.Millisecond):
				}
				_, _ = fmt.Fprintf(w, "id: %d\ndata: tick\n\n", id)
				_ = http.NewResponseController(w).Flush()
			}
		})
	})
	resp, err := http.Get("http://" + addr + "/events")
	require.NoError(t, err)
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	require.True(t, lines.Scan(), "the stream starts")

	sigterm := time.Now()
	cancel()
	var lastEvent, retryAt time.Time
	for lines.Scan() {
		switch l := lines.Text(); {
		case strings.HasPrefix(l, "id: "):
			lastEvent = time.Now()
		case l == "retry: 0":
			retryAt = time.Now()
		}
	}
	require.False(t, retryAt.IsZero(), "the stream ended with a reconnect hint")
	assert.GreaterOrEqual(t, retryAt.Sub(sigterm), cfg.ShutdownDelay, "not before the shutdown delay is over")
	assert.GreaterOrEqual(t, lastEvent.Sub(sigterm), cfg.ShutdownDelay-100*time.Millisecond, "events kept flowing through the delay")
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}

// A hijacked connection (a WebSocket) is told the server is going away (close frame 1001) once the
// shutdown delay is over, and Serve waits for the handler to finish with it, which http.Server.Shutdown
// alone does not do.
func TestHijackedStreamIsWaitedFor(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.ShutdownDelay = 100 * time.Millisecond
	cfg.KeepAliveQuiet = 50 * time.Millisecond // the plain connections' part of the drain is quick
	var finished atomic.Int64                  // when the handler was done with the connection (UnixNano)
	addr, cancel, done, _ := serveWith(t, cfg, func(s **Server) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			ctx, end := (*s).Stream(context.Background())
			defer end()
			_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			_ = rw.Flush()
			<-ctx.Done()
			time.Sleep(300 * time.Millisecond) // the app's own goodbye takes a moment
			_ = CloseWebSocket(conn, "restart")
			_ = conn.Close()
			finished.Store(time.Now().UnixNano())
		})
	})
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"))
	require.NoError(t, err)
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	require.NoError(t, err)
	require.Contains(t, status, "101")
	for l, _ := br.ReadString('\n'); l != "\r\n" && l != ""; l, _ = br.ReadString('\n') {
	}

	cancel()
	served := make(chan time.Time, 1)
	go func() {
		err := <-done
		assert.NoError(t, err)
		served <- time.Now()
	}()
	rest, err := io.ReadAll(br)
	require.NoError(t, err)
	assert.Equal(t, append([]byte{0x88, 9, 0x03, 0xe9}, "restart"...), rest, "a close frame, code 1001, then the end")
	select {
	case at := <-served:
		require.NotZero(t, finished.Load(), "the handler was done before Serve returned")
		assert.False(t, at.Before(time.Unix(0, finished.Load())), "Serve returned after the handler was done with the connection")
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}

// A stream that never ends is cut at the drain timeout, and Serve says so with a *DrainError.
func TestOpenStreamFailsTheDrain(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.ShutdownDelay = 0
	cfg.DrainTimeout = 200 * time.Millisecond
	_, cancel, done, s := serveWith(t, cfg, func(s **Server) http.Handler { return http.NotFoundHandler() })
	_, end := s.Stream(context.Background()) // a stream its owner forgets to end
	defer end()
	begin := time.Now()
	cancel()
	select {
	case err := <-done:
		var de *DrainError
		require.True(t, errors.As(err, &de), "a *DrainError: %v", err)
		assert.Equal(t, 1, de.OpenStreams)
		assert.Contains(t, err.Error(), "drain not finished within 200ms: 1 stream(s) still open")
		assert.GreaterOrEqual(t, time.Since(begin), cfg.DrainTimeout)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not give up at the drain timeout")
	}
}

// A close reason longer than a control frame holds is refused.
func TestCloseWebSocketReason(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	require.NoError(t, CloseWebSocket(&b, ""))
	assert.Equal(t, "\x88\x02\x03\xe9", b.String())
	assert.Error(t, CloseWebSocket(io.Discard, strings.Repeat("x", 124)))
}
