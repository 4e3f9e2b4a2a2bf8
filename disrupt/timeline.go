package disrupt

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// Event is one pod or endpoint change seen during a run.
type Event struct {
	At     time.Time `json:"at"`
	Object string    `json:"object"`
	What   string    `json:"what"`
}

// Timeline records pod lifecycle changes (created, ready, not ready, terminating, deleted) and the
// Service's ready endpoint count, from watches on the namespace.
type Timeline struct {
	mu     sync.Mutex
	events []Event
	// endpointPods are the pods ever listed in an EndpointSlice of the namespace, readyPods those ever
	// listed ready.
	endpointPods, readyPods map[string]bool
	// phases are the pods that ended (Succeeded or Failed) and how.
	phases map[string]corev1.PodPhase
	// ready are the ready endpoint counts per Service over time.
	ready []ReadyCount
	// watchEnded is when a watch ended before Stop (zero while both run): what followed was not
	// observed. stopping is set by Stop.
	watchEnded time.Time
	stopping   bool
	cancel     context.CancelFunc
	done       sync.WaitGroup
}

// WatchNamespace starts recording. Stop it with Stop.
func WatchNamespace(client kubernetes.Interface, ns string) (*Timeline, error) {
	ctx, cancel := context.WithCancel(context.Background())
	tl := &Timeline{cancel: cancel, endpointPods: map[string]bool{}, readyPods: map[string]bool{}, phases: map[string]corev1.PodPhase{}}
	pw, err := client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		cancel()
		return nil, err
	}
	ew, err := client.DiscoveryV1().EndpointSlices(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		cancel()
		pw.Stop()
		return nil, err
	}
	tl.done.Add(2)
	go tl.pods(pw)
	go tl.endpoints(ew)
	return tl, nil
}

func (tl *Timeline) add(object, what string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.events = append(tl.events, Event{At: time.Now(), Object: object, What: what})
}

func (tl *Timeline) pods(w watch.Interface) {
	defer tl.done.Done()
	state := map[string]string{}
	for ev := range w.ResultChan() {
		pod, ok := ev.Object.(*corev1.Pod)
		if !ok {
			continue
		}
		var now string
		if ph := pod.Status.Phase; ph == corev1.PodSucceeded || ph == corev1.PodFailed {
			tl.mu.Lock()
			tl.phases[pod.Name] = ph
			tl.mu.Unlock()
		}
		switch {
		case ev.Type == watch.Deleted:
			now = "deleted"
		case pod.Status.Phase == corev1.PodSucceeded:
			now = "succeeded"
		case pod.Status.Phase == corev1.PodFailed:
			now = "failed"
		case pod.DeletionTimestamp != nil:
			now = "terminating"
		case podReady(pod):
			now = "ready"
		case pod.Status.Phase == corev1.PodRunning:
			now = "running, not ready"
		default:
			now = "pending"
		}
		if state[pod.Name] != now {
			state[pod.Name] = now
			tl.add("pod/"+pod.Name, now)
		}
	}
	tl.ended()
}

func (tl *Timeline) endpoints(w watch.Interface) {
	defer tl.done.Done()
	last := map[string]string{}
	// bySlice holds, per Service, each of its EndpointSlices' ready endpoints (their pods, or their
	// addresses when an endpoint names no pod): a Service's ready count is over all its slices, an
	// endpoint listed in two of them (dual-stack, or a slice the controller is replacing) counted once.
	bySlice := map[string]map[string][]string{}
	lastReady := map[string]int{}
	for ev := range w.ResultChan() {
		es, ok := ev.Object.(*discoveryv1.EndpointSlice)
		if !ok {
			continue
		}
		ready, serving, terminating := 0, 0, 0
		var readyKeys []string
		tl.mu.Lock()
		for _, e := range es.Endpoints {
			if e.TargetRef != nil {
				tl.endpointPods[e.TargetRef.Name] = true
			}
			if e.Conditions.Ready != nil && *e.Conditions.Ready {
				ready++
				readyKeys = append(readyKeys, endpointKey(e))
				if e.TargetRef != nil {
					tl.readyPods[e.TargetRef.Name] = true
				}
			}
			if e.Conditions.Serving != nil && *e.Conditions.Serving {
				serving++
			}
			if e.Conditions.Terminating != nil && *e.Conditions.Terminating {
				terminating++
			}
		}
		tl.mu.Unlock()
		svc := es.Labels[discoveryv1.LabelServiceName]
		what := fmt.Sprintf("%d ready, %d serving, %d terminating", ready, serving, terminating)
		if ev.Type == watch.Deleted {
			what = "deleted"
		}
		if last[es.Name] != what {
			last[es.Name] = what
			tl.add("endpoints/"+svc, what)
		}
		if bySlice[svc] == nil {
			bySlice[svc] = map[string][]string{}
		}
		if ev.Type == watch.Deleted {
			delete(bySlice[svc], es.Name)
		} else {
			bySlice[svc][es.Name] = readyKeys
		}
		total := map[string]bool{}
		for _, keys := range bySlice[svc] {
			for _, k := range keys {
				total[k] = true
			}
		}
		if n, seen := lastReady[svc]; !seen || n != len(total) {
			lastReady[svc] = len(total)
			tl.mu.Lock()
			tl.ready = append(tl.ready, ReadyCount{At: time.Now(), Service: svc, Ready: len(total)})
			tl.mu.Unlock()
		}
	}
	tl.ended()
}

// ended records that a watch ended: before Stop, what followed was not observed.
func (tl *Timeline) ended() {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if !tl.stopping && tl.watchEnded.IsZero() {
		tl.watchEnded = time.Now()
	}
}

// endpointKey names an endpoint: its pod, or its addresses when it names no pod.
func endpointKey(e discoveryv1.Endpoint) string {
	if e.TargetRef != nil && e.TargetRef.Name != "" {
		return "pod/" + e.TargetRef.Name
	}
	return "addresses/" + strings.Join(e.Addresses, ",")
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// ReadyCount is a Service's number of ready endpoints from a moment on.
type ReadyCount struct {
	At      time.Time
	Service string
	Ready   int
}

// EndpointPods are the pods ever listed in an EndpointSlice of the namespace while the timeline ran.
func (tl *Timeline) EndpointPods() map[string]bool {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return maps.Clone(tl.endpointPods)
}

// ReadyEndpointPods are the pods ever listed ready in an EndpointSlice of the namespace while the
// timeline ran.
func (tl *Timeline) ReadyEndpointPods() map[string]bool {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return maps.Clone(tl.readyPods)
}

// Phase is the phase a pod ended in (Succeeded or Failed), "" if it was not seen ending.
func (tl *Timeline) Phase(pod string) string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return string(tl.phases[pod])
}

// MinReady is the fewest ready endpoints the Service had from since on (the count in force at since
// included), over all its EndpointSlices; -1 when no count was seen, or a watch ended before Stop.
func (tl *Timeline) MinReady(service string, since time.Time) int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if !tl.watchEnded.IsZero() {
		return -1
	}
	min, inForce := -1, -1
	for _, c := range tl.ready {
		if c.Service != service {
			continue
		}
		if c.At.Before(since) {
			inForce = c.Ready
			continue
		}
		if min < 0 || c.Ready < min {
			min = c.Ready
		}
	}
	if inForce >= 0 && (min < 0 || inForce < min) {
		min = inForce
	}
	return min
}

// NotReady lists, for the named pods, each moment from since on that one of them was seen running but
// not ready ("NAME at 15:04:05.000"), in order: what lowered a Service's ready count.
func (tl *Timeline) NotReady(pods map[string]bool, since time.Time) []string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var out []string
	for _, e := range tl.events {
		name, isPod := strings.CutPrefix(e.Object, "pod/")
		if isPod && pods[name] && e.What == "running, not ready" && !e.At.Before(since) {
			out = append(out, name+" at "+e.At.Format("15:04:05.000"))
		}
	}
	return out
}

// WatchEnded is when one of the watches ended before Stop (zero if neither did): the pods and endpoints
// after it were not observed, and the run's reality checks cannot be trusted.
func (tl *Timeline) WatchEnded() time.Time {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.watchEnded
}

// Stop ends the watches and returns the events in order.
func (tl *Timeline) Stop() []Event {
	tl.mu.Lock()
	tl.stopping = true
	tl.mu.Unlock()
	tl.cancel()
	tl.done.Wait()
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return append([]Event(nil), tl.events...)
}
