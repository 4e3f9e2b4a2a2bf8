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

// The sampler turns cumulative readings into per-second figures, -1 where a reading failed.
func TestSampleCPU(t *testing.T) {
	readings := []cpuReading{
		{pressure: 10 * time.Second, ok: true},
		{pressure: 10*time.Second + 250*time.Millisecond, throttled: 0, ok: true},
		{pressure: 10*time.Second + 900*time.Millisecond, throttled: 40 * time.Millisecond, ok: true},
		{},
		{pressure: 11 * time.Second, throttled: 40 * time.Millisecond, ok: true},
	}
	var calls atomic.Int32
	read := func() cpuReading {
		i := int(calls.Add(1)) - 1
		return readings[min(i, len(readings)-1)]
	}
	res := &Result{}
	ctx, cancel := context.WithCancel(context.Background())
	start := time.Now().Add(-4 * time.Second) // the first four seconds are due at once
	done := make(chan struct{})
	go func() { defer close(done); sampleCPU(ctx, res, start, read) }()
	require.Eventually(t, func() bool { return calls.Load() >= 5 }, 5*time.Second, 10*time.Millisecond)
	cancel()
	<-done
	require.GreaterOrEqual(t, len(res.CPUPressure), 4)
	assert.Equal(t, []int32{250, 650, -1, -1}, res.CPUPressure[:4])
	assert.Equal(t, []int32{0, 40, -1, -1}, res.Throttled[:4])

	res.Start = start
	p, th, ok := res.CPUAt(start.Add(1500 * time.Millisecond))
	assert.True(t, ok)
	assert.Equal(t, int32(650), p)
	assert.Equal(t, int32(40), th)
	assert.Equal(t, "in that second some task on the machine waited 650ms for a CPU, and the client's cgroup was throttled by its CPU limit for 40ms", res.CPUSaid(start.Add(1500*time.Millisecond)))
	assert.Equal(t, "CPU pressure not measured at that second", res.CPUSaid(start.Add(2500*time.Millisecond)))
	at, ms, ok := res.MaxCPUPressure(start, start.Add(4*time.Second))
	assert.True(t, ok)
	assert.Equal(t, time.Second, at)
	assert.Equal(t, int32(650), ms)
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
