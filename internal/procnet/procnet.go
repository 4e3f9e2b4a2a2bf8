// Package procnet reads the kernel's table of IPv4 TCP sockets (/proc/net/tcp) for tests that need to
// know which side of a connection holds its TIME_WAIT.
package procnet

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// timeWait is the TIME_WAIT state's number in /proc/net/tcp (include/net/tcp_states.h).
const timeWait = "06"

// TimeWaits lists the TIME_WAIT sockets of this network namespace between local ports a and b, by the
// port each is bound to: a connection on loopback appears there once per side that holds it.
func TimeWaits(a, b int) ([]int, error) {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return timeWaits(f, a, b)
}

func timeWaits(r io.Reader, a, b int) ([]int, error) {
	var local []int
	sc := bufio.NewScanner(r)
	sc.Scan() // the header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 {
			return nil, fmt.Errorf("procnet: a line of /proc/net/tcp with %d fields: %q", len(fields), sc.Text())
		}
		l, err := port(fields[1])
		if err != nil {
			return nil, err
		}
		r, err := port(fields[2])
		if err != nil {
			return nil, err
		}
		if fields[3] == timeWait && (l == a && r == b || l == b && r == a) {
			local = append(local, l)
		}
	}
	return local, sc.Err()
}

// port reads the port of an address such as 0100007F:1F90.
func port(addr string) (int, error) {
	_, hex, ok := strings.Cut(addr, ":")
	p, err := strconv.ParseUint(hex, 16, 16)
	if !ok || err != nil {
		return 0, fmt.Errorf("procnet: not an address of /proc/net/tcp: %q", addr)
	}
	return int(p), nil
}
