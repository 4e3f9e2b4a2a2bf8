package graceful

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-service/go-service/internal/procnet"
)

// A health check whose client asks to close the connection (as the kubelet's probes do) leaves the
// connection's TIME_WAIT with the client: the server waits for the client's close before its own. The
// application's own path, answered by net/http alone, is the control: there the server closes first and
// holds the TIME_WAIT, which shows that the test tells the two apart.
func TestHealthChecksLetTheClientCloseFirst(t *testing.T) {
	t.Parallel()
	base, _, _, s := start(t, testConfig())
	serverPort, err := strconv.Atoi(base[strings.LastIndex(base, ":")+1:])
	require.NoError(t, err)
	cases := []struct {
		name, path string
		draining   bool
		want       int
		timeWaitAt string // "client" or "server"
	}{
		{"liveness", "/healthz/live", false, http.StatusOK, "client"},
		{"readiness", "/healthz/ready", false, http.StatusOK, "client"},
		{"readiness while draining", "/healthz/ready", true, http.StatusServiceUnavailable, "client"},
		{"control: the application's path", "/", false, http.StatusOK, "server"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.draining {
				s.StartDraining("test")
			}
			var clientPort int
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
				DisableKeepAlives: true,
				DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
					conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
					if err == nil {
						clientPort = conn.LocalAddr().(*net.TCPAddr).Port
					}
					return conn, err
				},
			}}
			resp, err := client.Get(base + c.path)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			assert.Equal(t, c.want, resp.StatusCode, "body %q", body)
			assert.True(t, resp.Close, "the answer says Connection: close")
			assert.Equal(t, strconv.Itoa(len(body)), resp.Header.Get("Content-Length"))

			var held []int
			require.Eventually(t, func() bool {
				held, err = procnet.TimeWaits(serverPort, clientPort)
				require.NoError(t, err)
				return len(held) > 0
			}, 5*time.Second, 10*time.Millisecond, "the connection %d-%d reaches TIME_WAIT on one side", clientPort, serverPort)
			wantPort := map[string]int{"client": clientPort, "server": serverPort}[c.timeWaitAt]
			assert.Contains(t, held, wantPort, "the %s holds the TIME_WAIT", c.timeWaitAt)
			if c.timeWaitAt == "client" {
				assert.NotContains(t, held, serverPort, "the server closed after its client: it holds no TIME_WAIT")
			}
		})
	}
}
