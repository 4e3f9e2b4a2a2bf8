//go:build !linux

package load

import "net"

// retransmissions cannot read TCP_INFO outside Linux.
func retransmissions(*net.TCPConn) int { return -1 }
