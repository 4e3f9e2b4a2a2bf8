package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Node describes one node of the cluster (recorded in the state file).
type Node struct {
	Index   int    // 1-based
	Name    string // node1, node2...
	IP      string // the host's address for node1, 10.250.N.2 for the others
	PodCIDR string // 10.244.(N-1).0/24
	Netns   string // "" for node1
}

func nodeFor(i int, hostIP string) Node {
	n := Node{Index: i, Name: fmt.Sprintf("node%d", i), PodCIDR: fmt.Sprintf("10.244.%d.0/24", i-1)}
	if i == 1 {
		n.IP = hostIP
	} else {
		n.IP = fmt.Sprintf("10.250.%d.2", i)
		n.Netns = n.Name
	}
	return n
}

// The components every node runs, in the order they start.
const (
	compContainerd = "containerd"
	compKubelet    = "kubelet"
	compProxy      = "kube-proxy"
)

var nodeComponents = []string{compContainerd, compKubelet, compProxy}

// proc names one of the node's component processes: its PID file, its log and (for the kubelet) its
// certificate and kubeconfig are named after it.
func (n Node) proc(component string) string { return component + "-" + n.Name }

// proxyMetricsAddr is where the node's kube-proxy serves its metrics: loopback for node 1 (on the
// host), the node's own address for the others, which only this machine can reach (through the node's
// veth).
func (n Node) proxyMetricsAddr() string {
	if n.Netns == "" {
		return "127.0.0.1:10249"
	}
	return n.IP + ":10249"
}

// ProxyMetricsURL is the node's kube-proxy metrics page (its network programming latency among them).
func (n Node) ProxyMetricsURL() string { return "http://" + n.proxyMetricsAddr() + "/metrics" }

// gateway is the host side of an extra node's veth link.
func (n Node) gateway() string { return fmt.Sprintf("10.250.%d.1", n.Index) }

// containerdSocket is the node's containerd (CRI) socket.
func (n Node) containerdSocket() string { return n.kind().layout(paths{}).socket() }

// kind returns where the node's components run.
func (n Node) kind() nodeKind {
	if n.Netns == "" {
		return hostNode{n}
	}
	return netnsNode{n}
}

// A nodeKind is where a node's components run: node 1 on the host (hostNode), node 2 and up each in a
// network namespace of its own, with a private mount namespace shared by its three processes
// (netnsNode). Everything that differs between the two is here; the rest of the harness treats every
// node alike.
type nodeKind interface {
	// layout is where the node keeps its containerd data and socket, kubelet data, pod IPs and pods'
	// cgroups.
	layout(p paths) nodeLayout
	// prepare creates what the node needs before its containerd starts (network namespace, veth,
	// routes, sysctls, cgroup root, private directories).
	prepare(ctx context.Context, p paths) error
	// command wraps a component's argv so that it runs inside the node. containerd, which starts first,
	// sets up the node's mount namespace; the kubelet and kube-proxy join it.
	command(p paths, component string, argv []string) ([]string, error)
	// kubeletPrereqs says what the kubelet needs that is not there yet: network namespace, mounts, CNI
	// configuration. nil when it can start.
	kubeletPrereqs(p paths) error
	// remove deletes what prepare created outside the state directory (best effort: Residue reports
	// what is left).
	remove(ctx context.Context)
}

// nodeLayout is where a node keeps its data on the host.
type nodeLayout struct {
	ContainerdRoot  string // images, snapshots
	ContainerdState string // socket, runc state
	IPAMDir         string // host-local IPAM's allocations
	KubeletRoot     string
	CgroupRoot      string // "" for the host's default
}

func (l nodeLayout) socket() string { return l.ContainerdState + "/containerd.sock" }

// hostDirs are the directories outside the state directory that the node's components create; Down
// unmounts what is under them and removes them.
func (l nodeLayout) hostDirs() []string {
	return []string{l.KubeletRoot, l.ContainerdState, l.ContainerdRoot, l.IPAMDir}
}

// cniConfigs are the files of the node's CNI configuration (written by writeNodeConfig).
var cniConfigs = []string{"cni/10-bridge.conflist", "cni/99-loopback.conf"}

func cniPrereqs(p paths, n Node) error {
	for _, f := range cniConfigs {
		if _, err := os.Stat(filepath.Join(p.node(n.Name), f)); err != nil {
			return fmt.Errorf("CNI configuration: %w", err)
		}
	}
	return nil
}

// hostNode is node 1: its components run on the host, in the host's namespaces, with the paths the
// kubelet and containerd use by default.
type hostNode struct{ Node }

func (hostNode) layout(paths) nodeLayout {
	return nodeLayout{ContainerdRoot: "/var/lib/containerd", ContainerdState: "/run/containerd",
		IPAMDir: "/var/lib/cni/networks", KubeletRoot: "/var/lib/kubelet"}
}

func (hostNode) prepare(context.Context, paths) error { return nil } // the host's network is set up once, for all

func (hostNode) command(_ paths, _ string, argv []string) ([]string, error) { return argv, nil }

func (h hostNode) kubeletPrereqs(p paths) error { return cniPrereqs(p, h.Node) }

func (hostNode) remove(context.Context) {}

// netnsNode is node 2 and up: a network namespace with a veth link to the host and its own pod subnet
// routed through it; its own containerd, kubelet and kube-proxy in a private mount namespace in which
// /var/log/pods and /var/log/containers (hard-coded in the kubelet) are the node's own.
type netnsNode struct{ Node }

func (x netnsNode) layout(p paths) nodeLayout {
	return nodeLayout{ContainerdRoot: p.node(x.Name) + "/containerd", ContainerdState: "/run/containerd-" + x.Name,
		IPAMDir: p.node(x.Name) + "/ipam", KubeletRoot: "/var/lib/kubelet-" + x.Name, CgroupRoot: "/" + x.Name}
}

func (x netnsNode) vethName() string  { return "veth-" + x.Name }
func (x netnsNode) netnsPath() string { return "/run/netns/" + x.Netns }

// privateDirs are the paths the kubelet hard-codes whatever its --root-dir, each bind-mounted over the
// host's inside the node's mount namespace with a directory of the node's own: /var/log/pods and
// /var/log/containers, and the device-plugin directory, in which every kubelet clears stale sockets
// and then binds its own (two kubelets sharing it race: "bind: address already in use").
func (x netnsNode) privateDirs(p paths) map[string]string {
	return map[string]string{
		"/var/log/pods":                   p.node(x.Name) + "/logs-pods",
		"/var/log/containers":             p.node(x.Name) + "/logs-containers",
		"/var/lib/kubelet/device-plugins": p.node(x.Name) + "/device-plugins",
	}
}

func (x netnsNode) prepare(ctx context.Context, p paths) error {
	steps := [][]string{
		{"ip", "netns", "add", x.Netns},
		{"ip", "link", "add", x.vethName(), "type", "veth", "peer", "name", "eth0", "netns", x.Netns},
		{"ip", "addr", "add", x.gateway() + "/24", "dev", x.vethName()},
		{"ip", "link", "set", x.vethName(), "up"},
		{"ip", "-n", x.Netns, "addr", "add", x.IP + "/24", "dev", "eth0"},
		{"ip", "-n", x.Netns, "link", "set", "eth0", "up"},
		{"ip", "-n", x.Netns, "link", "set", "lo", "up"},
		{"ip", "-n", x.Netns, "route", "add", "default", "via", x.gateway()},
		{"ip", "route", "add", x.PodCIDR, "via", x.IP},
	}
	for _, s := range steps {
		if _, err := run(ctx, s[0], s[1:]...); err != nil {
			return err
		}
	}
	if err := setSysctls(ctx, x.Netns); err != nil {
		return err
	}
	// The node's cgroup root (cgroupfs driver, cgroup v1).
	ctrls, err := filepath.Glob("/sys/fs/cgroup/*")
	if err != nil {
		return err
	}
	for _, c := range ctrls {
		if filepath.Base(c) == "unified" {
			continue
		}
		if err := os.MkdirAll(filepath.Join(c, x.Name), 0o755); err != nil {
			return err
		}
	}
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		data, err := os.ReadFile("/sys/fs/cgroup/cpuset/" + f)
		if err != nil {
			continue
		}
		if err := os.WriteFile("/sys/fs/cgroup/cpuset/"+x.Name+"/"+f, data, 0o644); err != nil {
			return err
		}
	}
	l := x.layout(p)
	dirs := []string{l.ContainerdRoot, l.KubeletRoot}
	for target, src := range x.privateDirs(p) {
		dirs = append(dirs, target, src)
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// command runs containerd in a new mount namespace (slave propagation, the node's private directories
// bind-mounted) inside the node's network namespace; the kubelet and kube-proxy join containerd's mount
// namespace and the network namespace. Each wrapper execs the next, so the PID is the component's.
func (x netnsNode) command(p paths, component string, argv []string) ([]string, error) {
	if component == compContainerd {
		var mounts []string
		for target, src := range x.privateDirs(p) {
			mounts = append(mounts, fmt.Sprintf("mount --bind '%s' '%s'", src, target))
		}
		script := strings.Join(mounts, " && ") + ` && exec "$@"`
		return append([]string{"unshare", "-m", "--propagation", "slave", "nsenter", "--net=" + x.netnsPath(), "sh", "-c", script, "sh"}, argv...), nil
	}
	pid, ok := procAlive(p, x.proc(compContainerd))
	if !ok {
		return nil, fmt.Errorf("%s is not running: its mount namespace is where %s must run", x.proc(compContainerd), x.proc(component))
	}
	return append([]string{"nsenter", "--mount=/proc/" + strconv.Itoa(pid) + "/ns/mnt", "--net=" + x.netnsPath(), "--"}, argv...), nil
}

func (x netnsNode) kubeletPrereqs(p paths) error {
	if !isMountPoint(x.netnsPath()) {
		return fmt.Errorf("network namespace %s is not mounted", x.netnsPath())
	}
	if _, err := os.Stat("/sys/fs/cgroup/cpu/" + x.Name); err != nil {
		return fmt.Errorf("cgroup root: %w", err)
	}
	pid, ok := procAlive(p, x.proc(compContainerd))
	if !ok {
		return fmt.Errorf("%s is not running", x.proc(compContainerd))
	}
	mountinfo, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/mountinfo")
	if err != nil {
		return fmt.Errorf("mounts of %s: %w", x.proc(compContainerd), err)
	}
	for target := range x.privateDirs(p) {
		if !mountedIn(string(mountinfo), target) {
			return fmt.Errorf("%s is not mounted in the node's mount namespace", target)
		}
	}
	return cniPrereqs(p, x.Node)
}

func (x netnsNode) remove(ctx context.Context) {
	_, _ = run(ctx, "ip", "route", "del", x.PodCIDR)
	_, _ = run(ctx, "ip", "link", "del", x.vethName())
	_, _ = run(ctx, "ip", "netns", "del", x.Netns)
}

// errNotRunning is returned by the waits when the process they wait on has exited.
var errNotRunning = errors.New("process exited")
