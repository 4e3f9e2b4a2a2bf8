package load

import (
	"context"
	"time"
)

// cpuReading is what the machine and the client's own cgroup say about CPU time, cumulative: how long
// some task on the machine waited for a CPU (the kernel's pressure stall information), and how long the
// client's cgroup was held back by its CPU limit. ok and throttledOK are false where they cannot be
// read.
type cpuReading struct {
	pressure, throttled time.Duration
	ok, throttledOK     bool
}

// sampleCPU appends, once a second from start until ctx is done (and once more then, for the last part
// of a second), the milliseconds of CPU pressure and of throttling in that second to res, -1 where
// nothing could be read. A sample taken late (the process itself stalled) covers every second since
// the last one, and each of them gets the average: a stalled second never reads 0. With procs, each
// second also gets the machine's busiest processes (Result.Busiest; a late sample's CPU times are
// averaged the same way). read is readCPU and clock time.Now outside tests.
func sampleCPU(ctx context.Context, res *Result, start time.Time, read func() cpuReading, procs func() []ProcCPU, clock func() time.Time) {
	prev := read()
	add := func(final bool) {
		cur := read()
		n := int(clock().Sub(start) / time.Second) // whole seconds since start
		if final {
			n++ // the last part of a second
		}
		slots := max(1, n-len(res.CPUPressure))
		p, th := int32(-1), int32(-1)
		if prev.ok && cur.ok {
			p = int32((cur.pressure - prev.pressure) / time.Millisecond / time.Duration(slots))
		}
		if prev.throttledOK && cur.throttledOK {
			th = int32((cur.throttled - prev.throttled) / time.Millisecond / time.Duration(slots))
		}
		var top []ProcCPU
		if procs != nil {
			for _, u := range procs() {
				if u.MS /= int32(slots); u.MS > 0 {
					top = append(top, u)
				}
			}
		}
		for range slots {
			res.CPUPressure = append(res.CPUPressure, p)
			res.Throttled = append(res.Throttled, th)
			if procs != nil {
				res.Busiest = append(res.Busiest, top)
			}
		}
		prev = cur
	}
	for {
		select {
		case <-ctx.Done():
			add(true)
			return
		case <-time.After(time.Until(start.Add(time.Duration(len(res.CPUPressure)+1) * time.Second))):
			add(false)
		}
	}
}

// CPUAt is the CPU pressure and the client's throttling, in milliseconds, in the second of the run
// that holds t (ok is false when that second was not sampled or could not be read).
func (r *Result) CPUAt(t time.Time) (pressure, throttled int32, ok bool) {
	i := int(t.Sub(r.Start) / time.Second)
	if i < 0 || i >= len(r.CPUPressure) || i >= len(r.Throttled) || r.CPUPressure[i] < 0 {
		return 0, 0, false
	}
	return r.CPUPressure[i], r.Throttled[i], true
}

// CPUSaid says what CPUAt found for the second that holds t, for a failure's explanation.
func (r *Result) CPUSaid(t time.Time) string {
	p, th, ok := r.CPUAt(t)
	if !ok {
		return "CPU pressure not measured at that second"
	}
	if b := r.BusiestAt(t); b != "" {
		return fmtCPU(p, th) + " (" + b + ")"
	}
	return fmtCPU(p, th)
}

func fmtCPU(p, th int32) string {
	s := "in that second some task on the machine waited " + (time.Duration(p) * time.Millisecond).String() + " for a CPU"
	if th > 0 { // -1: the client's cgroup could not be read
		s += ", and the client's cgroup was throttled by its CPU limit for " + (time.Duration(th) * time.Millisecond).String()
	}
	return s
}

// MaxCPUPressure is the second, among those that overlap [from, to), with the most CPU pressure: its offset from the run's
// start and the milliseconds waited (ok false when none was measured).
func (r *Result) MaxCPUPressure(from, to time.Time) (at time.Duration, ms int32, ok bool) {
	for i, p := range r.CPUPressure {
		sec := r.Start.Add(time.Duration(i) * time.Second)
		if p < 0 || !sec.Add(time.Second).After(from) || !sec.Before(to) {
			continue
		}
		if !ok || p > ms {
			at, ms, ok = time.Duration(i)*time.Second, p, true
		}
	}
	return at, ms, ok
}
