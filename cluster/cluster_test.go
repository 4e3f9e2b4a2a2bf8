package cluster

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNodeLayout(t *testing.T) {
	t.Parallel()
	n1, n2 := nodeFor(1, "192.0.2.2"), nodeFor(2, "192.0.2.2")
	assert.Equal(t, Node{Index: 1, Name: "node1", IP: "192.0.2.2", PodCIDR: "10.244.0.0/24"}, n1)
	assert.Equal(t, Node{Index: 2, Name: "node2", IP: "10.250.2.2", PodCIDR: "10.244.1.0/24", Netns: "node2"}, n2)
	assert.Equal(t, "10.250.2.1", n2.gateway())
	assert.Equal(t, "/run/containerd/containerd.sock", n1.containerdSocket())
	assert.Equal(t, "/run/containerd-node2/containerd.sock", n2.containerdSocket())
	assert.Equal(t, "/var/lib/kubelet-node2", n2.kind().layout(paths{"/s"}).KubeletRoot)
	assert.Equal(t, "kubelet-node2", n2.proc(compKubelet))
}

func TestOwnChains(t *testing.T) {
	t.Parallel()
	for _, c := range []string{"KUBE-SERVICES", "KUBE-FIREWALL", "CNI-abc123", guardChain} {
		assert.True(t, ownChain(c), c)
	}
	for _, c := range []string{"INPUT", "DOCKER", "f2b-sshd", "KUBERNETES"} {
		assert.False(t, ownChain(c), c)
	}
}

// iptables -S prints comments quoted; deleting a rule needs them back as single arguments.
func TestUnquoteIptablesRule(t *testing.T) {
	t.Parallel()
	got := splitRule(`-A POSTROUTING -s 10.244.0.5/32 -m comment --comment "name: \"go-service-node1\" id: \"abc\"" -j CNI-abc`)
	assert.Equal(t, []string{"-A", "POSTROUTING", "-s", "10.244.0.5/32", "-m", "comment", "--comment", `name: "go-service-node1" id: "abc"`, "-j", "CNI-abc"}, got)
	assert.Equal(t, []string{"-A", "OUTPUT", "-j", "KUBE-FIREWALL"}, splitRule("-A OUTPUT -j KUBE-FIREWALL"))
}

func TestVersionStamp(t *testing.T) {
	t.Parallel()
	ld := ldflags()
	assert.Contains(t, ld, "k8s.io/component-base/version.gitVersion="+KubernetesVersion)
	assert.Contains(t, ld, "k8s.io/component-base/version.gitMinor=34")
}

func TestOptionsDefaults(t *testing.T) {
	t.Parallel()
	o := Options{}
	assert.NoError(t, o.defaults())
	assert.Equal(t, 1, o.Nodes)
	assert.Equal(t, DefaultStateDir, o.StateDir)
	assert.Equal(t, "1s", o.ProxyMinSyncPeriod)
	bad := Options{Nodes: 9}
	assert.ErrorContains(t, bad.defaults(), "nodes: 9 is out of range")
}

func TestStatAlive(t *testing.T) {
	t.Parallel()
	for stat, alive := range map[string]bool{
		"123 (containerd) S 1 123 123 0 -1":    true,
		"123 (hk) R 1 123 123 0 -1":            true,
		"123 (my (odd) name) S 1 123 123 0 -1": true,
		"123 (containerd) Z 1 123 123 0 -1":    false,
		"123 (containerd) X 1 123 123 0 -1":    false,
		"123 (a) Z) S 1":                       true, // the last ')' ends the name
		"garbage":                              false,
	} {
		assert.Equal(t, alive, statAlive(stat), stat)
	}
}

// A started process is alive from the moment startProc returns, including while it is still in execve
// (its command line empty for a moment: likely for a large binary on a cold page cache, which is what a
// fresh machine has), and not alive once it has exited.
func TestProcAlive(t *testing.T) { // not parallel: t.Setenv
	if os.Getenv("GO_SERVICE_TEST_SLEEP") != "" {
		time.Sleep(time.Minute)
		return
	}
	self, err := os.Executable() // a large binary: a long execve
	require.NoError(t, err)
	p := paths{t.TempDir()}
	t.Setenv("GO_SERVICE_TEST_SLEEP", "1")
	for i := 0; i < 50; i++ {
		if os.Geteuid() == 0 {
			_ = os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0o200) // cold page cache, as on a fresh machine
		}
		pid, err := startProc(p, "sleeper", nil, []string{self, "-test.run=^TestProcAlive$"})
		require.NoError(t, err)
		got, ok := procAlive(p, "sleeper")
		assert.True(t, ok, "start %d: alive right after start", i)
		assert.Equal(t, pid, got)
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
		require.NoError(t, Poll(context.Background(), 5*time.Second, 10*time.Millisecond, func() (bool, error) {
			_, ok := procAlive(p, "sleeper")
			return !ok, nil
		}), "killed and reaped: not alive")
	}
	_, ok := procAlive(paths{t.TempDir()}, "never-started")
	assert.False(t, ok)
}

// A kernel watcher's tracefs instance left by a process that is gone is residue; a running process's
// own is not.
func TestTraceInstancesOfTheGoneOnly(t *testing.T) {
	root := t.TempDir()
	gone, mine := root+"/instances/go-service-999999999", fmt.Sprintf("%s/instances/go-service-%d", root, os.Getpid())
	for _, d := range []string{gone, mine, root + "/instances/other"} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	assert.Equal(t, []string{gone}, traceInstances(root))
}
