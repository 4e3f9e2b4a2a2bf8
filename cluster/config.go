// Package cluster runs a real, local Kubernetes cluster for the live tests: upstream kube-apiserver,
// kube-controller-manager, kube-scheduler, kubelet, kube-proxy and etcd (one multi-call binary built from
// the module in cluster/hk), on Debian's containerd, runc and CNI plugins, with one node on the host and
// optional extra nodes in their own network namespaces. No Docker, no registry, no download.
//
// Everything it creates is recorded under the state directory and removed by Down: processes (by PID),
// iptables chains, routes, interfaces, network namespaces, mounts, cgroups and state directories.
package cluster

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// KubernetesVersion is the version of every component (cluster/hk/go.mod pins it).
const KubernetesVersion = "v1.34.4"

// Network layout. All of it stays on this machine: see guard.go.
const (
	ServiceCIDR   = "10.96.0.0/16"
	APIServiceIP  = "10.96.0.1"
	ClusterCIDR   = "10.244.0.0/16"
	NodeNetCIDR   = "10.250.0.0/16" // veth links of the extra nodes' network namespaces
	NodePortRange = "30000-32767"
)

// DefaultStateDir holds the cluster's state, logs and kubeconfig.
const DefaultStateDir = "/var/lib/go-service/cluster"

// DefaultKubeconfig is where Up writes the admin kubeconfig.
const DefaultKubeconfig = DefaultStateDir + "/kubeconfig"

// Options configure a cluster.
type Options struct {
	// StateDir defaults to DefaultStateDir.
	StateDir string
	// CacheDir holds the built component binary and images, keyed by their sources and the Go version
	// (default: $XDG_CACHE_HOME/go-service or ~/.cache/go-service).
	CacheDir string
	// Nodes is the number of nodes (default 1). Node 1 runs on the host; node N>1 in netns "nodeN".
	Nodes int
	// ProxyMinSyncPeriod is kube-proxy's iptables minSyncPeriod (default 1s): the endpoint propagation
	// lag the chart's preStop delay must cover.
	ProxyMinSyncPeriod string
	// Log receives progress lines (default: stderr).
	Log func(format string, args ...any)
}

func (o *Options) defaults() error {
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir
	}
	if o.CacheDir == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return err
			}
			base = filepath.Join(home, ".cache")
		}
		o.CacheDir = filepath.Join(base, "go-service")
	}
	if o.Nodes == 0 {
		o.Nodes = 1
	}
	if o.Nodes < 1 || o.Nodes > 4 {
		return fmt.Errorf("nodes: %d is out of range (1 to 4)", o.Nodes)
	}
	if o.ProxyMinSyncPeriod == "" {
		o.ProxyMinSyncPeriod = "1s"
	}
	if o.Log == nil {
		o.Log = func(format string, args ...any) { fmt.Fprintf(os.Stderr, "cluster: "+format+"\n", args...) }
	}
	return nil
}

// paths of the state directory.
type paths struct{ root string }

func (p paths) pki(f string) string { return filepath.Join(p.root, "pki", f) }
func (p paths) kubeconfig(n string) string {
	return filepath.Join(p.root, "kubeconfigs", n+".kubeconfig")
}
func (p paths) log(n string) string  { return filepath.Join(p.root, "logs", n+".log") }
func (p paths) pid(n string) string  { return filepath.Join(p.root, "pids", n+".pid") }
func (p paths) etcd() string         { return filepath.Join(p.root, "etcd") }
func (p paths) node(n string) string { return filepath.Join(p.root, "nodes", n) }
func (p paths) admin() string        { return filepath.Join(p.root, "kubeconfig") }
func (p paths) stateFile() string    { return filepath.Join(p.root, "cluster.json") }

// hostIPv4 returns the IPv4 address and interface of the default route.
func hostIPv4() (ip, iface string, err error) {
	data, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return "", "", err
	}
	var lines [][]string
	for _, l := range splitLines(string(data))[1:] {
		lines = append(lines, fields(l))
	}
	for _, f := range lines {
		if len(f) > 2 && f[1] == "00000000" {
			iface = f[0]
			break
		}
	}
	if iface == "" {
		return "", "", fmt.Errorf("no default route in /proc/net/route")
	}
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return "", "", err
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return "", "", err
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			return ipn.IP.String(), iface, nil
		}
	}
	return "", "", fmt.Errorf("interface %s of the default route has no IPv4 address", iface)
}
