// Package kubeproxy reads what a cluster says about its kube-proxy: the minimum sync period, the lag
// between an endpoint change and the node rules that a preStop delay has to outlast.
package kubeproxy

import (
	"context"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// MinSync reads kube-proxy's minimum sync period from where kubeadm-style clusters keep it: the
// kube-system/kube-proxy ConfigMap's KubeProxyConfiguration, or the --iptables-min-sync-period flag of
// its pods. It says where it looked when it finds nothing.
func MinSync(ctx context.Context, cs kubernetes.Interface) (*metav1.Duration, string) {
	cm, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{})
	if err == nil {
		for key, data := range cm.Data {
			var c struct {
				IPTables struct {
					MinSyncPeriod *metav1.Duration `json:"minSyncPeriod"`
				} `json:"iptables"`
				NFTables struct {
					MinSyncPeriod *metav1.Duration `json:"minSyncPeriod"`
				} `json:"nftables"`
				Mode string `json:"mode"`
			}
			if yaml.Unmarshal([]byte(data), &c) != nil {
				continue
			}
			p := c.IPTables.MinSyncPeriod
			if c.Mode == "nftables" {
				p = c.NFTables.MinSyncPeriod
			}
			if p != nil {
				return p, "ConfigMap kube-system/kube-proxy, " + key
			}
		}
	}
	pods, err := cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=kube-proxy"})
	if err == nil {
		for _, p := range pods.Items {
			for _, c := range p.Spec.Containers {
				if d, ok := flagDuration(append(append([]string{}, c.Command...), c.Args...), "--iptables-min-sync-period"); ok {
					return &metav1.Duration{Duration: d}, "flag of pod kube-system/" + p.Name
				}
			}
		}
	}
	return nil, "no kube-system/kube-proxy ConfigMap with a minSyncPeriod and no kube-proxy pod with --iptables-min-sync-period; kube-proxy may run outside the cluster's API"
}

func flagDuration(args []string, name string) (time.Duration, bool) {
	for i, a := range args {
		v, ok := strings.CutPrefix(a, name+"=")
		if !ok && a == name && i+1 < len(args) {
			v, ok = args[i+1], true
		}
		if ok {
			if d, err := time.ParseDuration(v); err == nil {
				return d, true
			}
		}
	}
	return 0, false
}
