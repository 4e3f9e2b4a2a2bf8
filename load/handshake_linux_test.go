package load

import (
	"context"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// fullListener listens on loopback with a backlog of 0 and one connection left unaccepted in its queue:
// the kernel drops every further SYN until the queue is drained, as a lost SYN would be.
func fullListener(t *testing.T) (net.Listener, string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	require.NoError(t, err)
	require.NoError(t, unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, unix.Listen(fd, 0))
	f := os.NewFile(uintptr(fd), "backlog-0")
	l, err := net.FileListener(f)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	t.Cleanup(func() { l.Close() })
	filler, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { filler.Close() })
	return l, l.Addr().String()
}

// A request whose SYN the server's kernel dropped keeps how long its connect took and the SYN
// retransmission TCP_INFO counted; a connection opened at once keeps neither.
func TestSlowConnectKeepsItsRetransmissions(t *testing.T) {
	l, addr := fullListener(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("pod=a\n")) })}
	t.Cleanup(func() { srv.Close() })
	go func() {
		time.Sleep(300 * time.Millisecond) // the first SYN is sent into the full queue, then the queue drains
		_ = srv.Serve(l)
	}()
	res, err := Run(context.Background(), Config{URL: "http://" + addr + "/", Rate: 2, Duration: 1500 * time.Millisecond})
	require.NoError(t, err)
	require.NotEmpty(t, res.Requests)
	first := res.Requests[0]
	require.Empty(t, first.Kind, "the first request succeeds after its SYN is retransmitted")
	assert.GreaterOrEqual(t, first.Latency(), 900*time.Millisecond)
	assert.GreaterOrEqual(t, first.ConnectMicros, int64(900_000), "its connect took the retransmission timeout")
	assert.GreaterOrEqual(t, first.SynRetransmits, 1, "TCP_INFO counted the SYN retransmission")
	last := res.Requests[len(res.Requests)-1]
	assert.Less(t, last.Latency(), SlowConnect, "a later request connects at once")
	assert.Zero(t, last.ConnectMicros)
	assert.Zero(t, last.SynRetransmits)
}
