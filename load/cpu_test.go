package load

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The sampler turns cumulative readings into per-second figures, -1 where a reading failed, and a
// late sample spreads over the seconds it covers (a stalled second never reads 0).
func TestSampleCPU(t *testing.T) {
	readings := []cpuReading{
		{pressure: 10 * time.Second, ok: true, throttledOK: true},
		{pressure: 10*time.Second + 250*time.Millisecond, ok: true, throttledOK: true},                                   // at 1.0 s
		{pressure: 10*time.Second + 900*time.Millisecond, throttled: 40 * time.Millisecond, ok: true, throttledOK: true}, // at 2.0 s
		{}, // at 3.0 s: unreadable
		{pressure: 11 * time.Second, throttled: 40 * time.Millisecond, ok: true, throttledOK: true},                      // at 4.0 s
		{pressure: 13*time.Second + 700*time.Millisecond, throttled: 40 * time.Millisecond, ok: true, throttledOK: true}, // at 7.2 s: 3 s late
		{pressure: 13*time.Second + 800*time.Millisecond, throttled: 40 * time.Millisecond, ok: true},                    // at 7.5 s, the end: no cgroup
	}
	clock := []time.Duration{1000, 2000, 3000, 4000, 7200, 7500} // ms after start, when each sample after the first is taken
	res, start := runSampler(t, readings, clock, nil)
	require.GreaterOrEqual(t, len(res.CPUPressure), 8, "%v", res.CPUPressure)
	assert.Equal(t, []int32{250, 650, -1, -1, 900, 900, 900}, res.CPUPressure[:7], "the 3 s late sample is spread over seconds 4, 5 and 6")
	assert.Equal(t, []int32{0, 40, -1, -1, 0, 0, 0}, res.Throttled[:7])

	p, th, ok := res.CPUAt(start.Add(1500 * time.Millisecond))
	assert.True(t, ok)
	assert.Equal(t, int32(650), p)
	assert.Equal(t, int32(40), th)
	assert.Equal(t, "in that second some task on the machine waited 650ms for a CPU, and the client's cgroup was throttled by its CPU limit for 40ms", res.CPUSaid(start.Add(1500*time.Millisecond)))
	assert.Equal(t, "CPU pressure not measured at that second", res.CPUSaid(start.Add(2500*time.Millisecond)))
	assert.Equal(t, "in that second some task on the machine waited 900ms for a CPU", res.CPUSaid(start.Add(5500*time.Millisecond)))
	at, ms, ok := res.MaxCPUPressure(start, start.Add(4*time.Second))
	assert.True(t, ok)
	assert.Equal(t, time.Second, at)
	assert.Equal(t, int32(650), ms)
	_, ms, _ = res.MaxCPUPressure(start.Add(4*time.Second), start.Add(4*time.Second+time.Millisecond))
	assert.Equal(t, int32(900), ms, "the second that holds a moment")
	_, ms, _ = res.MaxCPUPressure(start.Add(2*time.Second), start.Add(3*time.Second))
	assert.Zero(t, ms, "a second that only touches the window's start is not in it")
}

// On this machine the kernel publishes CPU pressure; a run records a figure per second.
func TestRunRecordsCPUPressure(t *testing.T) {
	if r := readCPU(); !r.ok {
		t.Skip("no /proc/pressure/cpu on this kernel")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("pod=a\n")) }))
	defer srv.Close()
	res, err := Run(context.Background(), Config{URL: srv.URL, Rate: 50, Duration: 2200 * time.Millisecond})
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(res.CPUPressure), 2, "%v", res.CPUPressure)
	for _, p := range res.CPUPressure {
		assert.GreaterOrEqual(t, p, int32(0))
		assert.LessOrEqual(t, p, int32(1100), "at most a second per second, and a little for rounding")
	}
}

// runSampler runs sampleCPU over readings, the i-th sample after the first taken at clock[i]
// milliseconds after start (an hour ago: every tick is due at once; the clock says when it ran), with
// procs, until every reading has been taken; it returns the result and start.
func runSampler(tb testing.TB, readings []cpuReading, clock []time.Duration, procs func() []ProcCPU) (*Result, time.Time) {
	tb.Helper()
	var calls atomic.Int32
	read := func() cpuReading {
		i := int(calls.Add(1)) - 1
		return readings[min(i, len(readings)-1)]
	}
	start := time.Now().Add(-time.Hour)
	now := func() time.Time {
		i := int(calls.Load()) - 2
		return start.Add(clock[max(0, min(i, len(clock)-1))] * time.Millisecond)
	}
	res := &Result{Start: start}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sampleCPU(ctx, res, start, read, procs, now) }()
	require.Eventually(tb, func() bool { return int(calls.Load()) >= len(readings)-1 }, 5*time.Second, time.Millisecond)
	cancel()
	<-done
	return res, start
}
