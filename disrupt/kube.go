package disrupt

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/go-service/go-service/cluster"
)

// AnyReplicas makes RolledOut accept the replica count the Deployment asks for itself: only for a
// Deployment whose count something else decides while the test waits (an HPA). Every other caller
// passes the count it expects, so a chart that ignored replicaCount cannot pass.
const AnyReplicas int32 = -1

// RolledOut reports whether a Deployment has finished its latest rollout to want replicas: its
// spec asks for want, the controller observed the latest generation, every replica is updated, ready
// and available, and no pod of an older ReplicaSet is left. (terratest's WaitUntilDeploymentAvailable
// does not check observedGeneration, so it can return before a rollout even started.) The error says
// what is still missing.
func RolledOut(ctx context.Context, c kubernetes.Interface, ns, name string, want int32) (bool, error) {
	d, err := c.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, err
	}
	spec := int32(1)
	if d.Spec.Replicas != nil {
		spec = *d.Spec.Replicas
	}
	if want == AnyReplicas {
		want = spec
	}
	s := d.Status
	switch {
	case spec != want:
		return false, fmt.Errorf("the Deployment asks for %d replicas, %d expected", spec, want)
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
	pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return false, err
	}
	if int32(len(pods.Items)) != want {
		return false, fmt.Errorf("%d pods exist, %d wanted (old pods still terminating)", len(pods.Items), want)
	}
	return true, nil
}

// WaitRolledOut waits until RolledOut to want replicas, failing the test with the namespace's state if
// it does not happen.
func WaitRolledOut(tb testing.TB, c kubernetes.Interface, ns, name string, want int32, timeout time.Duration) {
	tb.Helper()
	ctx := context.Background()
	if err := cluster.Poll(ctx, timeout, 250*time.Millisecond, func() (bool, error) { return RolledOut(ctx, c, ns, name, want) }); err != nil {
		tb.Fatalf("deployment %s/%s not rolled out after %s: %v\n%s", ns, name, timeout, err, Describe(c, ns))
	}
}

// WaitPodPhase waits for a pod to reach a phase, failing the test with the namespace's state if it does
// not.
func WaitPodPhase(tb testing.TB, c kubernetes.Interface, ns, name string, phase corev1.PodPhase, timeout time.Duration) *corev1.Pod {
	tb.Helper()
	ctx := context.Background()
	var pod *corev1.Pod
	err := cluster.Poll(ctx, timeout, 250*time.Millisecond, func() (bool, error) {
		p, err := c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
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
		tb.Fatalf("pod %s/%s not %s after %s: %v\n%s", ns, name, phase, timeout, err, Describe(c, ns))
	}
	return pod
}

// PodsOf lists the pods matching a label set.
func PodsOf(tb testing.TB, c kubernetes.Interface, ns string, set map[string]string) []corev1.Pod {
	tb.Helper()
	pods, err := c.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: labels.SelectorFromSet(set).String()})
	if err != nil {
		tb.Fatal(err)
	}
	return pods.Items
}

// Describe reports the pods (node, IP, phase, container states) and events of a namespace, the events in
// the order they happened, for a failure message. Its first line, "--- namespace NAME", is how the
// run's summary (internal/cmd/testlog) tells it from the failure it follows.
func Describe(c kubernetes.Interface, ns string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var b strings.Builder
	fmt.Fprintf(&b, "--- namespace %s\n", ns)
	pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err == nil {
		for _, p := range pods.Items {
			fmt.Fprintf(&b, "pod %s node=%s ip=%s phase=%s deleting=%v\n", p.Name, p.Spec.NodeName, p.Status.PodIP, p.Status.Phase, p.DeletionTimestamp != nil)
			for _, c := range p.Status.ContainerStatuses {
				fmt.Fprintf(&b, "  container %s ready=%v restarts=%d state=%s\n", c.Name, c.Ready, c.RestartCount, containerState(c.State))
			}
		}
	}
	events, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err == nil {
		slices.SortStableFunc(events.Items, func(a, b corev1.Event) int { return eventTime(a).Compare(eventTime(b)) })
		for _, ev := range events.Items {
			fmt.Fprintf(&b, "event %s %s/%s %s: %s\n", eventTime(ev).Format("15:04:05"), ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Reason, ev.Message)
		}
	}
	return b.String()
}

// eventTime is when an event last happened (events.k8s.io/v1 writers set only EventTime).
func eventTime(ev corev1.Event) time.Time {
	if !ev.LastTimestamp.IsZero() {
		return ev.LastTimestamp.Time
	}
	return ev.EventTime.Time
}

func containerState(s corev1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "running since " + s.Running.StartedAt.Format("15:04:05")
	case s.Waiting != nil:
		return "waiting: " + s.Waiting.Reason + " " + s.Waiting.Message
	case s.Terminated != nil:
		return fmt.Sprintf("terminated: %s exit %d", s.Terminated.Reason, s.Terminated.ExitCode)
	}
	return "unknown"
}
