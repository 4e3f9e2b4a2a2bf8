package load

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunCountsEveryRequest(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%10 == 0 {
			http.Error(w, "boom", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("pod=a\n"))
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Config{URL: srv.URL, Rate: 100, Duration: time.Second})
	require.NoError(t, err)
	assert.InDelta(t, 100, res.Sent, 10, "open loop at the rate")
	assert.Equal(t, res.Sent, res.OK+res.Failed)
	assert.Equal(t, res.Failed, res.ByKind[Kind5xx])
	assert.InDelta(t, res.Sent/10, res.Failed, 2)
	assert.Equal(t, res.OK, res.Backends["pod=a"])
	total := 0
	for _, s := range res.Seconds {
		total += s.OK
		for _, f := range s.Failed {
			total += f
		}
	}
	assert.Equal(t, res.Sent, total, "the per-second series accounts for every request")
	assert.Greater(t, res.Latency(res.Start, res.End, 0.99), time.Duration(0))
}

// A client given StartAt starts then: its Start is StartAt and no request is sent before it, so callers
// that start several clients together know how long each has been sending.
func TestStartAt(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("pod=a\n")) }))
	defer srv.Close()
	at := time.Now().Add(300 * time.Millisecond)
	ctx, cancel := context.WithDeadline(context.Background(), at.Add(500*time.Millisecond))
	defer cancel()
	res, err := Run(ctx, Config{URL: srv.URL, Rate: 50, StartAt: at})
	require.NoError(t, err)
	assert.True(t, res.Start.Equal(at), "Start %s is StartAt %s", res.Start, at)
	require.NotEmpty(t, res.Requests)
	for _, r := range res.Requests {
		assert.GreaterOrEqual(t, r.SentMicros, int64(0), "no request before StartAt")
	}
	assert.InDelta(t, 25, res.Sent, 3, "sent at the rate from StartAt, not from the call")
}

func TestRefusedIsClassified(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more
	res, err := Run(context.Background(), Config{URL: "http://" + addr + "/", Rate: 50, Duration: 300 * time.Millisecond})
	require.NoError(t, err)
	require.Positive(t, res.Sent)
	assert.Equal(t, res.Sent, res.ByKind[KindRefused])
	assert.NotEmpty(t, res.Samples)
}

// A proxy's 5xx keeps the first line of its body: what went wrong upstream.
func TestServerErrorKeepsItsReason(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream: read tcp 127.0.0.1:40000->127.0.0.1:8080: read: connection reset by peer\nmore", http.StatusBadGateway)
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Config{URL: srv.URL, Rate: 20, Duration: 200 * time.Millisecond})
	require.NoError(t, err)
	require.Positive(t, res.Sent)
	assert.Equal(t, res.Sent, res.ByKind[Kind5xx])
	require.NotEmpty(t, res.Samples)
	assert.Equal(t, "502 Bad Gateway: upstream: read tcp 127.0.0.1:40000->127.0.0.1:8080: read: connection reset by peer", res.Samples[0].Error)
}

func TestTimeoutIsClassified(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(500 * time.Millisecond) }))
	defer srv.Close()
	res, err := Run(context.Background(), Config{URL: srv.URL, Rate: 20, Duration: 200 * time.Millisecond, Timeout: 100 * time.Millisecond})
	require.NoError(t, err)
	require.Positive(t, res.Sent)
	assert.Equal(t, res.Sent, res.ByKind[KindTimeout])
}

// A server that drops every 5th request without an answer (closes the connection after reading it):
// Go's client silently retries the GETs on a reused connection, never the keep-alive POSTs.
func TestKeepAlivePostsAreNeverRetried(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%5 == 0 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		_, _ = w.Write([]byte("pod=a\n"))
	}))
	defer srv.Close()
	for _, tt := range []struct {
		method     string
		wantFailed bool
	}{{http.MethodGet, false}, {http.MethodPost, true}} {
		res, err := Run(context.Background(), Config{URL: srv.URL, Rate: 50, Duration: 500 * time.Millisecond, KeepAlive: true, Method: tt.method})
		require.NoError(t, err)
		require.Positive(t, res.Sent)
		if tt.wantFailed {
			assert.Positive(t, res.ByKind[KindEOF], "%s: the dropped requests surface: %v", tt.method, res.ByKind)
		} else {
			assert.Zero(t, res.Failed, "%s: retried by net/http: %v", tt.method, res.ByKind)
		}
	}
}

func TestResultRoundTripsThroughJSON(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("pod=a\n")) }))
	defer srv.Close()
	res, err := Run(context.Background(), Config{URL: srv.URL, Rate: 100, Duration: 300 * time.Millisecond})
	require.NoError(t, err)
	data, err := json.Marshal(res)
	require.NoError(t, err)
	var back Result
	require.NoError(t, json.Unmarshal(data, &back))
	assert.Equal(t, res.Requests, back.Requests)
	w := back.Window(back.Start, back.End)
	assert.Equal(t, res.Sent, w.Sent)
	assert.Equal(t, res.OK, w.Backends["pod=a"])
	assert.Equal(t, res.Latency(res.Start, res.End, 0.99), back.Latency(back.Start, back.End, 0.99))
	assert.Positive(t, w.Max)
	assert.Empty(t, back.Slower(time.Second))
}

func TestBadMethodIsRefused(t *testing.T) {
	_, err := Run(context.Background(), Config{URL: "http://127.0.0.1:1/", Rate: 1, Method: "PUT"})
	assert.ErrorContains(t, err, `Method "PUT"`)
}

// A client that keeps its connections alive cannot also ask the server to close each one, nor can a
// gRPC client.
func TestAskCloseIsChecked(t *testing.T) {
	_, err := Run(context.Background(), Config{URL: "http://127.0.0.1:1/", Rate: 1, KeepAlive: true, AskClose: true})
	assert.ErrorContains(t, err, "KeepAlive and AskClose")
	_, err = Run(context.Background(), Config{URL: "127.0.0.1:1", Rate: 1, GRPC: GRPCPickFirst, AskClose: true})
	assert.ErrorContains(t, err, "AskClose")
}
