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
// With AskClose it asks the server to close each one (Connection: close; which side then holds the
// TIME_WAIT is a race between the server's close and the client's, which closes once it has read the
// answer). The keep-alive client is the control of the first property: it reuses its connections.
func TestNewConnClientClosesFirst(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name                string
		keepAlive, askClose bool
	}{
		{"new-conn", false, false},
		{"new-conn-close", false, true},
		{"keep-alive", true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
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
			res, err := Run(context.Background(), Config{URL: srv.URL, Rate: 50, Duration: 400 * time.Millisecond, KeepAlive: c.keepAlive, AskClose: c.askClose})
			require.NoError(t, err)
			require.Positive(t, res.OK)
			mu.Lock()
			defer mu.Unlock()
			if c.askClose {
				assert.Equal(t, res.Sent, asked, "every request asks the server to close its connection")
			} else {
				assert.Zero(t, asked, "no request asks the server to close its connection")
			}
			if c.keepAlive {
				assert.Less(t, len(ports), res.Sent, "the keep-alive client reuses connections")
				return
			}
			assert.Len(t, ports, res.Sent, "a connection per request")
			if c.askClose {
				return
			}
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
