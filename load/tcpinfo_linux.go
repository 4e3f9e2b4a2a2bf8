package load

import (
	"net"

	"golang.org/x/sys/unix"
)

// retransmissions reads the connection's TCP_INFO total_retrans (-1 if it cannot be read). Right after
// the handshake, nothing but SYNs has been retransmitted.
func retransmissions(c *net.TCPConn) int {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1
	}
	n := -1
	_ = raw.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			n = int(info.Total_retrans)
		}
	})
	return n
}
