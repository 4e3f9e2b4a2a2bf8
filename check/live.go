package check

import (
	"context"
	"fmt"
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
}

func (f *ClusterFacts) describeSync() string {
	if f.KubeProxyMinSync == nil {
		return "not readable (" + f.KubeProxySource + ")"
	}
	return f.KubeProxyMinSync.Duration.String() + " (" + f.KubeProxySource + ")"
}

// violations are the rules that need the cluster's facts: the preStop delay against kube-proxy's sync
// period, and a Service in front of the pods.
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
func readLive(ctx context.Context, kubeconfig, ns, name string) ([]runtime.Object, *ClusterFacts, error) {
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
	return objs, facts, nil
}
