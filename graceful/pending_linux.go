//go:build linux

package graceful

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// pendingBytes is how many bytes a connection has received and its server has not read yet (SIOCINQ, which is TIOCINQ):
// a request that has arrived on a connection the server still counts as idle, because the goroutine that
// reads it has not run yet (on a busy machine, for hundreds of milliseconds). 0 when it cannot be told.
func pendingBytes(c net.Conn) int {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	_ = raw.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ) })
	return n
}
