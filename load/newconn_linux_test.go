package load

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-service/go-service/internal/procnet"
)

// A new-conn client opens a connection per request, does not ask the server to close it, and closes
// it itself once it has the answer: each connection's TIME_WAIT is the client's, never the server's.
// The keep-alive client is the control of the first property: it reuses its connections.
func TestNewConnClientClosesFirst(t *testing.T) {
	t.Parallel()
	for _, keepAlive := range []bool{false, true} {
		t.Run("keepAlive="+strconv.FormatBool(keepAlive), func(t *testing.T) {
			var mu sync.Mutex
			ports, asked := map[int]bool{}, 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, port, _ := net.SplitHostPort(r.RemoteAddr)
				n, _ := strconv.Atoi(port)
				mu.Lock()
				ports[n] = true
				if r.Close {
					asked++
				}
				mu.Unlock()
				_, _ = w.Write([]byte("pod=a\n"))
			}))
			defer srv.Close()
			res, err := Run(context.Background(), Config{URL: srv.URL, Rate: 50, Duration: 400 * time.Millisecond, KeepAlive: keepAlive})
			require.NoError(t, err)
			require.Positive(t, res.OK)
			mu.Lock()
			defer mu.Unlock()
			assert.Zero(t, asked, "no request asks the server to close its connection")
			if keepAlive {
				assert.Less(t, len(ports), res.Sent, "the keep-alive client reuses connections")
				return
			}
			assert.Len(t, ports, res.Sent, "a connection per request")
			_, sport, err := net.SplitHostPort(srv.Listener.Addr().String())
			require.NoError(t, err)
			serverPort, _ := strconv.Atoi(sport)
			for client := range ports {
				var held []int
				require.Eventually(t, func() bool {
					held, err = procnet.TimeWaits(serverPort, client)
					require.NoError(t, err)
					return len(held) > 0
				}, 5*time.Second, 10*time.Millisecond, "connection from port %d reaches TIME_WAIT on one side", client)
				assert.Equal(t, []int{client}, held, "the client holds the TIME_WAIT, the server none")
			}
		})
	}
}
