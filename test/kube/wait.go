package kube

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/go-service/go-service/disrupt"
)

// RolledOut is disrupt.RolledOut on this cluster.
func (e *Env) RolledOut(ctx context.Context, ns, name string, want int32) (bool, error) {
	return disrupt.RolledOut(ctx, e.Client, ns, name, want)
}

// WaitRolledOut is disrupt.WaitRolledOut on this cluster: the Deployment rolled out to want replicas.
func (e *Env) WaitRolledOut(tb testing.TB, ns, name string, want int32, timeout time.Duration) {
	tb.Helper()
	disrupt.WaitRolledOut(tb, e.Client, ns, name, want, timeout)
}

// WaitPodPhase is disrupt.WaitPodPhase on this cluster.
func (e *Env) WaitPodPhase(tb testing.TB, ns, name string, phase corev1.PodPhase, timeout time.Duration) *corev1.Pod {
	tb.Helper()
	return disrupt.WaitPodPhase(tb, e.Client, ns, name, phase, timeout)
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

// PodsOf is disrupt.PodsOf on this cluster.
func (e *Env) PodsOf(tb testing.TB, ns string, set map[string]string) []corev1.Pod {
	tb.Helper()
	return disrupt.PodsOf(tb, e.Client, ns, set)
}
