package kube

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// RolledOut reports whether a Deployment has finished its latest rollout: the controller observed the
// latest generation, every replica is updated, ready and available, and no pod of an older ReplicaSet
// is left. (terratest's WaitUntilDeploymentAvailable does not check observedGeneration, so it can
// return before a rollout even started.)
func (e *Env) RolledOut(ctx context.Context, ns, name string) (bool, error) {
	d, err := e.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, err
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	switch {
	case s.ObservedGeneration < d.Generation:
		return false, fmt.Errorf("generation %d not observed yet (%d)", d.Generation, s.ObservedGeneration)
	case s.UpdatedReplicas != want || s.ReadyReplicas != want || s.AvailableReplicas != want || s.Replicas != want:
		return false, fmt.Errorf("replicas: want %d, updated %d ready %d available %d total %d", want, s.UpdatedReplicas, s.ReadyReplicas, s.AvailableReplicas, s.Replicas)
	}
	for _, c := range s.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
			return false, fmt.Errorf("rollout failed: %s", c.Message)
		}
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return false, err
	}
	pods, err := e.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return false, err
	}
	if int32(len(pods.Items)) != want {
		return false, fmt.Errorf("%d pods exist, %d wanted (old pods still terminating)", len(pods.Items), want)
	}
	return true, nil
}

// WaitRolledOut waits until RolledOut, failing the test with the namespace's state if it does not happen.
func (e *Env) WaitRolledOut(tb testing.TB, ns, name string, timeout time.Duration) {
	tb.Helper()
	ctx := context.Background()
	if err := Poll(ctx, timeout, 250*time.Millisecond, func() (bool, error) { return e.RolledOut(ctx, ns, name) }); err != nil {
		tb.Fatalf("deployment %s/%s not rolled out after %s: %v\n%s", ns, name, timeout, err, e.Describe(ns))
	}
}

// WaitPodPhase waits for a pod to reach a phase.
func (e *Env) WaitPodPhase(tb testing.TB, ns, name string, phase corev1.PodPhase, timeout time.Duration) *corev1.Pod {
	tb.Helper()
	ctx := context.Background()
	var pod *corev1.Pod
	err := Poll(ctx, timeout, 250*time.Millisecond, func() (bool, error) {
		p, err := e.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pod = p
		if p.Status.Phase == corev1.PodFailed && phase != corev1.PodFailed {
			return false, fmt.Errorf("pod failed")
		}
		return p.Status.Phase == phase, fmt.Errorf("phase %s", p.Status.Phase)
	})
	if err != nil {
		tb.Fatalf("pod %s/%s not %s after %s: %v\n%s", ns, name, phase, timeout, err, e.Describe(ns))
	}
	return pod
}

// Logs returns a container's log.
func (e *Env) Logs(tb testing.TB, ns, pod string) string {
	tb.Helper()
	data, err := e.Client.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{}).DoRaw(context.Background())
	if err != nil {
		tb.Fatalf("logs of %s/%s: %v", ns, pod, err)
	}
	return string(data)
}

// PodsOf lists the pods matching a label set.
func (e *Env) PodsOf(tb testing.TB, ns string, set map[string]string) []corev1.Pod {
	tb.Helper()
	pods, err := e.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: labels.SelectorFromSet(set).String()})
	if err != nil {
		tb.Fatal(err)
	}
	return pods.Items
}
