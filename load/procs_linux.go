package load

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of /proc/PID/stat's CPU times: USER_HZ, 100 on every Linux architecture Go
// supports.
const clockTick = 10 * time.Millisecond

// procSampler reads the machine's processes once a second and says which used the most CPU since
// the last reading. It is not safe for concurrent use.
type procSampler struct {
	prev  map[procKey]procStat
	since uint64           // when prev was read, in clock ticks after boot
	names map[procKey]name // read again when a process runs another program
}

// name is a process's name in reports, and the kernel's name of its program then (comm).
type name struct{ comm, name string }

func newProcSampler() *procSampler {
	s := &procSampler{names: map[procKey]name{}}
	s.since = uptime()
	s.prev = s.read()
	return s
}

// sample returns the busiest names since the last sample (or since the sampler was made).
func (s *procSampler) sample() []ProcCPU {
	now := uptime()
	cur := s.read()
	top := busiest(s.prev, cur, s.since, clockTick, busiestPerSecond)
	for k := range s.names {
		if _, ok := cur[k]; !ok {
			delete(s.names, k)
		}
	}
	s.prev, s.since = cur, now
	return top
}

// uptime is the time since boot in clock ticks (/proc/uptime), the unit of a process's starttime; 0
// when it cannot be read (then no process counts as started after it).
func uptime() uint64 {
	data, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0
	}
	secs, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0
	}
	return uint64(secs * float64(time.Second/clockTick))
}

// read is a snapshot of every process this process can see in /proc.
func (s *procSampler) read() map[procKey]procStat {
	dir, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	out := make(map[procKey]procStat, len(dir))
	for _, e := range dir {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		k, p, ok := parseStat(pid, string(data))
		if !ok {
			continue
		}
		n, ok := s.names[k]
		if !ok || n.comm != p.name { // new, or it ran another program (runc init becomes the container's)
			cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			n = name{comm: p.name, name: procName(string(cmdline), p.name)}
			s.names[k] = n
		}
		p.name = n.name
		out[k] = p
	}
	return out
}

// parseStat reads /proc/PID/stat: "PID (COMM) STATE PPID ..." with utime, stime, cutime and cstime the
// 14th to 17th fields and starttime the 22nd. COMM may hold spaces and parentheses: it ends at the last
// ")". p.name is COMM.
func parseStat(pid int, stat string) (procKey, procStat, bool) {
	open, end := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
	if open < 0 || end < open {
		return procKey{}, procStat{}, false
	}
	f := strings.Fields(stat[end+1:]) // f[0] is field 3 (state)
	if len(f) < 20 {
		return procKey{}, procStat{}, false
	}
	num := func(field int) uint64 {
		n, _ := strconv.ParseUint(f[field-3], 10, 64)
		return n
	}
	ppid, _ := strconv.Atoi(f[1])
	p := procStat{ppid: ppid, name: stat[open+1 : end], ticks: num(14) + num(15) + num(16) + num(17)}
	return procKey{pid: pid, start: num(22)}, p, true
}
