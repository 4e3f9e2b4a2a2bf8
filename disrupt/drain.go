package disrupt

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/go-service/go-service/cluster"
)

// Cordon marks a node unschedulable, as `kubectl drain` does first, and returns the function that makes
// it schedulable again (also run when the test ends).
func Cordon(tb testing.TB, c kubernetes.Interface, node string) (uncordon func()) {
	tb.Helper()
	set := func(on bool) error {
		patch := fmt.Sprintf(`{"spec":{"unschedulable":%v}}`, on)
		_, err := c.CoreV1().Nodes().Patch(context.Background(), node, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
		return err
	}
	if err := set(true); err != nil {
		tb.Fatalf("cordon %s: %v", node, err)
	}
	done := false
	uncordon = func() {
		if done {
			return
		}
		done = true
		if err := set(false); err != nil {
			tb.Errorf("uncordon %s: %v", node, err)
		}
	}
	tb.Cleanup(uncordon)
	return uncordon
}

// Evict asks the API server to evict a pod, as a drain does: the eviction respects the pod's
// PodDisruptionBudget, and a refusal (429) is retried every second for up to timeout. It returns how
// many times the budget refused it.
func Evict(tb testing.TB, c kubernetes.Interface, ns, pod string, timeout time.Duration) (refused int) {
	tb.Helper()
	ctx := context.Background()
	err := cluster.Poll(ctx, timeout, time.Second, func() (bool, error) {
		err := c.PolicyV1().Evictions(ns).Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: ns}})
		if apierrors.IsTooManyRequests(err) {
			refused++
			return false, err
		}
		return err == nil || apierrors.IsNotFound(err), err
	})
	if err != nil {
		tb.Fatalf("evict %s/%s: %v", ns, pod, err)
	}
	return refused
}

// PodsByNode returns the target's running pods (not terminating) per node, each list sorted.
func (tr *Traffic) PodsByNode(tb testing.TB) map[string][]string {
	tb.Helper()
	out := map[string][]string{}
	for _, p := range PodsOf(tb, tr.client, tr.ns, tr.selector) {
		if p.DeletionTimestamp == nil && p.Spec.NodeName != "" {
			out[p.Spec.NodeName] = append(out[p.Spec.NodeName], p.Name)
		}
	}
	for _, pods := range out {
		sort.Strings(pods)
	}
	return out
}

// EvictFrom evicts the target's pods on a node (cordoned by the caller: Cordon), one after the other as
// a drain does, marking each eviction, then waits until the Deployment has its replicas back. It records
// the evictions for the reality gate and returns how many the budget refused first.
func (tr *Traffic) EvictFrom(tb testing.TB, node string, timeout time.Duration) (refused int) {
	tb.Helper()
	pods := tr.PodsByNode(tb)[node]
	if len(pods) == 0 {
		tb.Fatalf("disrupt: no pod of %s/%s runs on %s", tr.ns, tr.target.Deployment, node)
	}
	tr.change(tb, KindEviction, "drain "+node, timeout, func() []string {
		for _, pod := range pods {
			refused += Evict(tb, tr.client, tr.ns, pod, timeout)
			tr.Mark("evicted " + pod)
		}
		return pods
	})
	return refused
}

// EvictWith is an eviction the caller makes: evict gets the target's running pods sorted by name,
// evicts some (and may try more, e.g. to see the budget refuse them), and returns the pods it evicted.
// It then waits until they are gone and the Deployment has its replicas back, marking both and
// declaring the eviction for the reality gate.
func (tr *Traffic) EvictWith(tb testing.TB, what string, timeout time.Duration, evict func(pods []string) (evicted []string)) {
	tb.Helper()
	tr.change(tb, KindEviction, what, timeout, func() []string { return evict(tr.runningPods(tb)) })
}

// runningPods are the target's running pods (not terminating), sorted by name.
func (tr *Traffic) runningPods(tb testing.TB) []string {
	tb.Helper()
	var names []string
	for _, pods := range tr.PodsByNode(tb) {
		names = append(names, pods...)
	}
	sort.Strings(names)
	return names
}

// EvictOne evicts one of the target's pods (the first by name) and waits until the Deployment has its
// replicas back, marking both and recording the eviction for the reality gate.
func (tr *Traffic) EvictOne(tb testing.TB, timeout time.Duration) (pod string) {
	tb.Helper()
	names := tr.runningPods(tb)
	if len(names) == 0 {
		tb.Fatalf("disrupt: %s/%s has no running pod to evict", tr.ns, tr.target.Deployment)
	}
	pod = names[0]
	tr.change(tb, KindEviction, "evict "+pod, timeout, func() []string { Evict(tb, tr.client, tr.ns, pod, timeout); return []string{pod} })
	return pod
}

// waitGone waits until the evicted pods no longer exist: the Deployment can look complete before an
// eviction reached it.
func (tr *Traffic) waitGone(tb testing.TB, what string, pods []string, timeout time.Duration) {
	tb.Helper()
	ctx := context.Background()
	for _, pod := range pods {
		err := cluster.Poll(ctx, timeout, 250*time.Millisecond, func() (bool, error) {
			_, err := tr.client.CoreV1().Pods(tr.ns).Get(ctx, pod, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return true, nil
			}
			return false, fmt.Errorf("pod %s still exists (%v)", pod, err)
		})
		if err != nil {
			tb.Fatalf("disrupt: %s: %v\n%s", what, err, Describe(tr.client, tr.ns))
		}
	}
}
