package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// hostPaths are the host directories the cluster's components create (the kubelet and the CNI plugins
// hard-code some of them); Down removes them.
var hostPaths = []string{"/var/lib/kubelet", "/var/lib/containerd", "/run/containerd", "/var/lib/cni/networks", "/var/log/pods", "/var/log/containers"}

// Down stops every process the cluster started (by PID, then any straggler that is provably its own)
// and removes everything it created. It works on a half-started or crashed cluster too, and on the
// leftovers of a run whose processes were killed. It fails, listing them, if any residue remains.
func Down(ctx context.Context, o Options) error {
	if err := o.defaults(); err != nil {
		return err
	}
	p := paths{o.StateDir}
	st, _ := readState(p)
	nodes := []Node{{Index: 1, Name: "node1"}}
	if st != nil && len(st.Nodes) > 0 {
		nodes = st.Nodes
	} else {
		// No state: look for extra-node namespaces left behind.
		for i := 2; i <= 4; i++ {
			if _, err := os.Stat("/run/netns/node" + strconv.Itoa(i)); err == nil {
				nodes = append(nodes, nodeFor(i, ""))
			}
		}
	}

	// Delete the workloads while the kubelets still run, so that CNI DEL releases every pod network.
	if _, ok := readPID(p, "kube-apiserver"); ok {
		drainWorkloads(ctx, p, o)
	}
	for _, n := range nodes {
		stopProc(p, n.proc(compProxy), 5*time.Second)
		stopProc(p, n.proc(compKubelet), 10*time.Second)
	}
	for _, c := range []string{"kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"} {
		stopProc(p, c, 10*time.Second)
	}
	for _, n := range nodes {
		stopProc(p, n.proc(compContainerd), 10*time.Second)
	}
	killStragglers(p)
	killPodProcesses(nodes)

	cleanupNetwork(ctx, nodes)
	var nodeDirs []string
	for _, n := range nodes {
		nodeDirs = append(nodeDirs, n.kind().layout(p).hostDirs()...)
	}
	unmountUnder(append([]string{"/run/netns/cni-", p.root}, nodeDirs...)...)
	for _, f := range globs("/run/netns/cni-*") {
		_ = os.Remove(f)
	}
	for _, n := range nodes {
		n.kind().remove(ctx)
	}
	if st != nil && st.MountedNetns && isMountPoint("/run/netns") {
		if entries, _ := os.ReadDir("/run/netns"); len(entries) == 0 {
			_, _ = run(ctx, "umount", "/run/netns")
		}
	}
	removeCgroups(nodes)
	removeGuard(ctx)
	for _, d := range traceInstances() { // a test process that died before removing its own (tcptrace)
		_ = os.Remove(d)
	}
	for _, d := range append(hostPaths, nodeDirs...) {
		_ = os.RemoveAll(d)
	}
	_ = os.RemoveAll(p.root)

	if r := Residue(); len(r) > 0 {
		return fmt.Errorf("cluster-down left residue:\n  %s", strings.Join(r, "\n  "))
	}
	o.Log("cluster down: nothing left behind")
	return nil
}

// drainWorkloads deletes every controller and pod and waits (bounded) for the pods to be gone.
func drainWorkloads(ctx context.Context, p paths, o Options) {
	client, err := Client(p.admin())
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	nss, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	zero := int64(0)
	for _, ns := range nss.Items {
		bg := metav1.DeletePropagationBackground
		opts := metav1.DeleteOptions{GracePeriodSeconds: &zero, PropagationPolicy: &bg}
		_ = client.AppsV1().Deployments(ns.Name).DeleteCollection(ctx, opts, metav1.ListOptions{})
		_ = client.AppsV1().StatefulSets(ns.Name).DeleteCollection(ctx, opts, metav1.ListOptions{})
		_ = client.AppsV1().DaemonSets(ns.Name).DeleteCollection(ctx, opts, metav1.ListOptions{})
		_ = client.AppsV1().ReplicaSets(ns.Name).DeleteCollection(ctx, opts, metav1.ListOptions{})
		_ = client.BatchV1().Jobs(ns.Name).DeleteCollection(ctx, opts, metav1.ListOptions{})
		_ = client.CoreV1().Pods(ns.Name).DeleteCollection(ctx, opts, metav1.ListOptions{})
	}
	err = Poll(ctx, 55*time.Second, 500*time.Millisecond, func() (bool, error) {
		pods, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		return err == nil && len(pods.Items) == 0, err
	})
	if err != nil {
		o.Log("some pods were not deleted in time (%v); cleaning up after them", err)
	}
}

// killStragglers kills processes that are provably the cluster's but are not in a PID file any more:
// component binaries from the build cache, our containerd instances and their shims.
func killStragglers(p paths) {
	var pids []int
	pids = append(pids, findProcs("/go-service/hk/")...)
	pids = append(pids, findProcs("containerd", "--config", p.root)...)
	pids = append(pids, findProcs("containerd-shim-runc-v2", "-address /run/containerd")...)
	for _, pid := range pids {
		killWait(pid, 2*time.Second)
	}
}

// killPodProcesses kills what still runs in the pods' cgroups (containers outlive a killed containerd).
func killPodProcesses(nodes []Node) {
	for _, dir := range podCgroups(nodes) {
		data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, l := range splitLines(string(data)) {
			if pid, err := strconv.Atoi(strings.TrimSpace(l)); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	time.Sleep(200 * time.Millisecond)
}

// podCgroups lists the cgroup directories of the pods (kubepods trees, and extra nodes' roots).
func podCgroups(nodes []Node) []string {
	var out []string
	for _, ctrl := range globs("/sys/fs/cgroup/*") {
		roots := []string{filepath.Join(ctrl, "kubepods"), filepath.Join(ctrl, "kubepods.slice")}
		for _, n := range nodes {
			if root := n.kind().layout(paths{}).CgroupRoot; root != "" {
				roots = append(roots, filepath.Join(ctrl, root))
			}
		}
		for _, r := range roots {
			_ = filepath.WalkDir(r, func(path string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					out = append(out, path)
				}
				return nil
			})
		}
	}
	return out
}

// removeCgroups removes the pods' cgroup trees, deepest first.
func removeCgroups(nodes []Node) {
	dirs := podCgroups(nodes)
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for _, d := range dirs {
		for i := 0; i < 20; i++ {
			if err := syscall.Rmdir(d); err == nil || os.IsNotExist(err) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// cleanupNetwork removes the iptables chains of kube-proxy, the kubelet and the CNI plugins (host and
// extra nodes) and the bridge. The extra nodes' veths, routes and namespaces go with nodeKind.remove.
func cleanupNetwork(ctx context.Context, nodes []Node) {
	netnss := []string{""}
	for _, n := range nodes {
		if _, err := os.Stat("/run/netns/" + n.Netns); n.Netns != "" && err == nil {
			netnss = append(netnss, n.Netns)
		}
	}
	for _, ns := range netnss {
		for _, ipt := range []string{"iptables", "ip6tables"} {
			for _, table := range []string{"filter", "nat", "mangle"} {
				removeChains(ctx, ns, ipt, table)
			}
		}
	}
	_, _ = run(ctx, "ip", "link", "del", "cni0")
}

// ownChain reports whether an iptables chain belongs to the cluster.
func ownChain(name string) bool {
	return strings.HasPrefix(name, "KUBE-") || strings.HasPrefix(name, "CNI-") || name == guardChain
}

// removeChains deletes the rules that jump to the cluster's chains, then the chains themselves.
func removeChains(ctx context.Context, netns, ipt, table string) {
	out, err := runIn(ctx, netns, ipt, "-w", "-t", table, "-S")
	if err != nil {
		return
	}
	var chains []string
	for _, l := range splitLines(out) {
		f := fields(l)
		if len(f) >= 2 && f[0] == "-N" && ownChain(f[1]) && f[1] != guardChain {
			chains = append(chains, f[1])
		}
	}
	for _, l := range splitLines(out) {
		f := fields(l)
		if len(f) < 2 || f[0] != "-A" || ownChain(f[1]) {
			continue
		}
		for i := range f {
			if (f[i] == "-j" || f[i] == "-g") && i+1 < len(f) && ownChain(f[i+1]) && f[i+1] != guardChain {
				_, _ = runIn(ctx, netns, ipt, append([]string{"-w", "-t", table, "-D"}, splitRule(l)[1:]...)...)
				break
			}
		}
	}
	for _, c := range chains {
		_, _ = runIn(ctx, netns, ipt, "-w", "-t", table, "-F", c)
	}
	for _, c := range chains {
		_, _ = runIn(ctx, netns, ipt, "-w", "-t", table, "-X", c)
	}
}

// splitRule splits one line of `iptables -S` output into arguments, undoing its quoting of comments
// ("..." with \" inside), so that the rule can be passed back to `iptables -D`.
func splitRule(line string) []string {
	var args []string
	var cur strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case inQuote && ch == '\\' && i+1 < len(line) && line[i+1] == '"':
			cur.WriteByte('"')
			i++
		case ch == '"':
			inQuote, have = !inQuote, true
		case ch == ' ' && !inQuote:
			if have || cur.Len() > 0 {
				args = append(args, cur.String())
			}
			cur.Reset()
			have = false
		default:
			cur.WriteByte(ch)
		}
	}
	if have || cur.Len() > 0 {
		args = append(args, cur.String())
	}
	return args
}

// unmountUnder unmounts every mount point under the prefixes, deepest first.
func unmountUnder(prefixes ...string) {
	for pass := 0; pass < 3; pass++ {
		var targets []string
		for _, m := range mounts() {
			for _, pre := range prefixes {
				if strings.HasPrefix(m, pre) {
					targets = append(targets, m)
					break
				}
			}
		}
		if len(targets) == 0 {
			return
		}
		sort.Slice(targets, func(i, j int) bool { return len(targets[i]) > len(targets[j]) })
		for _, t := range targets {
			if err := syscall.Unmount(t, 0); err != nil {
				_ = syscall.Unmount(t, syscall.MNT_DETACH)
			}
		}
	}
}

func globs(pattern string) []string {
	m, _ := filepath.Glob(pattern)
	return m
}

// Residue lists what a cluster left on this machine: processes, iptables chains, network namespaces,
// interfaces, mounts, cgroups and directories. Empty means clean.
func Residue() []string {
	var r []string
	for _, pid := range findProcs("/go-service/hk/") {
		r = append(r, fmt.Sprintf("process %d (cluster component)", pid))
	}
	for _, pid := range findProcs("containerd-shim-runc-v2", "-address /run/containerd") {
		r = append(r, fmt.Sprintf("process %d (containerd shim)", pid))
	}
	for _, pid := range findProcs("containerd", "--config", "/go-service/cluster/") {
		r = append(r, fmt.Sprintf("process %d (containerd)", pid))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, ipt := range []string{"iptables", "ip6tables"} {
		for _, table := range []string{"filter", "nat", "mangle"} {
			out, err := run(ctx, ipt, "-w", "-t", table, "-S")
			if err != nil {
				continue
			}
			for _, l := range splitLines(out) {
				if f := fields(l); len(f) >= 2 && f[0] == "-N" && ownChain(f[1]) {
					r = append(r, fmt.Sprintf("%s chain %s/%s", ipt, table, f[1]))
				}
			}
		}
	}
	for _, f := range append(globs("/run/netns/cni-*"), globs("/run/netns/node*")...) {
		r = append(r, "network namespace "+f)
	}
	for _, i := range append(globs("/sys/class/net/cni0"), globs("/sys/class/net/veth*")...) {
		r = append(r, "interface "+filepath.Base(i))
	}
	for _, m := range mounts() {
		for _, pre := range []string{"/var/lib/kubelet", "/run/containerd", "/var/lib/containerd", "/run/netns/cni-", DefaultStateDir} {
			if strings.HasPrefix(m, pre) {
				r = append(r, "mount "+m)
				break
			}
		}
	}
	for _, ctrl := range globs("/sys/fs/cgroup/*") {
		for _, d := range append(globs(ctrl+"/kubepods*"), globs(ctrl+"/node[0-9]")...) {
			r = append(r, "cgroup "+d)
		}
	}
	for _, d := range append([]string{DefaultStateDir}, hostPaths...) {
		if _, err := os.Stat(d); err == nil {
			r = append(r, "directory "+d)
		}
	}
	for _, d := range traceInstances() {
		r = append(r, "tracefs instance "+d)
	}
	return r
}

// traceInstances are the tracefs instances the kernel watchers (tcptrace) of test processes that are
// gone left behind; a running process's own (named for its PID) is its to remove.
func traceInstances(tracefs ...string) []string {
	if len(tracefs) == 0 {
		tracefs = []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}
	}
	var out []string
	var all []string
	for _, root := range tracefs {
		all = append(all, globs(root+"/instances/go-service-*")...)
	}
	for _, d := range all {
		pid := strings.TrimPrefix(filepath.Base(d), "go-service-")
		if _, err := os.Stat("/proc/" + pid); err == nil && pid != "" {
			continue
		}
		out = append(out, d)
	}
	return out
}
