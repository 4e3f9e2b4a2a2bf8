package check

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/go-service/go-service/internal/kubeproxy"
	"github.com/go-service/go-service/rules"
)

// ClusterFacts are what --live reads from the cluster besides the release's objects.
type ClusterFacts struct {
	// Version is the API server's version, e.g. "1.34.4".
	Version string `json:"version"`
	// KubeProxyMinSync is kube-proxy's minimum sync period (iptables or nftables), when readable; the
	// preStop delay has to outlast it for an endpoint's removal to reach every node first.
	KubeProxyMinSync *metav1.Duration `json:"kubeProxyMinSyncPeriod,omitempty"`
	// KubeProxySource says where the sync period was read, or why it could not be.
	KubeProxySource string `json:"kubeProxySource"`
	// Services lists the Services that select the Deployment's pods.
	Services []string `json:"services"`
	// Propagation is each node's endpoint propagation lag as its kube-proxy measured it since it
	// started (kubeproxy_network_programming_duration_seconds), and RecommendedDelay the preStop delay
	// it asks for: the largest p99 of those nodes, plus a second, in whole seconds.
	Propagation      []NodeLag        `json:"propagation"`
	RecommendedDelay *metav1.Duration `json:"recommendedPreStopDelay,omitempty"`
	// Unbounded names the nodes whose p99 lies past their histogram's last bucket: no delay can be
	// recommended for them.
	Unbounded []string `json:"unbounded,omitempty"`
}

// NodeLag is one node's endpoint propagation lag, as bucket bounds of its kube-proxy's histogram.
type NodeLag struct {
	Node    string           `json:"node"`
	Source  string           `json:"source"`
	Changes uint64           `json:"changes"`
	P50     *metav1.Duration `json:"p50,omitempty"`
	P99     *metav1.Duration `json:"p99,omitempty"`
	Error   string           `json:"error,omitempty"`
}

// String is the node's line of the text report.
func (l NodeLag) String() string {
	switch {
	case l.Error != "":
		return fmt.Sprintf("%s: not measured (%s)", l.Node, l.Error)
	case l.Changes == 0:
		return fmt.Sprintf("%s: no endpoint change programmed yet (%s)", l.Node, l.Source)
	}
	return fmt.Sprintf("%s: %d endpoint changes programmed since kube-proxy started, lag p50 ≤ %s, p99 ≤ %s (%s)", l.Node, l.Changes, bound(l.P50.Duration), bound(l.P99.Duration), l.Source)
}

// bound prints a bucket bound, +Inf past the histogram's last finite bucket.
func bound(d time.Duration) string {
	if d == time.Duration(math.MaxInt64) {
		return "+Inf"
	}
	return d.String()
}

// measureLag reads every node's kube-proxy histogram: from urls (node → metrics URL) when given, else
// through the API server's node proxy on kube-proxy's metrics port, and recommends a delay from it.
func (f *ClusterFacts) measureLag(ctx context.Context, cs kubernetes.Interface, urls map[string]string) {
	nodes := slices.Sorted(maps.Keys(urls))
	var listed []string
	if cs != nil {
		list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			f.Propagation = append(f.Propagation, NodeLag{Node: "(every node)", Error: fmt.Sprintf("cannot list the nodes (%v): give each node's kube-proxy page with --proxy-metrics NODE=URL", err)})
		}
		if list != nil {
			for _, n := range list.Items {
				listed = append(listed, n.Name)
			}
		}
	}
	for _, n := range listed {
		if !slices.Contains(nodes, n) {
			nodes = append(nodes, n)
		}
	}
	var worst time.Duration
	for _, node := range nodes {
		l := NodeLag{Node: node}
		var p kubeproxy.Programming
		var err error
		if url, ok := urls[node]; ok {
			l.Source = url
			p, err = kubeproxy.ReadProgramming(ctx, url)
		} else if len(urls) > 0 {
			l.Source, err = "--proxy-metrics", fmt.Errorf("no --proxy-metrics page given for this node")
		} else {
			path := fmt.Sprintf("/api/v1/nodes/%s:%d/proxy/metrics", node, kubeproxy.MetricsPort)
			l.Source = "the API server's node proxy, " + path
			var data []byte
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			data, err = cs.CoreV1().RESTClient().Get().AbsPath(path).DoRaw(rctx)
			cancel()
			if err != nil {
				err = fmt.Errorf("%s: %w", path, err)
			}
			if err == nil {
				p, err = kubeproxy.ParseProgramming(bytes.NewReader(data))
			}
		}
		if err != nil {
			l.Error = fmt.Sprintf("%v; kube-proxy serves its metrics on 127.0.0.1:%d unless its metricsBindAddress says otherwise: give each node's page with --proxy-metrics NODE=URL", err, kubeproxy.MetricsPort)
		} else if l.Changes = p.Count(); l.Changes > 0 {
			l.P50, l.P99 = &metav1.Duration{Duration: p.Quantile(0.5)}, &metav1.Duration{Duration: p.Quantile(0.99)}
			if l.P99.Duration == time.Duration(math.MaxInt64) {
				f.Unbounded = append(f.Unbounded, node)
			} else {
				worst = max(worst, l.P99.Duration)
			}
		}
		f.Propagation = append(f.Propagation, l)
	}
	if worst > 0 {
		rec := (worst + time.Second + time.Second - 1).Truncate(time.Second)
		f.RecommendedDelay = &metav1.Duration{Duration: rec}
	}
}

func (f *ClusterFacts) describeSync() string {
	if f.KubeProxyMinSync == nil {
		return "not readable (" + f.KubeProxySource + ")"
	}
	return f.KubeProxyMinSync.Duration.String() + " (" + f.KubeProxySource + ")"
}

// violations are the rules that need the cluster's facts: the delay against the propagation lag the
// kube-proxies measured and against kube-proxy's sync period, and a Service in front of the pods.
func (f *ClusterFacts) violations(objs []runtime.Object) []rules.Violation {
	var out []rules.Violation
	for _, o := range objs {
		d, ok := o.(*appsv1.Deployment)
		if !ok {
			continue
		}
		name := "Deployment/" + d.Namespace + "/" + d.Name
		if len(f.Services) == 0 {
			out = append(out, rules.Violation{Rule: "cluster.service", Object: name, Field: "spec.template.metadata.labels",
				Message: "no Service selects the pods: nothing here routes traffic to them, so there is nothing to keep up",
				Fix:     "Check the Service's selector against the pod labels"})
		}
		if len(f.Unbounded) > 0 {
			out = append(out, rules.Violation{Rule: "cluster.measured-lag", Object: name, Field: "spec.template.spec.containers[*].lifecycle.preStop",
				Message: fmt.Sprintf("kube-proxy on %s took longer than its histogram's last bucket to program 1%% or more of its endpoint changes: no preStop delay can be shown to cover that", strings.Join(f.Unbounded, ", ")),
				Fix:     "Find out why (kube-proxy's sync period, its CPU, the API server's load) before relying on any preStop delay"})
		}
		if f.RecommendedDelay != nil {
			for _, c := range d.Spec.Template.Spec.Containers {
				what, secs := rules.Delay(c, rules.DefaultInAppDelayEnv)
				// No delay at all is the offline rule shutdown.prestop's finding already.
				if len(c.Ports) == 0 || secs <= 0 || time.Duration(secs)*time.Second >= f.RecommendedDelay.Duration {
					continue
				}
				out = append(out, rules.Violation{Rule: "cluster.measured-lag", Object: name,
					Field:   fmt.Sprintf("spec.template.spec.containers[%s].lifecycle.preStop", c.Name),
					Message: fmt.Sprintf("the container keeps serving %ds after its pod starts terminating (%s), but this cluster's kube-proxies took up to %s (p99 since they started) to program an endpoint change: a node can still send new connections to a pod that stopped accepting", secs, what, f.RecommendedDelay.Duration-time.Second),
					Fix:     fmt.Sprintf("Raise shutdown.preStop.delaySeconds (or the app's delay) to %d", int64(f.RecommendedDelay.Duration/time.Second))})
			}
		}
		if f.KubeProxyMinSync == nil {
			continue
		}
		need := f.KubeProxyMinSync.Duration + time.Second
		for _, c := range d.Spec.Template.Spec.Containers {
			if len(c.Ports) == 0 {
				continue
			}
			if _, secs := rules.PreStop(c); secs >= 0 && time.Duration(secs)*time.Second < need {
				out = append(out, rules.Violation{Rule: "cluster.propagation", Object: name,
					Field:   fmt.Sprintf("spec.template.spec.containers[%s].lifecycle.preStop", c.Name),
					Message: fmt.Sprintf("the preStop delay (%ds) does not outlast kube-proxy's minSyncPeriod (%s) by a second: a node can still send new connections to a pod that stopped accepting", secs, f.KubeProxyMinSync.Duration),
					Fix:     fmt.Sprintf("Raise the preStop delay to %s or more", need.Round(time.Second))})
			}
		}
	}
	return out
}

// readLive reads a Deployment and what concerns it (its HPA, the budgets in its namespace) and the
// cluster's facts.
func readLive(ctx context.Context, kubeconfig, ns, name string, proxyMetrics map[string]string) ([]runtime.Object, *ClusterFacts, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		return nil, nil, fmt.Errorf("the cluster does not answer: %w", err)
	}
	facts := &ClusterFacts{Version: strings.TrimPrefix(strings.SplitN(v.GitVersion, "+", 2)[0], "v"), Services: []string{}}

	d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil, fmt.Errorf("deployment %s/%s: %w", ns, name, errNotFound)
	}
	if err != nil {
		return nil, nil, err
	}
	// The rules tell kinds apart by type, so the objects need no TypeMeta.
	objs := []runtime.Object{d}
	hpas, err := cs.AutoscalingV2().HorizontalPodAutoscalers(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, err
	}
	for i := range hpas.Items {
		objs = append(objs, &hpas.Items[i])
	}
	pdbs, err := cs.PolicyV1().PodDisruptionBudgets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, err
	}
	for i := range pdbs.Items {
		objs = append(objs, &pdbs.Items[i])
	}
	svcs, err := cs.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, err
	}
	for _, s := range svcs.Items {
		if len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
			facts.Services = append(facts.Services, s.Name)
		}
	}
	facts.KubeProxyMinSync, facts.KubeProxySource = kubeproxy.MinSync(ctx, cs)
	facts.measureLag(ctx, cs, proxyMetrics)
	return objs, facts, nil
}
