package disrupt

import (
	"context"
	"fmt"
	"maps"
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
	ready  []ReadyCount
	cancel context.CancelFunc
	done   sync.WaitGroup
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
}

func (tl *Timeline) endpoints(w watch.Interface) {
	defer tl.done.Done()
	last := map[string]string{}
	for ev := range w.ResultChan() {
		es, ok := ev.Object.(*discoveryv1.EndpointSlice)
		if !ok {
			continue
		}
		ready, serving, terminating := 0, 0, 0
		tl.mu.Lock()
		for _, e := range es.Endpoints {
			if e.TargetRef != nil {
				tl.endpointPods[e.TargetRef.Name] = true
			}
			if e.Conditions.Ready != nil && *e.Conditions.Ready {
				ready++
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
		what := fmt.Sprintf("%d ready, %d serving, %d terminating", ready, serving, terminating)
		if ev.Type == watch.Deleted {
			what = "deleted"
		}
		if last[es.Name] != what {
			last[es.Name] = what
			svc := es.Labels[discoveryv1.LabelServiceName]
			tl.add("endpoints/"+svc, what)
			if ev.Type != watch.Deleted {
				tl.mu.Lock()
				tl.ready = append(tl.ready, ReadyCount{At: time.Now(), Service: svc, Ready: ready})
				tl.mu.Unlock()
			}
		}
	}
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
	out := map[string]bool{}
	for k := range tl.endpointPods {
		out[k] = true
	}
	return out
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
// included), and -1 when no count was seen.
func (tl *Timeline) MinReady(service string, since time.Time) int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
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

// Stop ends the watches and returns the events in order.
func (tl *Timeline) Stop() []Event {
	tl.cancel()
	tl.done.Wait()
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return append([]Event(nil), tl.events...)
}
