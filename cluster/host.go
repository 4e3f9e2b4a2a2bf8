package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// aptPackages are the Debian packages the cluster runs on.
var aptPackages = []string{"containerd", "runc", "containernetworking-plugins", "iptables", "conntrack", "iproute2", "util-linux", "busybox-static"}

// ensurePackages installs the missing Debian packages (apt-get update first, only when something is
// missing).
func ensurePackages(ctx context.Context, log func(string, ...any)) error {
	var missing []string
	for _, p := range aptPackages {
		if out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${Status}", p).Output(); err != nil || !strings.Contains(string(out), "install ok installed") {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	log("installing %s with apt-get", strings.Join(missing, " "))
	if _, err := run(ctx, "apt-get", "update", "-qq"); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "apt-get", append([]string{"install", "-y", "-qq", "--no-install-recommends"}, missing...)...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get install %s: %w\n%s", strings.Join(missing, " "), err, out)
	}
	return nil
}

// sysctls the node network needs.
func setSysctls(ctx context.Context, netns string) error {
	if _, err := runIn(ctx, netns, "modprobe", "br_netfilter"); err != nil && netns == "" {
		// Built into the kernel on some machines: the sysctl below is what matters.
		_ = err
	}
	for k, v := range map[string]string{
		"net.ipv4.ip_forward":                 "1",
		"net.bridge.bridge-nf-call-iptables":  "1",
		"net.bridge.bridge-nf-call-ip6tables": "1",
	} {
		if _, err := runIn(ctx, netns, "sysctl", "-qw", k+"="+v); err != nil {
			return err
		}
	}
	return nil
}

// ensureNetnsMount makes /run/netns a shared mount point before containerd creates pod network
// namespaces there; otherwise a later `ip netns add` bind-mounts it over itself and hides them.
func ensureNetnsMount(ctx context.Context) error {
	if err := os.MkdirAll("/run/netns", 0o755); err != nil {
		return err
	}
	if isMountPoint("/run/netns") {
		return nil
	}
	if _, err := run(ctx, "mount", "--bind", "/run/netns", "/run/netns"); err != nil {
		return err
	}
	_, err := run(ctx, "mount", "--make-shared", "/run/netns")
	return err
}

// mounts returns the mount points of this process's mount namespace.
func mounts() []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	return mountPoints(string(data))
}

// mountPoints returns the mount points listed in a mountinfo file.
func mountPoints(mountinfo string) []string {
	var out []string
	for _, l := range splitLines(mountinfo) {
		if f := fields(l); len(f) > 4 {
			out = append(out, unescapeMount(f[4]))
		}
	}
	return out
}

// mountedIn reports whether target is a mount point in a mountinfo file.
func mountedIn(mountinfo, target string) bool {
	for _, m := range mountPoints(mountinfo) {
		if m == target {
			return true
		}
	}
	return false
}

func unescapeMount(s string) string { return strings.ReplaceAll(s, `\040`, " ") }

func isMountPoint(p string) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	return err == nil && mountedIn(string(data), p)
}

const containerdConfig = `version = 2
root = "{{.Root}}"
state = "{{.State}}"
[grpc]
  address = "{{.Socket}}"
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "{{.Pause}}"
    enable_unprivileged_ports = true
    # Without CAP_SYS_RESOURCE runc cannot lower oom_score_adj (-998 for sandboxes): clamp instead.
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
          Root = "{{.State}}/runc"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "{{.CNIDir}}"
  [plugins."io.containerd.internal.v1.opt"]
    path = "{{.Root}}/opt"
`

const cniConfig = `{
  "cniVersion": "1.0.0",
  "name": "go-service-{{.Name}}",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "{{.IPAMDir}}",
        "ranges": [[{"subnet": "{{.PodCIDR}}"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`
