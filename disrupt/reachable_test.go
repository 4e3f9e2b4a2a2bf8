package disrupt

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A Service whose rules a kube-proxy has not synced yet refuses connections for up to its minSyncPeriod:
// reachable keeps trying for the time it is given, and reports the last error after it.
func TestReachableWaitsForTheProxySync(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // refused until the server below starts
	url := "http://" + addr + "/"

	assert.Error(t, reachable(url, 300*time.Millisecond), "nothing listens")

	ready := make(chan struct{})
	go func() {
		<-ready
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})}
		t.Cleanup(func() { _ = srv.Close() })
		_ = srv.Serve(ln)
	}()
	time.AfterFunc(2*time.Second, func() { close(ready) }) // longer than the three tries reachable used to make
	assert.NoError(t, reachable(url, 5*time.Second), "answers once the listener (the rules) is there")
}
