package graceful

import (
	"bufio"
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

// A health check the kubelet asks to close the connection after leaves the connection's TIME_WAIT
// with the kubelet: the server waits for the client's close before its own. Another client, and the
// application's own path, answered by net/http alone, are the controls: there the server closes on its
// own right after the answer (the client here waits for that before it closes, so that nothing races)
// and holds the TIME_WAIT, which shows that the test tells the two apart.
func TestHealthChecksLetTheClientCloseFirst(t *testing.T) {
	t.Parallel()
	base, _, _, s := start(t, testConfig())
	addr := strings.TrimPrefix(base, "http://")
	serverPort, err := strconv.Atoi(addr[strings.LastIndex(addr, ":")+1:])
	require.NoError(t, err)
	const kubelet = "kube-probe/1.34"
	cases := []struct {
		name, path, agent string
		draining          bool
		want              int
		kubeletCloses     bool // the server waits for the client's close: the client holds the TIME_WAIT
	}{
		{"liveness", "/healthz/live", kubelet, false, http.StatusOK, true},
		{"readiness", "/healthz/ready", kubelet, false, http.StatusOK, true},
		{"control: another client than the kubelet", "/healthz/ready", "curl/8.5.0", false, http.StatusOK, false},
		{"control: the application's path", "/", kubelet, false, http.StatusOK, false},
		{"readiness while draining", "/healthz/ready", kubelet, true, http.StatusServiceUnavailable, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.draining {
				s.StartDraining("test")
			}
			conn, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			defer conn.Close()
			clientPort := conn.LocalAddr().(*net.TCPAddr).Port
			req, err := http.NewRequest(http.MethodGet, base+c.path, nil)
			require.NoError(t, err)
			req.Header.Set("User-Agent", c.agent)
			req.Close = true // Connection: close, as the kubelet's probes send it
			require.NoError(t, req.Write(conn))
			r := bufio.NewReader(conn)
			resp, err := http.ReadResponse(r, req)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, c.want, resp.StatusCode, "body %q", body)
			assert.True(t, resp.Close, "the answer says Connection: close")
			assert.Equal(t, strconv.Itoa(len(body)), resp.Header.Get("Content-Length"))
			if !c.kubeletCloses {
				// The server closes on its own, well before it would have given up waiting for us.
				require.NoError(t, conn.SetReadDeadline(time.Now().Add(probeCloseWait/2)))
				_, err := r.ReadByte()
				require.ErrorIs(t, err, io.EOF, "the server closed the connection on its own after the answer")
			}
			require.NoError(t, conn.Close())

			var held []int
			require.Eventually(t, func() bool {
				held, err = procnet.TimeWaits(serverPort, clientPort)
				require.NoError(t, err)
				return len(held) > 0
			}, 5*time.Second, 10*time.Millisecond, "the connection %d-%d reaches TIME_WAIT on one side", clientPort, serverPort)
			if c.kubeletCloses {
				assert.Equal(t, []int{clientPort}, held, "the client closed first and holds the TIME_WAIT; the server, which closed after it, none")
			} else {
				assert.Equal(t, []int{serverPort}, held, "the server closed first and holds the TIME_WAIT")
			}
		})
	}
}

// A client that never closes its side holds the connection no longer than the wait: then the server
// closes it.
func TestCloseAfterClientIsBounded(t *testing.T) {
	t.Parallel()
	client, server := loopbackPair(t)
	start := time.Now()
	closeAfterClient(server, 200*time.Millisecond)
	assert.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond, "it waited for the client")
	require.NoError(t, client.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err := client.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "then the server closed its side")
}
