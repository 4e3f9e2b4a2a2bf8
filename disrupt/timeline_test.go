package disrupt

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// slice is an EndpointSlice of Service svc whose endpoints are "pod" (ready) or "pod-" (not ready).
func slice(svc, name string, endpoints ...string) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}}}
	for _, e := range endpoints {
		ready := e[len(e)-1] != '-'
		if !ready {
			e = e[:len(e)-1]
		}
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.0.0.1"},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: e}})
	}
	return es
}

// timelineOf runs a Timeline's EndpointSlice watch over a fake watch fed with the events, in order,
// and returns the timeline once the watch has taken them all in; stop says whether the timeline is
// stopped (Stop) before the watch ends, as at the end of a run, or the watch ends by itself first.
func timelineOf(t *testing.T, stop bool, events ...watch.Event) *Timeline {
	t.Helper()
	_, cancel := context.WithCancel(context.Background())
	tl := &Timeline{cancel: cancel, endpointPods: map[string]bool{}, readyPods: map[string]bool{}, phases: map[string]corev1.PodPhase{}}
	w := watch.NewFakeWithChanSize(len(events), false)
	for _, ev := range events {
		w.Action(ev.Type, ev.Object)
	}
	tl.done.Add(1)
	go tl.endpoints(w)
	require.Eventually(t, func() bool { return len(w.ResultChan()) == 0 }, 5*time.Second, time.Millisecond)
	if stop {
		tl.mu.Lock()
		tl.stopping = true
		tl.mu.Unlock()
	}
	w.Stop()
	tl.done.Wait()
	return tl
}

// A Service's ready endpoints are counted over all its slices, each pod once, a deleted slice's
// endpoints removed: one slice's count alone is not the Service's. want is the count in force once the
// events are in.
func TestTimelineReadyOverSlices(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		events []watch.Event
		want   int
	}{
		{"one slice", []watch.Event{{Type: watch.Added, Object: slice("svc", "a", "p1", "p2", "p3")}}, 3},
		{"two slices: the sum, not the last slice's", []watch.Event{
			{Type: watch.Added, Object: slice("svc", "a", "p1", "p2")},
			{Type: watch.Added, Object: slice("svc", "b", "p3", "p4-")},
		}, 3},
		{"a pod in two slices counts once", []watch.Event{
			{Type: watch.Added, Object: slice("svc", "a", "p1", "p2", "p3")},
			{Type: watch.Added, Object: slice("svc", "b", "p3", "p4-")},
		}, 3},
		{"a deleted slice's endpoints are gone", []watch.Event{
			{Type: watch.Added, Object: slice("svc", "a", "p1", "p2")},
			{Type: watch.Added, Object: slice("svc", "b", "p3")},
			{Type: watch.Deleted, Object: slice("svc", "b", "p3")},
		}, 2},
		{"another Service's slices do not count", []watch.Event{
			{Type: watch.Added, Object: slice("svc", "a", "p1", "p2", "p3")},
			{Type: watch.Added, Object: slice("other", "o", "q1")},
			{Type: watch.Modified, Object: slice("other", "o", "q1-")},
		}, 3},
		{"a slice going unready lowers the Service's count", []watch.Event{
			{Type: watch.Added, Object: slice("svc", "a", "p1", "p2")},
			{Type: watch.Added, Object: slice("svc", "b", "p3")},
			{Type: watch.Modified, Object: slice("svc", "a", "p1", "p2-")},
		}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tl := timelineOf(t, true, tc.events...)
			assert.Zero(t, tl.WatchEnded(), "a watch that ends at Stop did not end early")
			assert.Equal(t, tc.want, tl.MinReady("svc", time.Now()))
		})
	}
}

// MinReady is the fewest over the change: a slice that loses a ready endpoint for a moment counts,
// whatever the other slices hold.
func TestTimelineMinReady(t *testing.T) {
	t.Parallel()
	tl := timelineOf(t, true,
		watch.Event{Type: watch.Added, Object: slice("svc", "a", "p1", "p2")},
		watch.Event{Type: watch.Added, Object: slice("svc", "b", "p3", "p4")},
		watch.Event{Type: watch.Modified, Object: slice("svc", "b", "p3", "p4-")},
		watch.Event{Type: watch.Modified, Object: slice("svc", "b", "p3", "p4")})
	assert.Equal(t, 2, tl.MinReady("svc", time.Now().Add(-time.Minute)), "a alone, before b was seen")
	assert.Equal(t, 4, tl.MinReady("svc", time.Now()), "in force at the end")
}

// A watch that ends before the run does leaves what followed unobserved: MinReady says nothing was
// observed, and WatchEnded says when it ended.
func TestTimelineWatchEndedEarly(t *testing.T) {
	t.Parallel()
	tl := timelineOf(t, false, watch.Event{Type: watch.Added, Object: slice("svc", "a", "p1", "p2", "p3")})
	assert.NotZero(t, tl.WatchEnded())
	assert.Equal(t, -1, tl.MinReady("svc", time.Now().Add(-time.Minute)))
}

// NotReady names the pods of a set that were seen running but not ready from a moment on, and when.
func TestTimelineNotReady(t *testing.T) {
	t.Parallel()
	pod := func(name string, ready bool) *corev1.Pod {
		status := corev1.ConditionFalse
		if ready {
			status = corev1.ConditionTrue
		}
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.PodStatus{Phase: corev1.PodRunning,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}}}
	}
	_, cancel := context.WithCancel(context.Background())
	tl := &Timeline{cancel: cancel, endpointPods: map[string]bool{}, readyPods: map[string]bool{}, phases: map[string]corev1.PodPhase{}}
	w := watch.NewFakeWithChanSize(5, false)
	for _, p := range []*corev1.Pod{pod("a1", true), pod("a2", true), pod("b1", false), pod("a2", false), pod("a2", true)} {
		w.Modify(p)
	}
	tl.done.Add(1)
	go tl.pods(w)
	require.Eventually(t, func() bool { return len(w.ResultChan()) == 0 }, 5*time.Second, time.Millisecond)
	w.Stop()
	tl.done.Wait()
	got := tl.NotReady(map[string]bool{"a1": true, "a2": true}, time.Now().Add(-time.Minute))
	require.Len(t, got, 1, "a2 once; b1 is not one of the pods asked about")
	assert.Regexp(t, `^a2 at \d\d:\d\d:\d\d\.\d{3}$`, got[0])
	assert.Empty(t, tl.NotReady(map[string]bool{"a2": true}, time.Now().Add(time.Minute)), "nothing after the moment asked about")
}
