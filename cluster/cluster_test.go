package cluster

import (
	"testing"

	"github.com/stretchr/testify/assert"
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
