package disrupt

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/go-service/go-service/gate"
	"github.com/go-service/go-service/load"
	"github.com/go-service/go-service/tcptrace"
)

func objects(svcIP string, sel *metav1.LabelSelector) []runtime.Object {
	return []runtime.Object{
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "shop"}, Spec: corev1.ServiceSpec{ClusterIP: svcIP, Ports: []corev1.ServicePort{{Port: 80}}}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "shop"}, Spec: appsv1.DeploymentSpec{Selector: sel}},
	}
}

func TestNewTrafficResolvesTheTarget(t *testing.T) {
	labels := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}}
	proxy := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system"},
		Data: map[string]string{"config.conf": "mode: iptables\niptables:\n  minSyncPeriod: 3s\n"}}
	ok := Target{Namespace: "shop", Deployment: "api", Service: "api"}
	for _, tc := range []struct {
		name    string
		target  Target
		objs    []runtime.Object
		lag     time.Duration // Options.ProxyMinSync given
		wantErr string
		wantLag time.Duration
	}{
		{"resolved, lag read from kube-proxy's ConfigMap", ok, append(objects("10.96.0.10", labels), proxy), 0, "", 3 * time.Second},
		{"lag not published: kube-proxy's default", ok, objects("10.96.0.10", labels), 0, "", time.Second},
		{"lag given", ok, append(objects("10.96.0.10", labels), proxy), 5 * time.Second, "", 5 * time.Second},
		{"no namespace", Target{Deployment: "api", Service: "api"}, nil, 0, "names no namespace", 0},
		{"no Deployment", Target{Namespace: "shop", Service: "api"}, nil, 0, "Target.Deployment is required", 0},
		{"no Service", Target{Namespace: "shop", Deployment: "api"}, nil, 0, "Target.Service is required", 0},
		{"Service missing", ok, nil, 0, `the target's Service: services "api" not found`, 0},
		{"headless Service", ok, objects("None", labels), 0, "has no cluster IP", 0},
		{"expression selector", ok, objects("10.96.0.10", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Exists"}}}), 0, "only a matchLabels selector", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.target.Client = fake.NewClientset(tc.objs...)
			o := Options{ProxyMinSync: tc.lag}
			tr, err := newTraffic(t, tc.target, &o)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "http://10.96.0.10:80/", tr.url)
			assert.Equal(t, map[string]string{"app": "api"}, tr.selector)
			assert.Equal(t, tc.wantLag, tr.o.ProxyMinSync)
			assert.Equal(t, tc.wantLag+time.Second, tr.o.Policy().SettleAfter, "the load must outlast the lag")
		})
	}
}

func TestRolledOut(t *testing.T) {
	three := int32(3)
	d := func(gen, observed int64, updated, ready, total int32) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "shop", Generation: gen},
			Spec:       appsv1.DeploymentSpec{Replicas: &three, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}}},
			Status: appsv1.DeploymentStatus{ObservedGeneration: observed, UpdatedReplicas: updated, ReadyReplicas: ready,
				AvailableReplicas: ready, Replicas: total},
		}
	}
	pod := func(name string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: map[string]string{"app": "api"}}}
	}
	for _, tc := range []struct {
		name    string
		objs    []runtime.Object
		replica int32
		want    string // "" when rolled out
	}{
		{"done", []runtime.Object{d(2, 2, 3, 3, 3), pod("a"), pod("b"), pod("c")}, 3, ""},
		{"done, as many as the Deployment asks for (an HPA's)", []runtime.Object{d(2, 2, 3, 3, 3), pod("a"), pod("b"), pod("c")}, AnyReplicas, ""},
		{"a Deployment that ignored the count the test set", []runtime.Object{d(2, 2, 3, 3, 3), pod("a"), pod("b"), pod("c")}, 2, "the Deployment asks for 3 replicas, 2 expected"},
		{"not observed", []runtime.Object{d(2, 1, 3, 3, 3)}, 3, "generation 2 not observed yet (1)"},
		{"surge pod still up", []runtime.Object{d(2, 2, 3, 3, 4)}, 3, "replicas: want 3, updated 3 ready 3 available 3 total 4"},
		{"old pod terminating", []runtime.Object{d(2, 2, 3, 3, 3), pod("a"), pod("b"), pod("c"), pod("old")}, 3, "4 pods exist, 3 wanted (old pods still terminating)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := RolledOut(context.Background(), fake.NewClientset(tc.objs...), "shop", "api", tc.replica)
			if tc.want == "" {
				assert.True(t, ok)
				assert.NoError(t, err)
				return
			}
			assert.False(t, ok)
			assert.EqualError(t, err, tc.want)
		})
	}
}

// baseline is a declared change that changed nothing: two pods before and after, both ready throughout.
var baseline = Change{Kind: KindNone, What: "baseline", MinReady: 2, Replacement: gate.Replacement{
	Before: podsOf("api-a-1:a", "api-a-2:a"), After: podsOf("api-a-1:a", "api-a-2:a")}}

// run is a client's run of 2000 requests at 100/s with the given failures inside a disruption from 5s
// to 15s.
func run(failed int) *Run {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	res := &load.Result{Config: load.Config{Name: "host GET new-conn", Rate: 100}, Start: start, End: start.Add(20 * time.Second),
		ByKind: map[string]int{}, Backends: map[string]int{}}
	for i := range 2000 {
		q := load.Request{SentMicros: int64(i) * 10000, LatencyMicros: 2000}
		if i >= 1000 && i < 1000+failed {
			q.Kind = load.KindRefused
		}
		res.Requests = append(res.Requests, q)
	}
	res.Sent = 2000
	res.Failed = failed
	if failed > 0 {
		res.ByKind[load.KindRefused] = failed
	}
	return &Run{Scenario: "rollout", Client: res.Name, Load: res,
		Marks:   []Mark{{At: start.Add(5 * time.Second), What: "rollout"}, {At: start.Add(15 * time.Second), What: "rollout done"}},
		Changes: []Change{baseline}}
}

func TestReports(t *testing.T) {
	dir := t.TempDir()
	rp := NewReports(dir)
	runs := []*Run{run(0), run(3)}
	runs[1].Scenario = "rollout b"
	Evaluate(runs, ZeroFailures, gate.Policy{})
	for _, r := range runs {
		require.NoError(t, rp.Record(r))
	}
	assert.True(t, runs[0].Passed, "%v", runs[0].Violations)
	assert.False(t, runs[1].Passed)
	for _, f := range []string{"rollout-host-get-new-conn.json", "rollout-host-get-new-conn.html", "rollout-b-host-get-new-conn.html"} {
		_, err := os.Stat(filepath.Join(dir, f))
		assert.NoError(t, err, f)
	}
	sum := rp.Summary()
	lines := strings.Split(strings.TrimSpace(sum), "\n")
	assert.Contains(t, lines[0], "2 load run(s); reports in "+dir)
	assert.Contains(t, sum, "PASS (expect zero failures)")
	assert.Contains(t, sum, "FAIL (expect zero failures)")
	assert.Equal(t, "violations (1), each failed run followed by what its control client says of it (WHY):", lines[len(lines)-3], "the violations come last")
	assert.Equal(t, "  rollout b [host GET new-conn]: failures (host GET new-conn): 3 of 2000 requests failed (refused=3)", lines[len(lines)-2])
	assert.Equal(t, "  rollout b [host GET new-conn]: WHY: no control client ran (Options.ControlURL unset): a stall of the machine cannot be told from a drop", lines[len(lines)-1])
}

func TestBackendsCheckedOnlyWhenNamed(t *testing.T) {
	replaced := []Change{{Kind: KindRollout, What: "rollout", Replacement: gate.Replacement{
		Before: gate.Pods{"u1": {Name: "api-a-1", Hash: "a"}}, After: gate.Pods{"u2": {Name: "api-b-1", Hash: "b"}},
		OldReplicaSets: map[string][2]int32{"a": {0, 0}, "b": {1, 1}}}}}
	for _, tc := range []struct {
		name       string
		backend    string
		violations []string
		notes      int
	}{
		{"named, only the old pod answered", "pod=api-a-1 version=1", []string{"rollout: reality (host GET new-conn): no new pod (api-b-1) answered during the disruption; answered: api-a-1=1200"}, 0},
		{"named, both answered", "", nil, 0},
		{"not named", "hello, world", nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(0)
			r.Changes = replaced
			for i := range r.Load.Requests {
				r.Load.Requests[i].Backend = 0
				if tc.backend == "" && i >= 1000 {
					r.Load.Requests[i].Backend = 1
				}
			}
			r.Load.BackendNames = []string{tc.backend, "pod=api-b-1 version=2"}
			if tc.backend == "" {
				r.Load.BackendNames[0] = "pod=api-a-1 version=1"
			}
			Evaluate([]*Run{r}, ZeroFailures, gate.Policy{})
			assert.Equal(t, tc.violations, r.Violations)
			assert.Len(t, r.Notes, tc.notes)
		})
	}
}

// Each change is held to its own window: old and new pods must answer between its start and SettleAfter
// past its end, so the traffic of an earlier change cannot stand in for a later one. An evicted pod's
// answers count from SteadyBefore (3 s) before its eviction, not earlier. A keep-alive client is not held
// to it for an eviction, and its notes say why.
func TestBackendsPerChange(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return start.Add(time.Duration(s * float64(time.Second))) }
	pods := func(names ...string) gate.Pods {
		out := gate.Pods{}
		for _, n := range names {
			out["uid-"+n] = gate.Pod{Name: n, Hash: n[:5]}
		}
		return out
	}
	// Rollout 1 (5 s to 8 s) replaces api-a-1 by api-b-1; rollout 2 (10 s to 13 s) api-b-1 by api-c-1.
	first := Change{Kind: KindRollout, What: "rollout 1", From: at(5), To: at(8), Replacement: gate.Replacement{Before: pods("api-a-1"), After: pods("api-b-1")}}
	eviction := Change{Kind: KindEviction, What: "eviction", From: at(5), To: at(8), Evicted: []string{"api-a-1"}, Replacement: gate.Replacement{Before: pods("api-a-1"), After: pods("api-b-1")}}
	second := Change{Kind: KindRollout, What: "rollout 2", From: at(10), To: at(13), Replacement: gate.Replacement{Before: pods("api-b-1"), After: pods("api-c-1")}}
	answers := func(r *Run, who func(sec float64) int) {
		r.Load.BackendNames = []string{"pod=api-a-1", "pod=api-b-1", "pod=api-c-1"}
		for i := range r.Load.Requests {
			r.Load.Requests[i].Backend = who(float64(r.Load.Requests[i].SentMicros) / 1e6)
		}
	}
	for _, tc := range []struct {
		name       string
		who        func(sec float64) int
		keepAlive  bool
		replaced   []Change
		violations int
		notes      int
	}{
		{"each rollout's pods answered in its window", func(s float64) int {
			switch {
			case s < 6:
				return 0
			case s < 11:
				return 1
			}
			return 2
		}, false, []Change{first, second}, 0, 0},
		{"rollout 2's new pod answered only after its window", func(s float64) int {
			switch {
			case s < 6:
				return 0
			case s < 16:
				return 1
			}
			return 2
		}, false, []Change{first, second}, 1, 0},
		{"rollout 2's old pod answered only before its window", func(s float64) int {
			switch {
			case s < 6:
				return 0
			case s < 9:
				return 1
			}
			return 2
		}, false, []Change{first, second}, 1, 0},
		{"a keep-alive client and an eviction: not checked, and said", func(s float64) int { return 0 }, true,
			[]Change{{Kind: KindEviction, What: "eviction", From: at(5), To: at(8), Evicted: []string{"api-a-1"}, Replacement: gate.Replacement{Before: pods("api-a-1"), After: pods("api-b-1")}}}, 0, 1},
		{"an eviction: the evicted pod answered just before it, the new pod during it", func(s float64) int {
			if s < 4.9 {
				return 0
			}
			return 1
		}, false, []Change{eviction}, 0, 0},
		{"an eviction: the evicted pod answered only long before it", func(s float64) int {
			if s < 1.5 {
				return 0
			}
			return 1
		}, false, []Change{eviction}, 1, 0},
		{"an eviction: the evicted pod never answered", func(s float64) int { return 1 }, false, []Change{eviction}, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(0)
			r.Load.KeepAlive = tc.keepAlive
			r.Changes = tc.replaced
			answers(r, tc.who)
			errs := checkBackendsPerChange(r, gate.Check{Client: r.Client, Result: r.Load, Window: gate.Window{From: at(5), To: at(13)}}, gate.Policy{})
			assert.Len(t, errs, tc.violations, "%v", errs)
			assert.Len(t, r.Notes, tc.notes, "%v", r.Notes)
		})
	}
}

func TestNewTrafficTargetsTheServicePort(t *testing.T) {
	labels := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}}
	objs := objects("10.96.0.10", labels)
	objs[0].(*corev1.Service).Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 8080}, {Name: "metrics", Port: 9090}}
	for _, tc := range []struct {
		port int32
		want string
	}{{0, "http://10.96.0.10:8080/"}, {9090, "http://10.96.0.10:9090/"}} {
		o := Options{ProxyMinSync: time.Second}
		tr, err := newTraffic(t, Target{Client: fake.NewClientset(objs...), Namespace: "shop", Deployment: "api", Service: "api", Port: tc.port}, &o)
		require.NoError(t, err)
		assert.Equal(t, tc.want, tr.url)
	}
}

func TestZeroFailuresOnSomeClients(t *testing.T) {
	newConn, keepAlive := run(0), run(1)
	keepAlive.Client = "host POST keep-alive"
	Evaluate([]*Run{newConn, keepAlive}, ZeroFailures.On("new-conn"), gate.Policy{})
	assert.True(t, newConn.Passed, "%v", newConn.Violations)
	assert.Equal(t, "zero failures", newConn.Expect)
	assert.True(t, keepAlive.Passed, "reported, not gated: %v", keepAlive.Violations)
	assert.Equal(t, "reported", keepAlive.Expect)

	failing := run(2)
	Evaluate([]*Run{failing}, ZeroFailures.On("new-conn"), gate.Policy{})
	assert.False(t, failing.Passed, "a new-conn client that fails is gated")
}

// timeouts makes the requests sent in [from, to) seconds of a run time out.
func timeouts(r *load.Result, from, to float64) *load.Result {
	for i := range r.Requests {
		if at := float64(r.Requests[i].SentMicros) / 1e6; at >= from && at < to {
			r.Requests[i].Kind, r.Requests[i].Backend = load.KindTimeout, -1
		}
	}
	return r
}

// controlRun is a control client's run (20/s over the same 20 s as run's), edited by edit.
func controlRun(edit func(*load.Result) *load.Result) *load.Result {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &load.Result{Config: load.Config{Name: "host control GET new-conn", Rate: 20, Control: true}, Start: start, End: start.Add(20 * time.Second),
		ByKind: map[string]int{}, Backends: map[string]int{}}
	for i := range 400 {
		c.Requests = append(c.Requests, load.Request{SentMicros: int64(i) * 50000, LatencyMicros: 2000})
	}
	c.Sent = 400
	if edit != nil {
		c = edit(c)
	}
	return c
}

// A failed run is noise only when its control client, from the same place, was in trouble in every
// second the run was (within a second), and the run failed in no way a stall cannot cause; a broken
// control, a clean one, one in trouble at another moment, a refused connection, a reality violation
// or no control each leave the failure the change's.
func TestNoiseNeedsTheControlAtTheSameMoment(t *testing.T) {
	stall := func(r *load.Result, from, to float64) *load.Result { // nothing sent in [from, to): made up at to
		for i := range r.Requests {
			if at := float64(r.Requests[i].SentMicros) / 1e6; at >= from && at < to {
				r.Requests[i].SentMicros = int64(to * 1e6)
			}
		}
		return r
	}
	for _, tc := range []struct {
		name    string
		target  func(*Run)
		control *load.Result
		noise   bool
		why     string
	}{
		{"a passing run needs no explanation", func(*Run) {}, controlRun(nil), false, ""},
		{"timeouts while the control timed out too: noise", func(r *Run) { timeouts(r.Load, 10, 10.05) },
			controlRun(func(c *load.Result) *load.Result { return timeouts(c, 10.2, 10.3) }), true, "the control client (host control GET new-conn, a Service nothing disrupts) was too within a second"},
		{"timeouts while the control was slow a second later: noise", func(r *Run) { timeouts(r.Load, 10, 10.05) },
			controlRun(func(c *load.Result) *load.Result { c.Requests[220].LatencyMicros = 1500000; return c }), true, "the control a request of 1.5s"},
		{"timeouts while the control ran clean: the change's", func(r *Run) { timeouts(r.Load, 10, 10.05) }, controlRun(nil), false, "had no trouble within a second: the change's"},
		{"timeouts while the control timed out at another moment: the change's", func(r *Run) { timeouts(r.Load, 10, 10.05) },
			controlRun(func(c *load.Result) *load.Result { return timeouts(c, 3, 3.1) }), false, "had no trouble within a second"},
		{"refused while the control timed out too: the change's", func(r *Run) {
			r.Load.Requests[1000].Kind, r.Load.Requests[1000].Backend = load.KindRefused, -1
		}, controlRun(func(c *load.Result) *load.Result { return timeouts(c, 10, 10.1) }), false, "ways a stall does not cause"},
		{"a stall while the control stalled too: noise", func(r *Run) { stall(r.Load, 8, 10) },
			controlRun(func(c *load.Result) *load.Result { return stall(c, 8, 10) }), true, "at 00:00:08: 0 sent, the control 0 sent"},
		{"a stall while the control ran: the change's", func(r *Run) { stall(r.Load, 8, 10) }, controlRun(nil), false, "had no trouble within a second"},
		{"a broken control vouches for nothing", func(r *Run) { timeouts(r.Load, 10, 10.05) },
			controlRun(func(c *load.Result) *load.Result { return timeouts(c, 0, 20) }), false, "is broken: 400 of its 400 requests failed"},
		{"a pod that must never serve answered, while the control timed out: the change's", func(r *Run) {
			timeouts(r.Load, 10, 10.05)
			r.Changes = []Change{{Kind: KindHelmTest, What: "helm test", Pod: "api-test", PodPhase: "Succeeded", MinReady: 2, Replacement: baseline.Replacement}}
			r.Load.BackendNames = []string{"pod=api-a-1", "pod=api-test"}
			r.Load.Requests[1500].Backend = 1
		}, controlRun(func(c *load.Result) *load.Result { return timeouts(c, 10, 10.1) }), false, "a violation no stall of the machine causes"},
		{"no control", func(r *Run) { timeouts(r.Load, 10, 10.05) }, nil, false, "no control client ran"},
		{"a host client's slow connect whose SYNs the kernel saw answered by a TIME_WAIT, the control clean: noise", func(r *Run) { slowConnect(r.Load, 1000, tw) },
			controlRun(nil), true, "at 00:00:10: a request of 1.04s: opening its connection took 1.037s, the kernel sent its SYN again 2 time(s), each after a TIME_WAIT"},
		{"the same for an in-cluster client (no SNAT on its path): the change's", func(r *Run) {
			r.Client = "in-cluster GET new-conn"
			slowConnect(r.Load, 1000, tw)
		}, controlRun(nil), false, "had no trouble within a second: the change's"},
		{"one fast retry after a TIME_WAIT's answer, then 1 s lost elsewhere (a SYN-ACK): the change's", func(r *Run) {
			slowConnect(r.Load, 1000, &tcptrace.Handshake{Retransmits: 1, OldAnswers: 1, PAWS: 1, Waited: 12 * time.Millisecond})
			r.Load.Requests[1000].SynRetransmits = 1
		}, controlRun(nil), false, "had no trouble within a second: the change's"},
		{"answered, but not right after a PAWS drop: the change's", func(r *Run) { slowConnect(r.Load, 1000, &tcptrace.Handshake{Retransmits: 2, OldAnswers: 2, PAWS: 1}) },
			controlRun(nil), false, "had no trouble within a second: the change's"},
		{"a slow connect with a SYN lost with no answer, the control clean: the change's", func(r *Run) { slowConnect(r.Load, 1000, &tcptrace.Handshake{Retransmits: 2, OldAnswers: 1, PAWS: 1}) },
			controlRun(nil), false, "had no trouble within a second: the change's"},
		{"fewer retransmissions in the kernel's record than TCP_INFO counted: the change's", func(r *Run) { slowConnect(r.Load, 1000, &tcptrace.Handshake{Retransmits: 1, OldAnswers: 1, PAWS: 1}) },
			controlRun(nil), false, "had no trouble within a second: the change's"},
		{"a slow connect the kernel did not see, the control clean: the change's", func(r *Run) { slowConnect(r.Load, 1000, nil) },
			controlRun(nil), false, "had no trouble within a second: the change's"},
		{"a TIME_WAIT's second, and slow after the handshake too: the change's", func(r *Run) {
			slowConnect(r.Load, 1000, tw)
			r.Load.Requests[1000].LatencyMicros = 2100000
		}, controlRun(nil), false, "a request of 2.1s while the control client"},
		{"a TIME_WAIT's second, and a timeout in the same second: the change's", func(r *Run) {
			slowConnect(r.Load, 1000, tw)
			r.Load.Requests[1001].Kind, r.Load.Requests[1001].Backend = load.KindTimeout, -1
		}, controlRun(nil), false, "a timeout while the control client"},
		{"a timeout while only the control's connect met a TIME_WAIT: the change's", func(r *Run) { timeouts(r.Load, 10, 10.05) },
			controlRun(func(c *load.Result) *load.Result {
				q := &c.Requests[200]
				q.LatencyMicros, q.ConnectMicros, q.SynRetransmits, q.Kernel = 1040000, 1037000, 2, tw
				return c
			}), false, "had no trouble within a second: the change's"},
		{"a timeout while the control was slow with no TIME_WAIT in its connect: noise", func(r *Run) { timeouts(r.Load, 10, 10.05) },
			controlRun(func(c *load.Result) *load.Result {
				q := &c.Requests[200]
				q.LatencyMicros, q.ConnectMicros, q.SynRetransmits, q.Kernel = 1040000, 1037000, 1, &tcptrace.Handshake{Retransmits: 1}
				return c
			}), true, "the control a request of 1.04s"},
		{"a TIME_WAIT, but a refused connection too: the change's", func(r *Run) {
			slowConnect(r.Load, 1000, tw)
			r.Load.Requests[1500].Kind, r.Load.Requests[1500].Backend = load.KindRefused, -1
		}, controlRun(nil), false, "ways a stall does not cause"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(0)
			for i := range r.Load.Requests {
				r.Load.Requests[i].Backend = -1 // answers name no pod: the backends are not what this is about
			}
			tc.target(r)
			r.Control = tc.control
			Evaluate([]*Run{r}, ZeroFailures, gate.Policy{})
			assert.Equal(t, tc.noise, len(r.Noise) > 0, "noise: %v; why: %s; violations: %v", r.Noise, r.Why, r.Violations)
			if tc.why == "" {
				assert.True(t, r.Passed, "%v", r.Violations)
				assert.Empty(t, r.Why)
				return
			}
			assert.False(t, r.Passed)
			assert.Contains(t, r.Why, tc.why)
		})
	}
}

// tw is a handshake whose two retransmitted SYNs each followed an answer of an older connection.
var tw = &tcptrace.Handshake{Retransmits: 2, OldAnswers: 2, PAWS: 2, Waited: 1012 * time.Millisecond}

// slowConnect makes request i take 1.04 s, 1.037 s of it a connect with 2 SYNs retransmitted, of which
// the kernel recorded k.
func slowConnect(r *load.Result, i int, k *tcptrace.Handshake) {
	q := &r.Requests[i]
	q.LatencyMicros, q.ConnectMicros, q.SynRetransmits, q.Local, q.Remote, q.Kernel = 1040000, 1037000, 2, "192.0.2.2:40000", "10.96.0.20:80", k
}

// recorder is a testing.TB that keeps what a gate said instead of failing the test.
type recorder struct {
	testing.TB
	errors, logs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recorder) Logf(format string, args ...any) {
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

// A scenario whose failures its control clients shared is repeated, not passed: OnNoise is called and
// nothing fails the first attempt; a failure the control did not share, a change that failed its
// reality check, or a repeat without OnNoise fails as always.
func TestRepeatOnNoise(t *testing.T) {
	noisyControl := func() *load.Result {
		return controlRun(func(c *load.Result) *load.Result { return timeouts(c, 10, 10.1) })
	}
	cleanControl := func() *load.Result { return controlRun(nil) }
	for _, tc := range []struct {
		name     string
		control  *load.Result
		changes  []Change
		onNoise  bool
		repeated bool
		errors   int
	}{
		{"the control failed too: repeated", noisyControl(), []Change{baseline}, true, true, 0},
		{"the control failed too, on the repeat: fails", noisyControl(), []Change{baseline}, false, false, 1},
		{"the control ran clean: fails", cleanControl(), []Change{baseline}, true, false, 1},
		{"no control: fails", nil, []Change{baseline}, true, false, 1},
		{"the control failed too but a change failed its reality check: fails", noisyControl(), nil, true, false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(0)
			timeouts(r.Load, 10, 10.03)
			r.Control, r.Changes = tc.control, tc.changes
			rec := &recorder{TB: t}
			var why string
			var onNoise func(string)
			if tc.onNoise {
				onNoise = func(w string) { why = w }
			}
			NewReports(t.TempDir()).gate(rec, []*Run{r}, ZeroFailures, gate.Policy{}, onNoise)
			assert.Len(t, rec.errors, tc.errors, "%v", rec.errors)
			assert.Equal(t, tc.repeated, why != "", "repeated: %q", why)
			if tc.repeated {
				assert.Contains(t, why, "[host GET new-conn] at 00:00:10: a timeout, the control a timeout")
				assert.Contains(t, strings.Join(rec.logs, "\n"), "3 of 2000 requests failed", "the first attempt's violations are logged")
			}
		})
	}
}

// Each slow connect gets the kernel's record of its own connection while it connected; a fast one
// gets none.
func TestExplainHandshakes(t *testing.T) {
	r := run(0).Load
	slowConnect(r, 1000, nil)
	slowConnect(r, 1001, nil)
	r.Requests[1001].Local = "192.0.2.2:40001"
	at := r.SentAt(r.Requests[1000])
	mine := func(ms int, kind string) tcptrace.Event {
		return tcptrace.Event{At: at.Add(time.Duration(ms) * time.Millisecond), Kind: kind, Local: "192.0.2.2:40000", Remote: "10.96.0.20:80"}
	}
	events := []tcptrace.Event{
		{At: at.Add(-3 * time.Millisecond), Kind: tcptrace.PAWS}, mine(-2, tcptrace.Reset), // before it was sent: not its own
		{At: at.Add(2 * time.Millisecond), Kind: tcptrace.PAWS}, mine(3, tcptrace.Reset), mine(12, tcptrace.Retransmit),
		{At: at.Add(13 * time.Millisecond), Kind: tcptrace.PAWS}, mine(14, tcptrace.Reset), mine(1012, tcptrace.Retransmit),
	}
	all := func(from, to time.Time) []tcptrace.Event {
		var out []tcptrace.Event
		for _, e := range events {
			if !e.At.Before(from) && !e.At.After(to) {
				out = append(out, e)
			}
		}
		return out
	}
	explainHandshakes(all, []*load.Result{r})
	require.NotNil(t, r.Requests[1000].Kernel)
	assert.Equal(t, tcptrace.Handshake{Retransmits: 2, OldAnswers: 2, PAWS: 2, Waited: 1012 * time.Millisecond}, *r.Requests[1000].Kernel)
	require.NotNil(t, r.Requests[1001].Kernel)
	assert.Equal(t, tcptrace.Handshake{}, *r.Requests[1001].Kernel, "another connection's events are not its")
	assert.Nil(t, r.Requests[999].Kernel, "a fast connect is not looked up")
}

// A host client's slow request whose SYNs the kernel saw answered by a TIME_WAIT repeats the scenario
// once, with the control clean; on the repeat (no OnNoise) it fails as any slow request does.
func TestRepeatOnTimeWait(t *testing.T) {
	for _, repeat := range []bool{false, true} {
		r := run(0)
		slowConnect(r.Load, 1000, tw)
		r.Control, r.Changes = controlRun(nil), []Change{baseline}
		rec := &recorder{TB: t}
		var why string
		onNoise := func(w string) { why = w }
		if repeat {
			onNoise = nil
		}
		NewReports(t.TempDir()).gate(rec, []*Run{r}, ZeroFailures, gate.Policy{}, onNoise)
		if repeat {
			require.Len(t, rec.errors, 1, "%v", rec.errors)
			assert.Contains(t, rec.errors[0], "1 request(s) slower than 1s")
			continue
		}
		assert.Empty(t, rec.errors)
		assert.Contains(t, why, "[host GET new-conn] at 00:00:10: a request of 1.04s")
		assert.Contains(t, strings.Join(rec.logs, "\n"), "1 request(s) slower than 1s", "the first attempt's violation is logged")
	}
}

// Loads that overlapped in time name each other in their runs' reports; one that ended when another
// started does not; one still running is named by its test and namespace.
func TestReportsBeside(t *testing.T) {
	rp := NewReports(t.TempDir())
	at := func(s int) time.Time { return time.Unix(1000+int64(s), 0) }
	a := &loadSpan{ns: "a", scenario: "A", from: at(0), to: at(10)}
	b := &loadSpan{ns: "b", scenario: "B", from: at(5), to: at(20)}
	c := &loadSpan{ns: "c", scenario: "C", from: at(20), to: at(30)}
	d := &loadSpan{ns: "d", test: "TestD", from: at(25)}
	rp.loads = []*loadSpan{a, b, c, d}
	for _, tc := range []struct {
		s    *loadSpan
		want []string
	}{
		{a, []string{"B"}},
		{b, []string{"A"}},
		{c, []string{"TestD's load in namespace d (still running)"}},
		{d, []string{"C"}},
	} {
		t.Run(tc.s.ns, func(t *testing.T) { assert.Equal(t, tc.want, rp.beside(tc.s)) })
	}
	rp.finish(d, "D")
	assert.Equal(t, []string{"D"}, rp.beside(c), "a finished load is named by its scenario")
	first := d.to
	rp.finish(d, "")
	assert.Equal(t, first, d.to, "a load's end is recorded once")
	assert.Equal(t, "D", d.scenario)
}

// The kernel's summary counts every PAWS refusal on the machine, and apart those the clients' own
// sockets reset: right after the drop, an older connection's answer to a connect to the address a
// client sends to (a ClusterIP's port 80 here), not to another (a kubelet probe's connect to a pod), and
// not a reset with no drop before it.
func TestKernelSummary(t *testing.T) {
	start := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	res := &load.Result{Config: load.Config{URL: "http://10.96.0.20/"}, Start: start, End: start.Add(time.Minute)}
	grpc := &load.Result{Config: load.Config{URL: "10.96.0.21:9090", GRPC: load.GRPCPickFirst}, Start: start, End: start.Add(time.Minute)}
	at := func(s int) time.Time { return start.Add(time.Duration(s) * time.Second) }
	events := []tcptrace.Event{
		{At: at(1), Kind: tcptrace.PAWS}, {At: at(1), Kind: tcptrace.Reset, Local: "192.0.2.2:40000", Remote: "10.96.0.20:80"},
		{At: at(2), Kind: tcptrace.PAWS}, {At: at(2), Kind: tcptrace.Reset, Local: "10.244.0.1:51000", Remote: "10.244.1.5:8080"},
		{At: at(3), Kind: tcptrace.PAWS}, {At: at(3), Kind: tcptrace.Reset, Local: "192.0.2.2:40001", Remote: "10.96.0.21:9090"},
		{At: at(4), Kind: tcptrace.Retransmit, Local: "192.0.2.2:40001", Remote: "10.96.0.21:9090"},
		{At: at(5), Kind: tcptrace.Reset, Local: "192.0.2.2:40002", Remote: "10.96.0.20:80"}, // no PAWS drop before it: not a TIME_WAIT's answer
		{At: at(61), Kind: tcptrace.PAWS}, // after the load: not counted
	}
	var asked [2]time.Time
	got := kernelSummary(func(from, to time.Time) []tcptrace.Event {
		asked = [2]time.Time{from, to}
		var out []tcptrace.Event
		for _, e := range events {
			if !e.At.Before(from) && !e.At.After(to) {
				out = append(out, e)
			}
		}
		return out
	}, []*load.Result{res, grpc})
	assert.Equal(t, [2]time.Time{start, start.Add(time.Minute)}, asked, "the load's span")
	assert.Contains(t, got, "3 SYN(s) refused by a TIME_WAIT for PAWS (TCP_RFC7323_TW_PAWS) on the whole machine, 2 of them the clients'")
	assert.Contains(t, got, "and 1 SYN(s) sent again")
}

// A run's figures name the busiest second of the disruption and, where the client sampled them, the
// processes that used the most CPU in it; the run's page shows both.
func TestFiguresNameTheBusiestSecond(t *testing.T) {
	r := run(0)
	r.Load.CPUPressure = make([]int32, 20)
	r.Load.Busiest = make([][]load.ProcCPU, 20)
	r.Load.CPUPressure[3], r.Load.CPUPressure[9] = 990, 700 // second 3 is before the disruption (5 s to 15 s)
	r.Load.Busiest[9] = []load.ProcCPU{{Name: "hk kube-proxy", MS: 420}, {Name: "runc", MS: 200}}
	r.Figures()
	assert.Equal(t, 700*time.Millisecond, r.CPUWait)
	assert.Equal(t, "busiest: hk kube-proxy 420 ms, runc 200 ms", r.CPUBusiest)
	r.Load.Busiest = nil
	r.Figures()
	assert.Empty(t, r.CPUBusiest, "not sampled: not named")
}
