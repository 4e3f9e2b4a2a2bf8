package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// An extra node runs in its own network namespace (veth to the host, its own pod subnet routed through
// it) with its own containerd, kubelet and kube-proxy. The three share a private mount namespace in
// which /var/log/pods and /var/log/containers (hard-coded in the kubelet) are the node's own.

func vethName(n Node) string { return "veth-" + n.Name }

// createNodeNetwork creates the namespace, the veth pair and the routes of an extra node.
func createNodeNetwork(ctx context.Context, n Node) error {
	steps := [][]string{
		{"ip", "netns", "add", n.Netns},
		{"ip", "link", "add", vethName(n), "type", "veth", "peer", "name", "eth0", "netns", n.Netns},
		{"ip", "addr", "add", n.gateway() + "/24", "dev", vethName(n)},
		{"ip", "link", "set", vethName(n), "up"},
		{"ip", "-n", n.Netns, "addr", "add", n.IP + "/24", "dev", "eth0"},
		{"ip", "-n", n.Netns, "link", "set", "eth0", "up"},
		{"ip", "-n", n.Netns, "link", "set", "lo", "up"},
		{"ip", "-n", n.Netns, "route", "add", "default", "via", n.gateway()},
		{"ip", "route", "add", n.PodCIDR, "via", n.IP},
	}
	for _, s := range steps {
		if _, err := run(ctx, s[0], s[1:]...); err != nil {
			return err
		}
	}
	if err := setSysctls(ctx, n.Netns); err != nil {
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
		if err := os.MkdirAll(filepath.Join(c, n.Name), 0o755); err != nil {
			return err
		}
	}
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		data, err := os.ReadFile("/sys/fs/cgroup/cpuset/" + f)
		if err != nil {
			continue
		}
		if err := os.WriteFile("/sys/fs/cgroup/cpuset/"+n.Name+"/"+f, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// startNetnsNode starts containerd, kubelet and kube-proxy of an extra node inside its network
// namespace and a private mount namespace, through a small launcher script (three processes must share
// the one mount namespace), then loads the pause image.
func startNetnsNode(ctx context.Context, p paths, n Node, hk, pauseTar string) error {
	dir := p.node(n.Name)
	for _, d := range []string{"logs-pods", "logs-containers", "containerd"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	for _, d := range []string{"/var/log/pods", "/var/log/containers", kubeletRoot(n)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	q := func(argv []string) string {
		parts := make([]string, len(argv))
		for i, a := range argv {
			parts[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		return strings.Join(parts, " ")
	}
	launch := func(name string, argv []string) string {
		return fmt.Sprintf("setsid %s </dev/null >>%s 2>&1 &\necho \"$!\" > %s\necho %s >> %s\n",
			q(argv), p.log(name), p.pid(name), q([]string{argv[0]}), p.pid(name))
	}
	for _, d := range []string{dirOf(p.log("x")), dirOf(p.pid("x"))} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	script := "#!/bin/sh\nset -e\n" +
		fmt.Sprintf("mount --bind %s/logs-pods /var/log/pods\nmount --bind %s/logs-containers /var/log/containers\n", dir, dir) +
		launch("containerd-"+n.Name, []string{"/usr/bin/containerd", "--config", dir + "/containerd.toml"}) +
		launch("kubelet-"+n.Name, kubeletArgv(p, n, hk)) +
		launch("kube-proxy-"+n.Name, []string{hk, "kube-proxy", "--config=" + dir + "/kube-proxy.yaml"})
	if err := writeFile(dir+"/launch.sh", []byte(script), 0o755); err != nil {
		return err
	}
	if _, err := run(ctx, "unshare", "-m", "--propagation", "slave", "nsenter", "--net=/run/netns/"+n.Netns, dir+"/launch.sh"); err != nil {
		return fmt.Errorf("%s: launch: %w", n.Name, err)
	}
	// The PID files are written by the launcher; the processes are real children of init now.
	for _, comp := range []string{"containerd-", "kubelet-", "kube-proxy-"} {
		err := Poll(ctx, 5*time.Second, 50*time.Millisecond, func() (bool, error) { // setsid execs the component
			_, ok := readPID(p, comp+n.Name)
			return ok, nil
		})
		if err != nil {
			return componentError(p, comp+n.Name, fmt.Errorf("not running after launch"))
		}
	}
	if err := waitContainerd(ctx, p, n); err != nil {
		return err
	}
	if err := loadImageNetns(ctx, n, pauseTar); err != nil {
		return componentError(p, "containerd-"+n.Name, err)
	}
	return nil
}

func loadImageNetns(ctx context.Context, n Node, tar string) error {
	_, err := run(ctx, "ctr", "--address", n.containerdSocket(), "-n", "k8s.io", "images", "import", tar)
	return err
}

// pidOf is readPID for callers that only need the number.
func pidOf(p paths, name string) string {
	if pid, ok := readPID(p, name); ok {
		return strconv.Itoa(pid)
	}
	return "-"
}
