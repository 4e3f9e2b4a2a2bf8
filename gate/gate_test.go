package gate_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-service/go-service/gate"
	"github.com/go-service/go-service/load"
	"github.com/go-service/go-service/tcptrace"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// run builds a 20 s result at 100/s; edit changes request i (sent at i*10ms).
func run(edit func(i int, q *load.Request)) *load.Result {
	r := &load.Result{Config: load.Config{Name: "host GET new-conn", Rate: 100}, Start: t0, End: t0.Add(20 * time.Second),
		BackendNames: []string{"pod=old-1 version=", "pod=new-1 version="}}
	for i := 0; i < 2000; i++ {
		q := load.Request{SentMicros: int64(i) * 10000, LatencyMicros: 2000, Backend: 0}
		if i >= 1000 {
			q.Backend = 1
		}
		if edit != nil {
			edit(i, &q)
		}
		r.Requests = append(r.Requests, q)
		if q.Kind == "" {
			r.OK++
		} else {
			r.Failed++
		}
	}
	r.Sent = len(r.Requests)
	return r
}

// window is a disruption from 5 s to 15 s.
var window = gate.Window{From: t0.Add(5 * time.Second), To: t0.Add(15 * time.Second)}

func violations(t *testing.T, errs []error, wantGate string) []*gate.Violation {
	t.Helper()
	var out []*gate.Violation
	for _, err := range errs {
		var v *gate.Violation
		require.True(t, errors.As(err, &v), "%v is a *gate.Violation", err)
		assert.Equal(t, wantGate, v.Gate)
		t.Logf("violation: %v", err)
		out = append(out, v)
	}
	return out
}

func TestCoverage(t *testing.T) {
	sparse := run(nil)
	sparse.Requests = sparse.Requests[:1000] // half the rate x duration
	sparse.Sent = 1000
	empty := run(nil)
	empty.Requests, empty.Sent = nil, 0
	// A client frozen from 7 s to 12 s inside the disruption that sends the backlog in a burst at 12 s:
	// as many requests as the rate asks over the run, none in five seconds of the disruption.
	stalled := run(func(i int, q *load.Request) {
		if at := time.Duration(q.SentMicros) * time.Microsecond; at >= 7*time.Second && at < 12*time.Second {
			q.SentMicros = int64(12*time.Second/time.Microsecond) + int64(i%500)*100
		}
	})
	totalsOnly := run(nil)
	totalsOnly.Requests = nil // the client says it sent 2000 and kept no record of any
	tests := []struct {
		name   string
		res    *load.Result
		window gate.Window
		want   int // violations
	}{
		{"a client that covered the disruption", run(nil), window, 0},
		{"a client that sent nothing", empty, window, 2},
		{"a client that sent half of rate x duration", sparse, window, 2},
		{"a client that stalled 5 s inside the disruption and caught up", stalled, window, 1},
		{"a client that reports totals and no records", totalsOnly, window, 3},
		{"no steady load before the disruption", run(nil), gate.Window{From: t0.Add(time.Second), To: window.To}, 1},
		{"load stopped before the disruption settled", run(nil), gate.Window{From: window.From, To: t0.Add(19 * time.Second)}, 2},
		{"a disruption that started before the load", run(nil), gate.Window{From: t0.Add(-time.Second), To: t0.Add(25 * time.Second)}, 3},
		{"no result at all", nil, window, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := gate.CheckCoverage(gate.Check{Client: "c", Result: tt.res, Window: tt.window}, gate.Policy{})
			assert.Len(t, violations(t, errs, gate.Coverage), tt.want, "%v", errs)
		})
	}
	// A stalled second says what the machine's CPU did in it.
	stalled.CPUPressure, stalled.Throttled = make([]int32, 20), make([]int32, 20)
	stalled.CPUPressure[8] = 990
	errs := gate.CheckCoverage(gate.Check{Client: "c", Result: stalled, Window: window}, gate.Policy{})
	require.Len(t, errs, 1)
	assert.Contains(t, errs[0].Error(), "+3s: 0 sent (CPU pressure 990 ms)")
	// and, where the client sampled them, which processes used the CPU then.
	stalled.Busiest = make([][]load.ProcCPU, 20)
	stalled.Busiest[8] = []load.ProcCPU{{Name: "hk kubelet", MS: 800}}
	errs = gate.CheckCoverage(gate.Check{Client: "c", Result: stalled, Window: window}, gate.Policy{})
	require.Len(t, errs, 1)
	assert.Contains(t, errs[0].Error(), "+3s: 0 sent (CPU pressure 990 ms; busiest: hk kubelet 800 ms)")
}

func TestNoFailuresAndLatency(t *testing.T) {
	dropAt := func(i int) func(int, *load.Request) {
		return func(j int, q *load.Request) {
			if j == i {
				q.Kind, q.Backend = load.KindRefused, -1
			}
		}
	}
	assert.Empty(t, gate.CheckNoFailures(gate.Check{Result: run(nil), Window: window}))
	assert.Len(t, violations(t, gate.CheckNoFailures(gate.Check{Result: run(dropAt(1900)), Window: window}), gate.Failures), 1, "a drop after the window still fails a gated run")

	slow := run(func(i int, q *load.Request) {
		if i == 700 {
			q.LatencyMicros = 1500000
		}
	})
	vs := violations(t, gate.CheckLatency(gate.Check{Client: "c", Result: slow, Window: window}, gate.Policy{}), gate.Latency)
	require.Len(t, vs, 1)
	assert.Contains(t, vs[0].Detail, "1.5s")
	assert.Contains(t, vs[0].Detail, "answered by pod=old-1 version=", "the slow request's pod is named")
	assert.Contains(t, vs[0].Detail, "opened within 500ms: the time went after the TCP handshake", "no slow connect was recorded")

	syn := run(func(i int, q *load.Request) {
		if i == 1200 {
			q.LatencyMicros, q.ConnectMicros, q.SynRetransmits = 1035000, 1031000, 1
		}
	})
	vs = violations(t, gate.CheckLatency(gate.Check{Client: "c", Result: syn, Window: window}, gate.Policy{}), gate.Latency)
	require.Len(t, vs, 1)
	assert.Contains(t, vs[0].Detail, "answered by pod=new-1 version=")
	assert.Contains(t, vs[0].Detail, "opening its connection took 1.031s, the kernel sent its SYN 2 times (TCP_INFO): a packet of the TCP handshake was lost")
	syn.Requests[1200].Local, syn.Requests[1200].Remote = "192.0.2.2:41234", "10.96.0.20:80"
	syn.Requests[1200].Kernel = &tcptrace.Handshake{Retransmits: 2, OldAnswers: 2, PAWS: 2}
	vs = violations(t, gate.CheckLatency(gate.Check{Client: "c", Result: syn, Window: window}, gate.Policy{}), gate.Latency)
	require.Len(t, vs, 1, "a SYN answered by a TIME_WAIT is still a slow request: the gate fails, the report says why")
	assert.Contains(t, vs[0].Detail, "opening its connection (192.0.2.2:41234 to 10.96.0.20:80) took 1.031s, the kernel sent its SYN 2 times (TCP_INFO): the kernel sent its SYN again 2 time(s), each after a TIME_WAIT of an older connection")
	syn.Requests[1200].Kernel = &tcptrace.Handshake{Retransmits: 1}
	vs = violations(t, gate.CheckLatency(gate.Check{Client: "c", Result: syn, Window: window}, gate.Policy{}), gate.Latency)
	require.Len(t, vs, 1)
	assert.Contains(t, vs[0].Detail, "the rest were lost with no answer")
	syn.Requests[1200].Kernel = nil
	syn.Requests[1200].SynRetransmits = 0
	vs = violations(t, gate.CheckLatency(gate.Check{Client: "c", Result: syn, Window: window}, gate.Policy{}), gate.Latency)
	require.Len(t, vs, 1)
	assert.Contains(t, vs[0].Detail, "took 1.031s with no SYN retransmitted", "a slow connect without a retransmission is not called a lost SYN")
	syn.Requests[1200].SynRetransmits = -1
	vs = violations(t, gate.CheckLatency(gate.Check{Client: "c", Result: syn, Window: window}, gate.Policy{}), gate.Latency)
	require.Len(t, vs, 1)
	assert.Contains(t, vs[0].Detail, "TCP_INFO could not be read")
	assert.Empty(t, gate.CheckLatency(gate.Check{Result: run(nil), Window: window}, gate.Policy{}))

	// What the machine said at that second comes with the failure: CPU pressure and throttling.
	assert.Contains(t, vs[0].Detail, "CPU pressure not measured at that second")
	syn.CPUPressure, syn.Throttled = make([]int32, 20), make([]int32, 20)
	syn.CPUPressure[12], syn.Throttled[12] = 830, 120
	vs = violations(t, gate.CheckLatency(gate.Check{Client: "c", Result: syn, Window: window}, gate.Policy{}), gate.Latency)
	require.Len(t, vs, 1)
	assert.Contains(t, vs[0].Detail, "in that second some task on the machine waited 830ms for a CPU, and the client's cgroup was throttled by its CPU limit for 120ms")
	dropped := run(dropAt(900))
	dropped.Samples = []load.FailureSample{{At: t0.Add(9 * time.Second), Kind: load.KindRefused, Error: "connect: connection refused"}}
	dropped.CPUPressure, dropped.Throttled = make([]int32, 20), make([]int32, 20)
	dropped.CPUPressure[9] = 410
	vs = violations(t, gate.CheckNoFailures(gate.Check{Client: "c", Result: dropped, Window: window}), gate.Failures)
	require.Len(t, vs, 1)
	assert.Contains(t, vs[0].Detail, "refused connect: connection refused; in that second some task on the machine waited 410ms for a CPU")
}

func TestSensitivity(t *testing.T) {
	drops := func(at []int, kind string) *load.Result {
		return run(func(i int, q *load.Request) {
			for _, a := range at {
				if i == a {
					q.Kind, q.Backend = kind, -1
				}
			}
		})
	}
	tests := []struct {
		name string
		res  *load.Result
		want int
	}{
		// The window (5 s to 15 s, plus a 2 s settle time) holds requests 500 to 1699: 1200 sent inside,
		// so a control needs max(10, 1% of 1200) = 12 failures of the expected kinds there.
		{"12 refused inside the window", drops(span(800, 12), load.KindRefused), 0},
		{"12 inside, within the settle time after the last mark", drops(span(1600, 12), load.KindReset), 0},
		{"a control with one failure", drops([]int{800}, load.KindRefused), 1},
		{"11 inside: fewer than 1% of the requests inside", drops(span(800, 11), load.KindRefused), 1},
		{"no failure at all", run(nil), 1},
		{"a drop outside the window only", drops(span(100, 12), load.KindRefused), 2},
		{"12 inside and 1 outside (92% inside)", drops(append(span(800, 12), 100), load.KindRefused), 0},
		{"12 inside and 5 outside: the failures are not the disruption's", drops(append(span(800, 12), span(100, 5)...), load.KindRefused), 1},
		{"only a kind not expected", drops(span(800, 12), load.Kind5xx), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := gate.Check{Client: "c", Result: tt.res, Window: window}
			errs := gate.CheckSensitivity(c, gate.Policy{SettleAfter: 2 * time.Second}, load.KindRefused, load.KindReset, load.KindEOF)
			assert.Len(t, violations(t, errs, gate.Sensitivity), tt.want, "%v", errs)
		})
	}
}

func TestReplaced(t *testing.T) {
	before := gate.Pods{"u1": {Name: "svc-a-1", Hash: "a"}, "u2": {Name: "svc-a-2", Hash: "a"}}
	after := gate.Pods{"u3": {Name: "svc-b-1", Hash: "b"}, "u4": {Name: "svc-b-2", Hash: "b"}}
	tests := []struct {
		name string
		r    gate.Replacement
		want int
	}{
		{"every pod replaced", gate.Replacement{Before: before, After: after, OldReplicaSets: map[string][2]int32{"a": {0, 0}}}, 0},
		{"a no-op upgrade", gate.Replacement{Before: before, After: before, OldReplicaSets: map[string][2]int32{"a": {2, 2}}}, 5},
		{"the old ReplicaSet keeps a pod", gate.Replacement{Before: before, After: after, OldReplicaSets: map[string][2]int32{"a": {0, 1}}}, 1},
		{"no pods listed", gate.Replacement{Before: before}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := gate.CheckReplaced("rollout 1", tt.r)
			assert.Len(t, violations(t, errs, gate.Reality), tt.want, "%v", errs)
		})
	}
	c := gate.Check{Client: "c", Window: window}
	assert.Empty(t, gate.CheckBackends(c, before, after, map[string]int{"svc-a-1": 3, "svc-b-2": 1}, map[string]int{"svc-a-1": 3, "svc-b-2": 1}))
	assert.Len(t, violations(t, gate.CheckBackends(c, before, after, map[string]int{"svc-a-1": 3}, map[string]int{"svc-a-1": 3}), gate.Reality), 1, "only old pods answered")
	assert.Len(t, violations(t, gate.CheckBackends(c, before, after, nil, nil), gate.Reality), 2, "nothing answered")
	assert.Len(t, violations(t, gate.CheckBackends(c, before, before, map[string]int{"svc-a-1": 3, "svc-a-2": 3}, map[string]int{"svc-a-1": 3, "svc-a-2": 3}), gate.Reality), 1, "a no-op upgrade: no pod left and no pod came")
	assert.Empty(t, gate.CheckBackends(c, before, after, map[string]int{"svc-a-1": 3}, map[string]int{"svc-b-2": 1}), "each in its own window")
	assert.Len(t, violations(t, gate.CheckBackends(c, before, after, map[string]int{"svc-b-2": 1}, map[string]int{"svc-a-1": 3, "svc-b-2": 1}), gate.Reality), 1, "an old pod answered only outside the old pods' window")
}

func TestJoin(t *testing.T) {
	assert.NoError(t, gate.Join(nil, nil))
	err := gate.Join(gate.CheckNoFailures(gate.Check{Client: "c", Result: run(func(i int, q *load.Request) {
		if i == 3 {
			q.Kind = load.KindEOF
		}
	})}))
	var v *gate.Violation
	require.ErrorAs(t, err, &v)
	assert.Equal(t, "c", v.Client)
}

func TestEvicted(t *testing.T) {
	before := gate.Pods{"u1": {Name: "a-1", Hash: "a"}, "u2": {Name: "a-2", Hash: "a"}}
	for _, tc := range []struct {
		name    string
		after   gate.Pods
		evicted []string
		want    []string
	}{
		{"replaced", gate.Pods{"u2": {Name: "a-2", Hash: "a"}, "u3": {Name: "a-3", Hash: "a"}}, []string{"a-1"}, nil},
		{"still running", before, []string{"a-1"}, []string{"reality: drain: evicted pod a-1 is still running"}},
		{"not replaced", gate.Pods{"u2": {Name: "a-2", Hash: "a"}}, []string{"a-1"}, []string{"reality: drain: 1 pods after, 2 before: not every evicted pod was replaced"}},
		{"nothing evicted", before, nil, []string{"reality: drain: no pod was evicted"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, err := range gate.CheckEvicted("drain", gate.Replacement{Before: before, After: tc.after}, tc.evicted) {
				got = append(got, err.Error())
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

// span is n consecutive request indexes from i.
func span(i, n int) []int {
	out := make([]int, n)
	for k := range out {
		out[k] = i + k
	}
	return out
}
