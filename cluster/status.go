package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// healthy returns the running cluster when it matches the options and every component is up.
func healthy(ctx context.Context, o Options) (*Cluster, error) {
	p := paths{o.StateDir}
	st, err := readState(p)
	if err != nil {
		return nil, errors.New("no cluster state")
	}
	if len(st.Nodes) != o.Nodes {
		return nil, fmt.Errorf("it has %d node(s), %d asked for", len(st.Nodes), o.Nodes)
	}
	if st.ProxyMinSyncPeriod != o.ProxyMinSyncPeriod {
		return nil, fmt.Errorf("its kube-proxy minSyncPeriod is %s, %s asked for", st.ProxyMinSyncPeriod, o.ProxyMinSyncPeriod)
	}
	if hostIP, _, err := hostIPv4(); err != nil || hostIP != st.HostIP {
		return nil, fmt.Errorf("the host address changed (%s)", st.HostIP)
	}
	if _, err := os.Stat(st.Binary); err != nil {
		return nil, fmt.Errorf("component binary %s is gone", st.Binary)
	}
	if want, err := buildKey(ctx); err == nil && !strings.Contains(st.Binary, "/"+want+"/") {
		return nil, errors.New("the component sources changed")
	}
	for _, comp := range components(st.Nodes) {
		if _, ok := readPID(p, comp); !ok {
			return nil, fmt.Errorf("%s is not running", comp)
		}
	}
	c := &Cluster{Kubeconfig: p.admin(), HostIP: st.HostIP, Nodes: st.Nodes, Binary: st.Binary}
	client, err := Client(c.Kubeconfig)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil || string(body) != "ok" {
		return nil, fmt.Errorf("kube-apiserver is not ready: %v", err)
	}
	for _, n := range st.Nodes {
		node, err := client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		ready := false
		for _, cond := range node.Status.Conditions {
			ready = ready || (cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue)
		}
		if !ready {
			return nil, fmt.Errorf("node %s is not Ready", n.Name)
		}
	}
	dns, err := client.AppsV1().Deployments(metav1.NamespaceSystem).Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil || dns.Status.ReadyReplicas < 1 {
		return nil, fmt.Errorf("cluster DNS (coredns) is not ready: %v", err)
	}
	if err := metricsServed(ctx, client, len(st.Nodes)); err != nil {
		return nil, fmt.Errorf("resource metrics: %w", err)
	}
	return c, nil
}

// components lists the process names of a cluster.
func components(nodes []Node) []string {
	out := []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}
	for _, n := range nodes {
		for _, c := range nodeComponents {
			out = append(out, n.proc(c))
		}
	}
	return out
}

// Status describes the cluster: each component's PID, the nodes, and whether it is healthy.
func Status(ctx context.Context, o Options) (string, bool) {
	if err := o.defaults(); err != nil {
		return err.Error(), false
	}
	p := paths{o.StateDir}
	st, err := readState(p)
	if err != nil {
		if r := Residue(); len(r) > 0 {
			return "no cluster, but residue of one:\n  " + strings.Join(r, "\n  "), false
		}
		return "no cluster", false
	}
	o.Nodes = len(st.Nodes)
	o.ProxyMinSyncPeriod = st.ProxyMinSyncPeriod
	var b strings.Builder
	fmt.Fprintf(&b, "Kubernetes %s, %d node(s), host %s, started %s\nkubeconfig: %s\n", KubernetesVersion, len(st.Nodes), st.HostIP,
		st.Started.Format(time.RFC3339), p.admin())
	for _, comp := range components(st.Nodes) {
		pid, state := "-", "NOT RUNNING (log: "+p.log(comp)+")"
		if n, ok := readPID(p, comp); ok {
			pid, state = strconv.Itoa(n), "running"
		}
		fmt.Fprintf(&b, "  %-26s pid %-8s %s\n", comp, pid, state)
	}
	if n, err := GuardRejected(ctx); err == nil {
		fmt.Fprintf(&b, "egress guard: installed, %d packet(s) rejected\n", n)
	} else {
		fmt.Fprintf(&b, "egress guard: MISSING (%v)\n", err)
	}
	if mem, _, err := Memory(o); err == nil {
		b.WriteString("memory (PSS):\n" + mem)
	}
	_, err = healthy(ctx, o)
	if err != nil {
		fmt.Fprintf(&b, "unhealthy: %v\n", err)
		return b.String(), false
	}
	b.WriteString("healthy\n")
	return b.String(), true
}
