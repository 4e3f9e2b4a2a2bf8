package graceful

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// probeCloseWait is how long a health check's connection waits for its client to close it first.
const probeCloseWait = 2 * time.Second

// health answers a health check (readiness or liveness) with code and body. When the client asked to
// close the connection after the answer (the kubelet's HTTP probes do: they disable keep-alives), the
// connection is taken from the HTTP server once the answer is sent, and closed only after the client has
// closed its side (at most probeCloseWait later).
//
// Why: the side that closes a TCP connection first keeps it in TIME_WAIT for 60 s. An HTTP server closes
// first after answering "Connection: close", so every probe would leave one in the pod, under the node's
// address (the probes' source) and the app's port. kube-proxy masquerades the node's own traffic to a
// Service to that same address with a random source port (--random-fully); a SYN that meets such a
// TIME_WAIT is dropped for PAWS (the probe's timestamps come from another clock) and answered with the old
// connection's ACK, and twice in a row costs the connect TCP's 1-second retransmission
// (kubernetes/kubernetes#90854). When the kubelet closes first, the TIME_WAIT is its own, on the node,
// where no masqueraded SYN meets it.
func health(w http.ResponseWriter, r *http.Request, code int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
	if !r.Close || r.ProtoMajor != 1 {
		return // a kept-alive connection, or HTTP/2: the server's usual close
	}
	rc := http.NewResponseController(w)
	if rc.Flush() != nil {
		return
	}
	conn, _, err := rc.Hijack()
	if err != nil {
		return
	}
	closeAfterClient(conn, probeCloseWait)
}

// closeAfterClient reads (and drops) what the client still sends until it closes its side (EOF) or wait
// has passed, then closes the connection.
func closeAfterClient(c net.Conn, wait time.Duration) {
	defer c.Close()
	if c.SetReadDeadline(time.Now().Add(wait)) != nil {
		return
	}
	_, _ = io.Copy(io.Discard, c)
}
