//go:build !linux

package graceful

import "net"

// pendingBytes cannot tell unread bytes here: 0.
func pendingBytes(net.Conn) int { return 0 }
