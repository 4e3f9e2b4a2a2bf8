package load

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Between two snapshots each name gets the CPU time its processes used: a process seen in both its
// difference, a new one all of its time, a reused pid (another start time) counts as new, and a child
// that exited has its time up to the first snapshot taken off its parent, whose children's time now
// holds it. Names add up; the largest come first, ties by name; at most n.
func TestBusiest(t *testing.T) {
	const tick = 10 * time.Millisecond
	k := func(pid int, start uint64) procKey { return procKey{pid: pid, start: start} }
	cases := []struct {
		name      string
		prev, cur map[procKey]procStat
		since     uint64 // when prev was read, in ticks after boot
		n         int
		want      []ProcCPU
	}{
		{"a process seen twice, and a new one",
			map[procKey]procStat{k(10, 1): {name: "hk kube-apiserver", ticks: 500}},
			map[procKey]procStat{k(10, 1): {name: "hk kube-apiserver", ticks: 540}, k(11, 90): {name: "runc", ticks: 7}},
			80, 3, []ProcCPU{{"hk kube-apiserver", 400}, {"runc", 70}}},
		{"a process missing from prev that started before it is left out (its stat was not read then)",
			map[procKey]procStat{},
			map[procKey]procStat{k(10, 1): {name: "hk kube-apiserver", ticks: 90000}, k(11, 90): {name: "runc", ticks: 7}},
			80, 3, []ProcCPU{{"runc", 70}}},
		{"a reused pid is another process",
			map[procKey]procStat{k(12, 1): {name: "bridge", ticks: 900}},
			map[procKey]procStat{k(12, 95): {name: "go-service", ticks: 12}},
			80, 3, []ProcCPU{{"go-service", 120}}},
		{"an exited child's earlier time is taken off its parent",
			map[procKey]procStat{k(20, 1): {name: "containerd", ticks: 100}, k(21, 50): {ppid: 20, name: "runc", ticks: 30}},
			map[procKey]procStat{k(20, 1): {name: "containerd", ticks: 100 + 5 + 45}}, // 5 of its own, 45 of the child's (30 seen before)
			80, 3, []ProcCPU{{"containerd", 200}}},
		{"names add up; largest first, ties by name, at most n",
			map[procKey]procStat{},
			map[procKey]procStat{k(1, 1): {name: "go-service", ticks: 10}, k(2, 1): {name: "go-service", ticks: 10}, k(3, 1): {name: "b", ticks: 5}, k(4, 1): {name: "a", ticks: 5}, k(5, 1): {name: "idle", ticks: 0}},
			0, 2, []ProcCPU{{"go-service", 200}, {"a", 50}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, busiest(c.prev, c.cur, c.since, tick, c.n))
		})
	}
}

func TestProcName(t *testing.T) {
	cases := []struct{ cmdline, comm, want string }{
		{"/root/.cache/go-service/hk/0623/hk\x00kube-apiserver\x00--etcd-servers=http://127.0.0.1:2379\x00", "hk", "hk kube-apiserver"},
		{"/go-service\x00load\x00-url\x00http://10.96.0.1/\x00", "go-service", "go-service load"},
		{"/go-service\x00", "go-service", "go-service"},
		{"/usr/bin/containerd\x00--config\x00/var/lib/x.toml\x00", "containerd", "containerd"},
		{"/usr/bin/containerd-shim-runc-v2\x00-namespace\x00k8s.io\x00", "containerd-shim", "containerd-shim-runc-v2"},
		{"/bin/sh\x00/tmp/script.sh\x00", "sh", "sh"},
		{"env\x00GOFLAGS=-race\x00go\x00", "env", "env"},
		{"", "ksoftirqd/1", "[ksoftirqd]"},
		{"", "kworker/1:2-events", "[kworker]"},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, procName(c.cmdline, c.comm), "%q", c.cmdline)
	}
}

// A sampler's names go to every second it covers; a late sample's times are spread over its seconds
// like the pressure, and a failure's explanation names them.
func TestSampleCPUNamesTheBusiest(t *testing.T) {
	readings := []cpuReading{
		{pressure: 0, ok: true, throttledOK: true},
		{pressure: 600 * time.Millisecond, ok: true, throttledOK: true},  // at 1.0 s
		{pressure: 1200 * time.Millisecond, ok: true, throttledOK: true}, // at 4.0 s: 2 s late
		{pressure: 1800 * time.Millisecond, ok: true, throttledOK: true}, // at the end
	}
	procs := func() []ProcCPU { return []ProcCPU{{"hk kube-apiserver", 900}, {"runc", 300}, {"sh", 2}} }
	res, start := runSampler(t, readings, []time.Duration{1000, 4000, 4000}, procs)
	require.Len(t, res.Busiest, len(res.CPUPressure), "a list per second")
	require.GreaterOrEqual(t, len(res.Busiest), 4)
	assert.Equal(t, []ProcCPU{{"hk kube-apiserver", 900}, {"runc", 300}, {"sh", 2}}, res.Busiest[0])
	for i := 1; i <= 3; i++ {
		assert.Equal(t, []ProcCPU{{"hk kube-apiserver", 300}, {"runc", 100}}, res.Busiest[i], "second %d: sh's 2 ms over 3 seconds round to nothing and are left out", i)
	}
	assert.Equal(t, "in that second some task on the machine waited 200ms for a CPU (busiest: hk kube-apiserver 300 ms, runc 100 ms)", res.CPUSaid(start.Add(2500*time.Millisecond)))
	assert.Empty(t, (&Result{Start: start}).BusiestAt(start), "no sampler, no names")
}
