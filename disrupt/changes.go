package disrupt

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/go-service/go-service/cluster"
	"github.com/go-service/go-service/gate"
)

// Kind is what a declared change does to the target. Every load run declares at least one change, and
// each kind has its own reality check (Change.Check): a run that only marked moments proves nothing.
type Kind string

const (
	// KindRollout replaces every pod by pods of a new template (Rollout, Upgrade).
	KindRollout Kind = "rollout"
	// KindEviction removes named pods without changing the template (EvictOne, EvictFrom).
	KindEviction Kind = "eviction"
	// KindScale changes the replica count: the Deployment and the Service's ready endpoints reach it,
	// the removed pods are gone, no pod is replaced, and ready endpoints never fall below it (Scale).
	KindScale Kind = "scale"
	// KindBadRelease is a release whose pods never become ready, then a rollback: its pods were never
	// ready endpoints nor answered, the old pods kept serving, the old template is back (BadRelease).
	KindBadRelease Kind = "bad release"
	// KindHelmTest runs a test pod: it succeeded, was never an endpoint nor answered, and the release's
	// pods were untouched (HelmTest).
	KindHelmTest Kind = "helm test"
	// KindScaleHeld is a change that must keep the scale (turning autoscaling on): ready endpoints never
	// below the count before it (ScaleHeld).
	KindScaleHeld Kind = "scale held"
	// KindNone is a declared baseline: the same pods before and after, none unready (NoChange).
	KindNone Kind = "no change"
)

// Change is one declared change of a run: what it was, its window, and what was observed of it for the
// reality gate.
type Change struct {
	Kind        Kind             `json:"kind"`
	What        string           `json:"what"`
	Replacement gate.Replacement `json:"replacement"`
	// From and To are when the change started and when it was done (its marks): the window in which its
	// old and new pods must have answered.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Evicted names the pods a drain or an eviction removed (the template did not change).
	Evicted []string `json:"evicted,omitempty"`
	// Replicas is the count a scale must reach, or the ready endpoints a scale held must keep.
	Replicas int `json:"replicas,omitempty"`
	// Spec is the Deployment's spec.replicas and Ready the Service's ready endpoints when the change was
	// done; MinReady the fewest ready endpoints during it (-1: the watch saw no count).
	Spec     int `json:"spec"`
	Ready    int `json:"ready"`
	MinReady int `json:"minReady"`
	// NotReady are the moments a pod that was there before the change was seen running but not ready
	// during it ("NAME at 15:04:05.000"): why the ready endpoints fell, when they did.
	NotReady []string `json:"notReady,omitempty"`
	// Remaining are the pods that were there before, are not any more, and still existed when it was
	// done.
	Remaining []string `json:"remaining,omitempty"`
	// NewPods are the pods a bad release created.
	NewPods []string `json:"newPods,omitempty"`
	// Listed are the pods ever listed in the namespace's EndpointSlices up to the change's end, and
	// ReadyListed those ever listed ready.
	Listed      []string `json:"listed,omitempty"`
	ReadyListed []string `json:"readyListed,omitempty"`
	// Pod is a helm test's pod and PodPhase the phase it ended in ("" if it never ended).
	Pod      string `json:"pod,omitempty"`
	PodPhase string `json:"podPhase,omitempty"`
}

// Check is the change's reality check: what its kind must have done, from what was observed.
func (c Change) Check() []error {
	var out []error
	add := func(format string, a ...any) {
		out = append(out, &gate.Violation{Gate: gate.Reality, Detail: c.What + ": " + fmt.Sprintf(format, a...)})
	}
	r := c.Replacement
	minReady := func(least int) {
		switch {
		case c.MinReady < 0:
			add("the Service's ready endpoints were never observed during the change (no count seen, or the namespace's watch ended early)")
		case c.MinReady < least:
			why := ""
			if len(c.NotReady) > 0 {
				why = "; pods of before the change not ready meanwhile: " + strings.Join(c.NotReady, ", ")
			}
			add("the Service's ready endpoints fell to %d during the change, below %d%s", c.MinReady, least, why)
		}
	}
	switch c.Kind {
	case KindRollout:
		return gate.CheckReplaced(c.What, r)
	case KindEviction:
		return gate.CheckEvicted(c.What, r, c.Evicted)
	case KindScale:
		if c.Replicas <= 0 {
			add("no replica count to reach was declared")
			return out
		}
		if len(r.After) != c.Replicas || c.Spec != c.Replicas || c.Ready != c.Replicas {
			add("%d replicas wanted: the Deployment asks for %d, %d pods run, %d ready endpoints", c.Replicas, c.Spec, len(r.After), c.Ready)
		}
		if len(c.Remaining) > 0 {
			add("removed pods still exist: %s", strings.Join(c.Remaining, ", "))
		}
		kept, grown := r.Before, r.After
		if c.Replicas < len(r.Before) {
			kept, grown = r.After, r.Before
		}
		for uid, p := range kept {
			if _, ok := grown[uid]; !ok {
				add("pod %s was replaced: a scale only adds or removes pods", p.Name)
			}
		}
		minReady(min(c.Replicas, len(r.Before)))
	case KindBadRelease:
		if len(c.NewPods) == 0 {
			add("the release created no pod: nothing bad was tried")
		}
		for _, p := range c.NewPods {
			if slices.Contains(c.ReadyListed, p) {
				add("pod %s of the bad release became a ready endpoint", p)
			}
		}
		out = append(out, samePods(c.What, "the old pods kept serving and the rollback restored them", r)...)
		minReady(len(r.Before))
	case KindHelmTest:
		switch {
		case c.Pod == "":
			add("no test pod was named")
		case c.PodPhase != string(corev1.PodSucceeded):
			add("the test pod %s did not succeed (last phase seen: %q)", c.Pod, c.PodPhase)
		}
		if c.Pod != "" && slices.Contains(c.Listed, c.Pod) {
			add("the test pod %s was listed as an endpoint of the Service", c.Pod)
		}
		out = append(out, samePods(c.What, "the release's pods were untouched", r)...)
	case KindScaleHeld:
		if c.Replicas <= 0 {
			add("no ready endpoint count before the change was observed")
			return out
		}
		minReady(c.Replicas)
	case KindNone:
		out = append(out, samePods(c.What, "a baseline changes no pod", r)...)
		minReady(len(r.Before))
	default:
		add("unknown kind %q: declare a change with Rollout, EvictOne, EvictFrom, Scale, BadRelease, HelmTest, ScaleHeld or NoChange", c.Kind)
	}
	return out
}

// String says what was observed of the change, for the reports.
func (c Change) String() string {
	r := c.Replacement
	s := fmt.Sprintf("%s (%s): %d pods before, %d after", c.What, c.Kind, len(r.Before), len(r.After))
	switch c.Kind {
	case KindEviction:
		s += "; evicted " + strings.Join(c.Evicted, ", ")
	case KindScale:
		s += fmt.Sprintf("; %d wanted: the Deployment asked for %d, %d ready endpoints", c.Replicas, c.Spec, c.Ready)
	case KindBadRelease:
		s += "; the release's pods: " + strings.Join(c.NewPods, ", ")
	case KindHelmTest:
		s += fmt.Sprintf("; test pod %s ended %s", c.Pod, c.PodPhase)
	case KindScaleHeld:
		s += fmt.Sprintf("; %d ready endpoints before", c.Replicas)
	}
	if c.MinReady >= 0 {
		s += fmt.Sprintf("; fewest ready endpoints during it: %d", c.MinReady)
	}
	if len(c.NotReady) > 0 {
		s += "; not ready meanwhile: " + strings.Join(c.NotReady, ", ")
	}
	return s
}

// samePods: the pods after are the pods before (same UIDs, same template hashes), and there were some.
func samePods(what, why string, r gate.Replacement) []error {
	var out []error
	add := func(format string, a ...any) {
		out = append(out, &gate.Violation{Gate: gate.Reality, Detail: what + ": " + fmt.Sprintf(format, a...)})
	}
	if len(r.Before) == 0 {
		add("no pod before the change")
	}
	for uid, p := range r.Before {
		if q, ok := r.After[uid]; !ok {
			add("pod %s is gone (%s)", p.Name, why)
		} else if q.Hash != p.Hash {
			add("pod %s runs template %s, %s before (%s)", p.Name, q.Hash, p.Hash, why)
		}
	}
	for uid, p := range r.After {
		if _, ok := r.Before[uid]; !ok {
			add("pod %s is new (%s)", p.Name, why)
		}
	}
	return out
}

// checkAnswers is the per-client half of a change's reality: for a rollout or an eviction, its old and
// new pods answered inside its window (checkBackendsPerChange); for a bad release and a helm test, the
// pods that must never have served did not answer.
func checkAnswers(r *Run, c gate.Check, p gate.Policy) []error {
	var out []error
	all := podNames(r.Load.Window(r.Load.Start, r.Load.End.Add(time.Hour)).Backends)
	for _, ch := range r.Changes {
		var never []string
		switch ch.Kind {
		case KindBadRelease:
			never = ch.NewPods
		case KindHelmTest:
			never = []string{ch.Pod}
		}
		for _, pod := range never {
			if n := all[pod]; n > 0 {
				out = append(out, &gate.Violation{Gate: gate.Reality, Client: c.Client, Detail: fmt.Sprintf("%s: pod %s answered %d request(s): it must never serve", ch.What, pod, n)})
			}
		}
	}
	return append(out, checkBackendsPerChange(r, c, p)...)
}

// notReady is Timeline.NotReady for the pods before a change.
func (tr *Traffic) notReady(before gate.Pods, from time.Time) []string {
	names := map[string]bool{}
	for _, p := range before {
		names[p.Name] = true
	}
	return tr.timeline.NotReady(names, from)
}

// Declare records a change for the reality gate. The change methods (Rollout, EvictOne, Scale, ...)
// declare theirs; a change of another kind is declared with what was observed of it.
func (tr *Traffic) Declare(c Change) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.changes = append(tr.changes, c)
}

// Rollout marks the start of a change that must replace every pod of the target's Deployment, calls
// apply, waits until the Deployment has rolled out to as many replicas as it had (observed generation,
// every replica updated and available, old pods gone, within timeout), marks the end, and declares
// the pods before and after for the reality gate.
func (tr *Traffic) Rollout(tb testing.TB, what string, timeout time.Duration, apply func()) {
	tb.Helper()
	tr.change(tb, KindRollout, what, timeout, func() []string { apply(); return nil })
}

// change marks the start of a rollout or an eviction, applies it (apply returns the pods it evicted,
// none for a rollout), waits until the evicted pods are gone and the Deployment has rolled out to its count before, marks the end, and declares
// the pods before and after: with the evicted pods for a drain or an eviction, with the old
// ReplicaSets for a rollout.
func (tr *Traffic) change(tb testing.TB, kind Kind, what string, timeout time.Duration, apply func() (evicted []string)) {
	tb.Helper()
	before := tr.Snapshot(tb)
	from := time.Now()
	tr.Mark(what)
	evicted := apply()
	tr.waitGone(tb, what, evicted, timeout)
	want := int32(len(before))
	if tr.autoscaled(tb) {
		want = AnyReplicas // an HPA sets the count meanwhile
	}
	WaitRolledOut(tb, tr.client, tr.ns, tr.target.Deployment, want, timeout)
	to := time.Now()
	tr.Mark(what + " done")
	c := Change{Kind: kind, What: what, Evicted: evicted, From: from, To: to, MinReady: tr.timeline.MinReady(tr.target.Service, from), NotReady: tr.notReady(before, from),
		Replacement: gate.Replacement{Before: before, After: tr.Snapshot(tb)}}
	if kind == KindRollout {
		c.Replacement.OldReplicaSets = tr.ReplicaSets(tb)
	}
	tr.Declare(c)
}

// Scale marks the start of a change of the replica count to replicas, applies it, waits until the
// Deployment has rolled out to that count (the removed pods gone) and the Service has as many ready
// endpoints, marks the end, and declares what it observed.
func (tr *Traffic) Scale(tb testing.TB, what string, replicas int32, timeout time.Duration, apply func()) {
	tb.Helper()
	before := tr.Snapshot(tb)
	from := time.Now()
	tr.Mark(what)
	apply()
	WaitRolledOut(tb, tr.client, tr.ns, tr.target.Deployment, replicas, timeout)
	ctx := context.Background()
	ready := 0
	err := cluster.Poll(ctx, timeout, 250*time.Millisecond, func() (bool, error) {
		var err error
		ready, err = tr.readyEndpoints(ctx)
		return err == nil && ready == int(replicas), err
	})
	if err != nil {
		tb.Fatalf("disrupt: %s: the Service %s has %d ready endpoints, %d wanted: %v\n%s", what, tr.target.Service, ready, replicas, err, Describe(tr.client, tr.ns))
	}
	to := time.Now()
	tr.Mark(what + " done")
	after := tr.Snapshot(tb)
	c := Change{Kind: KindScale, What: what, From: from, To: to, Replicas: int(replicas), Ready: ready,
		Spec: tr.specReplicas(tb), MinReady: tr.timeline.MinReady(tr.target.Service, from), NotReady: tr.notReady(before, from),
		Replacement: gate.Replacement{Before: before, After: after}}
	for uid, p := range before {
		if _, ok := after[uid]; !ok && tr.podExists(tb, p.Name) {
			c.Remaining = append(c.Remaining, p.Name)
		}
	}
	tr.Declare(c)
}

// BadRelease marks the start of a release whose pods must never become ready, applies it, waits until
// the Deployment reports ProgressDeadlineExceeded (collecting the pods of the new template meanwhile),
// marks it, rolls back, waits until the Deployment has rolled out to its count before, marks the end,
// and declares what it observed.
func (tr *Traffic) BadRelease(tb testing.TB, what string, timeout time.Duration, apply, rollback func()) {
	tb.Helper()
	before := tr.Snapshot(tb)
	old := map[string]bool{}
	for _, p := range before {
		old[p.Hash] = true
	}
	from := time.Now()
	tr.Mark(what)
	apply()
	ctx := context.Background()
	bad := map[string]bool{}
	err := cluster.Poll(ctx, timeout, 250*time.Millisecond, func() (bool, error) {
		for _, p := range PodsOf(tb, tr.client, tr.ns, tr.selector) {
			if !old[p.Labels[appsv1.DefaultDeploymentUniqueLabelKey]] {
				bad[p.Name] = true
			}
		}
		d, err := tr.client.AppsV1().Deployments(tr.ns).Get(ctx, tr.target.Deployment, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
				return true, nil
			}
		}
		return false, fmt.Errorf("no ProgressDeadlineExceeded yet")
	})
	if err != nil {
		tb.Fatalf("disrupt: %s: the release was not reported failed: %v\n%s", what, err, Describe(tr.client, tr.ns))
	}
	tr.Mark(what + ": ProgressDeadlineExceeded")
	rollback()
	WaitRolledOut(tb, tr.client, tr.ns, tr.target.Deployment, int32(len(before)), timeout)
	to := time.Now()
	tr.Mark(what + ": rolled back")
	c := Change{Kind: KindBadRelease, What: what, From: from, To: to, MinReady: tr.timeline.MinReady(tr.target.Service, from), NotReady: tr.notReady(before, from),
		NewPods: slices.Sorted(maps.Keys(bad)), ReadyListed: slices.Sorted(maps.Keys(tr.timeline.ReadyEndpointPods())),
		Replacement: gate.Replacement{Before: before, After: tr.Snapshot(tb)}}
	tr.Declare(c)
}

// HelmTest marks the start of a test run (run, e.g. `helm test`) whose pod is named pod, runs it, marks
// the end, and declares the phase the pod ended in and the pods listed as endpoints.
func (tr *Traffic) HelmTest(tb testing.TB, what, pod string, run func()) {
	tb.Helper()
	before := tr.Snapshot(tb)
	from := time.Now()
	tr.Mark(what)
	run()
	to := time.Now()
	tr.Mark(what + " done")
	// The run returns when its own watch saw the pod end; the timeline's watch may see it a moment later.
	_ = cluster.Poll(context.Background(), 10*time.Second, 100*time.Millisecond, func() (bool, error) { return tr.timeline.Phase(pod) != "", nil })
	tr.Declare(Change{Kind: KindHelmTest, What: what, From: from, To: to, Pod: pod, PodPhase: tr.timeline.Phase(pod),
		MinReady: tr.timeline.MinReady(tr.target.Service, from), NotReady: tr.notReady(before, from), Listed: slices.Sorted(maps.Keys(tr.timeline.EndpointPods())),
		Replacement: gate.Replacement{Before: before, After: tr.Snapshot(tb)}})
}

// ScaleHeld marks the start of a change that must keep the Service's ready endpoints at the count it
// has now (turning autoscaling on), applies it, calls until (a wait for the change to have taken
// effect), marks the end, and declares the fewest ready endpoints seen.
func (tr *Traffic) ScaleHeld(tb testing.TB, what string, apply, until func()) {
	tb.Helper()
	ready, err := tr.readyEndpoints(context.Background())
	if err != nil {
		tb.Fatalf("disrupt: %s: %v", what, err)
	}
	before := tr.Snapshot(tb)
	from := time.Now()
	tr.Mark(what)
	apply()
	until()
	to := time.Now()
	tr.Mark(what + " done")
	tr.Declare(Change{Kind: KindScaleHeld, What: what, From: from, To: to, Replicas: ready,
		MinReady: tr.timeline.MinReady(tr.target.Service, from), NotReady: tr.notReady(before, from), Replacement: gate.Replacement{Before: before, After: tr.Snapshot(tb)}})
}

// NoChange declares a baseline: the load runs for d between two marks, and nothing may change.
func (tr *Traffic) NoChange(tb testing.TB, what string, d time.Duration) {
	tb.Helper()
	before := tr.Snapshot(tb)
	from := time.Now()
	tr.Mark(what)
	time.Sleep(d) // a measurement window, not a wait for a condition
	to := time.Now()
	tr.Mark(what + " done")
	tr.Declare(Change{Kind: KindNone, What: what, From: from, To: to, MinReady: tr.timeline.MinReady(tr.target.Service, from), NotReady: tr.notReady(before, from),
		Replacement: gate.Replacement{Before: before, After: tr.Snapshot(tb)}})
}

// autoscaled says whether a HorizontalPodAutoscaler scales the target's Deployment: then the replica
// count a rollout ends with is the HPA's, not the count before it.
func (tr *Traffic) autoscaled(tb testing.TB) bool {
	tb.Helper()
	list, err := tr.client.AutoscalingV2().HorizontalPodAutoscalers(tr.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		tb.Fatalf("disrupt: list the HorizontalPodAutoscalers: %v", err)
	}
	for _, h := range list.Items {
		if ref := h.Spec.ScaleTargetRef; ref.Kind == "Deployment" && ref.Name == tr.target.Deployment {
			return true
		}
	}
	return false
}

// readyEndpoints counts the target Service's ready endpoints now, each pod once.
func (tr *Traffic) readyEndpoints(ctx context.Context) (int, error) {
	list, err := tr.client.DiscoveryV1().EndpointSlices(tr.ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + tr.target.Service})
	if err != nil {
		return 0, fmt.Errorf("the Service's EndpointSlices: %w", err)
	}
	ready := map[string]bool{}
	for _, es := range list.Items {
		for _, e := range es.Endpoints {
			if e.Conditions.Ready != nil && *e.Conditions.Ready && e.TargetRef != nil {
				ready[e.TargetRef.Name] = true
			}
		}
	}
	return len(ready), nil
}

// specReplicas is the target Deployment's spec.replicas.
func (tr *Traffic) specReplicas(tb testing.TB) int {
	tb.Helper()
	d, err := tr.client.AppsV1().Deployments(tr.ns).Get(context.Background(), tr.target.Deployment, metav1.GetOptions{})
	if err != nil {
		tb.Fatalf("disrupt: the target's Deployment: %v", err)
	}
	if d.Spec.Replicas == nil {
		return 1
	}
	return int(*d.Spec.Replicas)
}

// podExists says whether a pod of the namespace still exists (terminating or not).
func (tr *Traffic) podExists(tb testing.TB, name string) bool {
	tb.Helper()
	_, err := tr.client.CoreV1().Pods(tr.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		tb.Fatalf("disrupt: pod %s: %v", name, err)
	}
	return err == nil
}
