package graceful

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// probeCloseWait is how long a health check's connection waits for its client to close it first.
const probeCloseWait = 2 * time.Second

// kubeProbe begins the User-Agent of the kubelet's HTTP probes ("kube-probe/1.34").
const kubeProbe = "kube-probe/"

// health answers a health check (readiness or liveness) with code and body. When the kubelet's probe
// asked to close the connection after the answer (its HTTP probes disable keep-alives), the connection
// is taken from the HTTP server once the answer is sent, and closed only after the kubelet has closed its
// side (at most probeCloseWait later). Other clients get net/http's usual close: one that reads until
// the server closes (an HTTP/1.0 script, nc) would otherwise wait.
//
// Why: the side that closes a TCP connection first keeps it in TIME_WAIT for 60 s. An HTTP server closes
// first after answering "Connection: close", so every probe would leave one in the pod, under the node's
// address (the probes' source) and the app's port. kube-proxy masquerades the node's own traffic to a
// Service to that same address with a random source port (--random-fully); a SYN that meets such a
// TIME_WAIT may be dropped for PAWS and answered with the old connection's ACK, and twice in a row costs
// the connect TCP's 1-second retransmission (kubernetes/kubernetes#90854). When the kubelet closes
// first, the TIME_WAIT is its own, on the node, where no masqueraded SYN meets it.
func health(w http.ResponseWriter, r *http.Request, code int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
	if !r.Close || r.Proto != "HTTP/1.1" || !strings.HasPrefix(r.UserAgent(), kubeProbe) {
		return // a kept-alive connection, HTTP/1.0 or /2, or not the kubelet: the server's usual close
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
