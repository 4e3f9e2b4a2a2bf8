package load

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// ProcCPU is the CPU time the processes of one name used in one second.
type ProcCPU struct {
	Name string `json:"n"`
	MS   int32  `json:"ms"`
}

// busiestPerSecond is how many names a second of Result.Busiest keeps.
const busiestPerSecond = 3

// procStat is one process as /proc/PID/stat shows it.
type procStat struct {
	ppid int
	name string
	// ticks is its CPU time and that of the children it has waited for (utime + stime + cutime +
	// cstime), in clock ticks.
	ticks uint64
}

// procKey identifies a process across snapshots: a pid and its start time (pids are reused).
type procKey struct {
	pid   int
	start uint64
}

// busiest is the CPU time each name used between two snapshots of the machine's processes, prev taken
// at since (clock ticks after boot), the n largest, largest first (ties by name). A process new in cur
// that started after prev used all of its time in between; one that started before and is missing
// from prev (its stat could not be read then) is left out, as its time cannot be placed. A child that
// exited in between had its time up to prev counted then, and its parent's children's time now holds
// all of it, so that part is taken off the parent (an orphan's time goes to whoever reaped it:
// approximate there).
func busiest(prev, cur map[procKey]procStat, since uint64, tick time.Duration, n int) []ProcCPU {
	used := make(map[procKey]int64, len(cur))
	byPid := make(map[int]procKey, len(cur))
	for k, p := range cur {
		byPid[k.pid] = k
		d := int64(p.ticks)
		if q, ok := prev[k]; ok {
			d -= int64(q.ticks)
		} else if k.start < since {
			continue
		}
		used[k] = d
	}
	for k, p := range prev {
		if _, alive := cur[k]; alive {
			continue
		}
		if parent, ok := byPid[p.ppid]; ok {
			if _, counted := used[parent]; counted {
				used[parent] -= int64(p.ticks)
			}
		}
	}
	byName := map[string]int64{}
	for k, d := range used {
		if d > 0 {
			byName[cur[k].name] += d
		}
	}
	out := make([]ProcCPU, 0, len(byName))
	for name, d := range byName {
		if ms := int32(time.Duration(d) * tick / time.Millisecond); ms > 0 {
			out = append(out, ProcCPU{Name: name, MS: ms})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].MS != out[j].MS {
			return out[i].MS > out[j].MS
		}
		return out[i].Name < out[j].Name
	})
	return out[:min(n, len(out))]
}

// procName names a process in a report: its program's base name, with its first argument when that
// is a subcommand rather than a flag or a path ("hk kube-apiserver", "go-service load"); a kernel
// thread (no command line) by its name in brackets, without its CPU or worker number ("[ksoftirqd]").
func procName(cmdline, comm string) string {
	args := strings.Split(strings.TrimRight(cmdline, "\x00"), "\x00")
	if args[0] == "" {
		name, _, _ := strings.Cut(comm, "/")
		return "[" + name + "]"
	}
	name := args[0][strings.LastIndex(args[0], "/")+1:]
	if len(args) > 1 && args[1] != "" && !strings.HasPrefix(args[1], "-") && !strings.Contains(args[1], "/") && !strings.Contains(args[1], "=") {
		name += " " + args[1]
	}
	return name
}

// BusiestAt names the processes that used the most CPU on the machine in the second of the run that
// holds t ("" when the client did not sample them: Config.Processes).
func (r *Result) BusiestAt(t time.Time) string {
	i := int(t.Sub(r.Start) / time.Second)
	if i < 0 || i >= len(r.Busiest) || len(r.Busiest[i]) == 0 {
		return ""
	}
	parts := make([]string, len(r.Busiest[i]))
	for j, p := range r.Busiest[i] {
		parts[j] = fmt.Sprintf("%s %d ms", p.Name, p.MS)
	}
	return "busiest: " + strings.Join(parts, ", ")
}
