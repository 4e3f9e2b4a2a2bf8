package load

import (
	"context"
	"net"
	"time"
)

// SlowConnect is the connect time above which a client looks at how the TCP handshake went. Linux
// retransmits an unanswered SYN after 1 s, so every lost SYN or SYN-ACK makes a connect slower than it.
const SlowConnect = 500 * time.Millisecond

// handshake is a connection with what its opening cost: how long the connect took and, when it took
// longer than SlowConnect, how many times the kernel retransmitted its SYN (TCP_INFO's total_retrans
// right after the handshake; -1 where it cannot be read).
type handshake struct {
	net.Conn
	connect    time.Duration
	synRetrans int
	// local and remote are the connection's addresses, kept when the connect was slow (to find it in
	// the kernel's record)
	local, remote string
}

// dialRecording dials as d does and keeps the handshake's cost on the connection it returns.
func dialRecording(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		start := time.Now()
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		h := &handshake{Conn: c, connect: time.Since(start)}
		if h.connect > SlowConnect {
			h.synRetrans = -1
			if tc, ok := c.(*net.TCPConn); ok {
				h.synRetrans = retransmissions(tc)
			}
			h.local, h.remote = c.LocalAddr().String(), c.RemoteAddr().String()
		}
		return h, nil
	}
}
