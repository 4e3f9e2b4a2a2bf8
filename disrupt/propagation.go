package disrupt

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/go-service/go-service/internal/kubeproxy"
	"github.com/go-service/go-service/rules"
)

// Propagation is what one node's kube-proxy measured of its network programming while a run's load ran:
// how many endpoint changes it programmed (every Service's, not only the target's) and the bucket
// bounds of their lag, from the change to the node's rules. A preStop delay shorter than that lag
// leaves a terminating pod in some node's rules after it stopped serving.
type Propagation struct {
	Node    string        `json:"node"`
	Changes uint64        `json:"changes"`
	P50     time.Duration `json:"p50"` // the upper bound of the bucket holding the median
	P99     time.Duration `json:"p99"`
	Max     time.Duration `json:"max"`             // the upper bound of the highest bucket with a change
	Error   string        `json:"error,omitempty"` // why it could not be read
}

func (p Propagation) String() string {
	if p.Error != "" {
		return fmt.Sprintf("kube-proxy %s: not measured (%s)", p.Node, p.Error)
	}
	if p.Changes == 0 {
		return fmt.Sprintf("kube-proxy %s: no endpoint change programmed", p.Node)
	}
	return fmt.Sprintf("kube-proxy %s: %d endpoint changes programmed, lag p50 ≤ %s, p99 ≤ %s, max ≤ %s", p.Node, p.Changes, bound(p.P50), bound(p.P99), bound(p.Max))
}

func bound(d time.Duration) string {
	if d == time.Duration(math.MaxInt64) {
		return "∞"
	}
	return d.String()
}

// preStopOf describes how long the Deployment's first container keeps serving once its pod terminates,
// as its manifest states it (rules.Delay: "sleep 5s", "exec 5s", "in-app 5s (...)", "none"), that
// delay, and whether it is known.
func preStopOf(c kubernetes.Interface, ns, deployment string) (string, time.Duration, bool) {
	d, err := c.AppsV1().Deployments(ns).Get(context.Background(), deployment, metav1.GetOptions{})
	if err != nil {
		return "not read (" + err.Error() + ")", 0, false
	}
	if len(d.Spec.Template.Spec.Containers) == 0 {
		return "no container", 0, false
	}
	what, secs := rules.Delay(d.Spec.Template.Spec.Containers[0], rules.DefaultInAppDelayEnv)
	if secs < 0 {
		return what, 0, false
	}
	return what, time.Duration(secs) * time.Second, true
}

// outlasted says, for each node whose measured lag may have been longer than the pods' preStop delay,
// that a terminating pod could still be in that node's rules after it stopped serving.
func outlasted(prop []Propagation, what string, delay time.Duration) []string {
	var out []string
	for _, p := range prop {
		if p.Error == "" && p.Changes > 0 && p.Max > delay {
			out = append(out, fmt.Sprintf("kube-proxy on %s took up to %s to program an endpoint change during this run, longer than the pods' preStop delay (%s): a pod can still be in that node's rules after it stopped serving", p.Node, bound(p.Max), what))
		}
	}
	return out
}

// readProgramming reads every node's histogram named in urls (node → metrics URL); a node that cannot
// be read has no entry, and its error is kept.
func readProgramming(urls map[string]string) (map[string]kubeproxy.Programming, map[string]error) {
	got, errs := map[string]kubeproxy.Programming{}, map[string]error{}
	for node, url := range urls {
		p, err := kubeproxy.ReadProgramming(context.Background(), url)
		if err != nil {
			errs[node] = err
			continue
		}
		got[node] = p
	}
	return got, errs
}

// propagation compares the reads at the start and at the end of a run, node by node (sorted).
func propagation(urls map[string]string, before map[string]kubeproxy.Programming, beforeErrs map[string]error) []Propagation {
	after, afterErrs := readProgramming(urls)
	var out []Propagation
	for node := range urls {
		p := Propagation{Node: node}
		b, okB := before[node]
		a, okA := after[node]
		switch {
		case !okB:
			p.Error = beforeErrs[node].Error()
		case !okA:
			p.Error = afterErrs[node].Error()
		default:
			d, err := a.Since(b)
			if err != nil {
				p.Error = err.Error()
				break
			}
			p.Changes, p.P50, p.P99, p.Max = d.Count(), d.Quantile(0.5), d.Quantile(0.99), d.Quantile(1)
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Propagation) int { return strings.Compare(a.Node, b.Node) })
	return out
}
