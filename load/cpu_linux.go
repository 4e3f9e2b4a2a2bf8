package load

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"time"
)

// readCPU reads the machine's CPU pressure (/proc/pressure/cpu, "some": the time at least one runnable
// task waited for a CPU) and the throttled time of this process's cgroup (cpu.stat of cgroup v2, or of
// v1's cpu controller), both cumulative. A container sees the machine's pressure and its own cgroup.
func readCPU() cpuReading {
	var r cpuReading
	data, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return r
	}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "some ") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "total="); ok {
				us, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return r
				}
				r.pressure, r.ok = time.Duration(us)*time.Microsecond, true
			}
		}
	}
	r.throttled, r.throttledOK = throttled()
	return r
}

// throttled is the cumulative throttled time of this process's CPU cgroup (0 when it has no limit);
// ok is false when no cpu.stat could be read.
func throttled() (time.Duration, bool) {
	for _, f := range cgroupCPUStat() {
		file, err := os.Open(f)
		if err != nil {
			continue
		}
		defer file.Close()
		s := bufio.NewScanner(file)
		for s.Scan() {
			k, v, _ := strings.Cut(s.Text(), " ")
			n, err := strconv.ParseInt(v, 10, 64)
			switch {
			case err != nil:
			case k == "throttled_usec": // cgroup v2
				return time.Duration(n) * time.Microsecond, true
			case k == "throttled_time": // cgroup v1, nanoseconds
				return time.Duration(n), true
			}
		}
		return 0, true // a cpu.stat without throttling figures: no CPU controller limits it
	}
	return 0, false
}

// cgroupCPUStat lists where this process's cpu.stat may be, most specific first: its cgroup's path
// under the v2 or the v1 cpu hierarchy (the host's view), then the hierarchy's root (a container's own
// cgroup, mounted there).
func cgroupCPUStat() []string {
	var out []string
	data, _ := os.ReadFile("/proc/self/cgroup")
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			out = append(out, "/sys/fs/cgroup"+strings.TrimSuffix(parts[2], "/")+"/cpu.stat")
		case containsController(parts[1], "cpu"):
			out = append(out, "/sys/fs/cgroup/cpu"+strings.TrimSuffix(parts[2], "/")+"/cpu.stat", "/sys/fs/cgroup/cpu,cpuacct"+strings.TrimSuffix(parts[2], "/")+"/cpu.stat")
		}
	}
	return append(out, "/sys/fs/cgroup/cpu/cpu.stat", "/sys/fs/cgroup/cpu,cpuacct/cpu.stat", "/sys/fs/cgroup/cpu.stat")
}

func containsController(list, c string) bool {
	for _, x := range strings.Split(list, ",") {
		if x == c {
			return true
		}
	}
	return false
}
