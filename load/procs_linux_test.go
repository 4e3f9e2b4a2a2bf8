package load

import (
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The sampler reads this machine's processes: 300 ms of CPU this test spins show as this test binary's,
// within what getrusage says, and the stat line of this process parses.
func TestProcSamplerSeesThisProcess(t *testing.T) {
	data, err := os.ReadFile("/proc/self/stat")
	require.NoError(t, err)
	k, p, ok := parseStat(os.Getpid(), string(data))
	require.True(t, ok, "%s", data)
	assert.Equal(t, os.Getpid(), k.pid)
	assert.Positive(t, k.start)
	assert.Equal(t, os.Getppid(), p.ppid)

	cpu := func() time.Duration {
		var ru syscall.Rusage
		require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b0 := cpu()
	s := newProcSampler()
	b1 := cpu()
	require.NotEmpty(t, s.prev, "processes in /proc")
	for cpu()-b1 < 300*time.Millisecond { // spin: 300 ms of this process's CPU time, however busy the machine
	}
	a0 := cpu()
	cur := s.read()
	a1 := cpu()
	cmdline, err := os.ReadFile("/proc/self/cmdline")
	require.NoError(t, err)
	me := procName(string(cmdline), "")
	var mine time.Duration
	for _, u := range busiest(s.prev, cur, s.since, clockTick, len(cur)) {
		if u.Name == me {
			mine = time.Duration(u.MS) * time.Millisecond
		}
	}
	// The sampler read this process's times somewhere inside each of its two scans of /proc, each
	// rounded down to a 10 ms clock tick.
	const tick = 2 * clockTick
	assert.GreaterOrEqual(t, mine, a0-b1-tick, "%s: at least the CPU time getrusage saw between the scans", me)
	assert.LessOrEqual(t, mine, a1-b0+tick, "%s: at most the CPU time getrusage saw over both scans", me)
}
