package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"text/template"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/go-service/go-service/cluster/image"
)

// Cluster is a running local cluster.
type Cluster struct {
	Kubeconfig string
	HostIP     string
	Nodes      []Node
	Binary     string // the component binary
	Reused     bool   // Up found it healthy and kept it
	StartedIn  time.Duration
}

// state is what Up records for Status, Down and the next Up.
type state struct {
	HostIP             string    `json:"hostIP"`
	Nodes              []Node    `json:"nodes"`
	Binary             string    `json:"binary"`
	ProxyMinSyncPeriod string    `json:"proxyMinSyncPeriod"`
	Started            time.Time `json:"started"`
	MountedNetns       bool      `json:"mountedNetns"`
}

func readState(p paths) (*state, error) {
	data, err := os.ReadFile(p.stateFile())
	if err != nil {
		return nil, err
	}
	var s state
	return &s, json.Unmarshal(data, &s)
}

// Client returns a clientset for a kubeconfig.
func Client(kubeconfig string) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 50, 100
	return kubernetes.NewForConfig(cfg)
}

// componentError says which component failed and shows the end of its log.
func componentError(p paths, name string, err error) error {
	return fmt.Errorf("%s failed: %w\n--- last lines of %s:\n%s", name, err, p.log(name), tail(p.log(name), 30))
}

// Up starts the cluster, or keeps a healthy one with the same settings. A broken or stale one (processes
// gone, state, rules or mounts left behind) is torn down first.
func Up(ctx context.Context, o Options) (*Cluster, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("the local cluster needs root (iptables, mounts, containerd)")
	}
	p := paths{o.StateDir}
	start := time.Now()
	if c, err := healthy(ctx, o); err == nil {
		c.Reused = true
		o.Log("reusing the healthy cluster (%d node(s)); kubeconfig %s", len(c.Nodes), c.Kubeconfig)
		return c, nil
	} else if _, statErr := os.Stat(p.stateFile()); statErr == nil || len(Residue()) > 0 {
		o.Log("replacing the existing cluster: %v", err)
		if err := Down(ctx, o); err != nil {
			return nil, fmt.Errorf("tear down the broken cluster: %w", err)
		}
	}

	hostIP, _, err := hostIPv4()
	if err != nil {
		return nil, err
	}
	nodes := make([]Node, o.Nodes)
	for i := range nodes {
		nodes[i] = nodeFor(i+1, hostIP)
	}

	// The long build first; everything else beside it.
	type built struct {
		path string
		err  error
	}
	hkCh, pauseCh, dnsCh := make(chan built, 1), make(chan built, 1), make(chan built, 1)
	go func() { b, err := buildComponents(ctx, &o); hkCh <- built{b, err} }()
	go func() { b, err := buildPause(ctx, &o); pauseCh <- built{b, err} }()
	go func() { b, err := buildCoreDNS(ctx, &o); dnsCh <- built{b, err} }()

	if err := ensurePackages(ctx, o.Log); err != nil {
		return nil, err
	}
	// No packet to a cluster address may leave the machine, from before the first component starts.
	if err := installGuard(ctx); err != nil {
		return nil, fmt.Errorf("egress guard: %w", err)
	}
	if err := setSysctls(ctx, ""); err != nil {
		return nil, err
	}
	mountedNetns := !isMountPoint("/run/netns")
	if err := ensureNetnsMount(ctx); err != nil {
		return nil, err
	}
	st := &state{HostIP: hostIP, Nodes: nodes, ProxyMinSyncPeriod: o.ProxyMinSyncPeriod, Started: time.Now(), MountedNetns: mountedNetns}
	if err := saveState(p, st); err != nil { // recorded early: Down can clean up a half-started cluster
		return nil, err
	}
	if err := writePKI(p, hostIP, nodes); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	for _, n := range nodes {
		if err := writeNodeConfig(p, n, o.ProxyMinSyncPeriod); err != nil {
			return nil, err
		}
		if n.Netns != "" {
			if err := createNodeNetwork(ctx, n); err != nil {
				return nil, fmt.Errorf("%s network: %w", n.Name, err)
			}
		}
	}
	pause := <-pauseCh
	if pause.err != nil {
		return nil, fmt.Errorf("pause image: %w", pause.err)
	}
	for _, n := range nodes {
		if n.Netns == "" {
			if err := startContainerd(ctx, p, n, pause.path); err != nil {
				return nil, err
			}
		}
	}
	hk := <-hkCh
	if hk.err != nil {
		return nil, hk.err
	}
	st.Binary = hk.path
	if err := saveState(p, st); err != nil {
		return nil, err
	}
	if err := startControlPlane(ctx, o, p, hk.path, hostIP); err != nil {
		return nil, err
	}
	for _, n := range nodes {
		if n.Netns == "" {
			if err := startNode(ctx, p, n, hk.path); err != nil {
				return nil, err
			}
		} else if err := startNetnsNode(ctx, p, n, hk.path, pause.path); err != nil {
			return nil, err
		}
	}
	c := &Cluster{Kubeconfig: p.admin(), HostIP: hostIP, Nodes: nodes, Binary: hk.path}
	if err := waitReady(ctx, p, c); err != nil {
		return nil, err
	}
	dns := <-dnsCh
	if dns.err != nil {
		return nil, fmt.Errorf("cluster DNS: %w", dns.err)
	}
	if err := c.LoadImage(ctx, dns.path); err != nil {
		return nil, fmt.Errorf("cluster DNS: %w", err)
	}
	client, err := Client(c.Kubeconfig)
	if err != nil {
		return nil, err
	}
	if err := deployDNS(ctx, client); err != nil {
		return nil, fmt.Errorf("cluster DNS (CoreDNS %s) not ready: %w", CoreDNSVersion, err)
	}
	c.StartedIn = time.Since(start)
	o.Log("cluster ready: %d node(s), Kubernetes %s, in %s; kubeconfig %s", len(nodes), KubernetesVersion, c.StartedIn.Round(100*time.Millisecond), c.Kubeconfig)
	return c, nil
}

func saveState(p paths, s *state) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(p.stateFile(), data, 0o644)
}

// startContainerd starts a node's containerd and loads the pause image into it.
func startContainerd(ctx context.Context, p paths, n Node, pauseTar string) error {
	name := "containerd-" + n.Name
	if _, err := startProc(p, name, []string{"/usr/bin/containerd", "--config", p.node(n.Name) + "/containerd.toml"}); err != nil {
		return err
	}
	if err := waitContainerd(ctx, p, n); err != nil {
		return err
	}
	if err := image.Load(ctx, pauseTar, n.containerdSocket()); err != nil {
		return componentError(p, name, err)
	}
	return nil
}

func waitContainerd(ctx context.Context, p paths, n Node) error {
	name := "containerd-" + n.Name
	err := Poll(ctx, 20*time.Second, 100*time.Millisecond, func() (bool, error) {
		if _, ok := readPID(p, name); !ok && n.Netns == "" {
			return false, errors.New("process exited")
		}
		_, err := run(ctx, "ctr", "--address", n.containerdSocket(), "version")
		return err == nil, err
	})
	if err != nil {
		return componentError(p, name, err)
	}
	return nil
}

// startControlPlane starts etcd, kube-apiserver (and waits until it is ready), the controller-manager and
// the scheduler.
func startControlPlane(ctx context.Context, o Options, p paths, hk, hostIP string) error {
	if _, err := startProc(p, "etcd", []string{hk, "etcd", "--data-dir", p.etcd()}); err != nil {
		return err
	}
	if err := waitTCP(ctx, p, "etcd", "127.0.0.1:2379"); err != nil {
		return err
	}
	_, err := startProc(p, "kube-apiserver", []string{hk, "kube-apiserver",
		"--etcd-servers=http://127.0.0.1:2379", "--advertise-address=" + hostIP, "--bind-address=0.0.0.0", "--secure-port=6443",
		"--service-cluster-ip-range=" + ServiceCIDR, "--service-node-port-range=" + NodePortRange,
		"--client-ca-file=" + p.pki("ca.crt"), "--tls-cert-file=" + p.pki("apiserver.crt"), "--tls-private-key-file=" + p.pki("apiserver.key"),
		"--kubelet-client-certificate=" + p.pki("apiserver-kubelet-client.crt"), "--kubelet-client-key=" + p.pki("apiserver-kubelet-client.key"),
		"--kubelet-preferred-address-types=InternalIP,Hostname",
		"--service-account-key-file=" + p.pki("sa.pub"), "--service-account-signing-key-file=" + p.pki("sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction", "--allow-privileged=true",
		"--profiling=false", "--v=1",
	})
	if err != nil {
		return err
	}
	client, err := Client(p.admin())
	if err != nil {
		return err
	}
	err = Poll(ctx, 60*time.Second, 200*time.Millisecond, func() (bool, error) {
		if _, ok := readPID(p, "kube-apiserver"); !ok {
			return false, errors.New("process exited")
		}
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(body) == "ok", err
	})
	if err != nil {
		return componentError(p, "kube-apiserver", err)
	}
	kc := p.kubeconfig("controller-manager")
	if _, err := startProc(p, "kube-controller-manager", []string{hk, "kube-controller-manager",
		"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
		"--service-account-private-key-file=" + p.pki("sa.key"), "--root-ca-file=" + p.pki("ca.crt"),
		"--cluster-signing-cert-file=" + p.pki("ca.crt"), "--cluster-signing-key-file=" + p.pki("ca.key"),
		"--use-service-account-credentials=true", "--leader-elect=false", "--allocate-node-cidrs=false",
		"--cluster-cidr=" + ClusterCIDR, "--service-cluster-ip-range=" + ServiceCIDR, "--profiling=false",
	}); err != nil {
		return err
	}
	ks := p.kubeconfig("scheduler")
	_, err = startProc(p, "kube-scheduler", []string{hk, "kube-scheduler",
		"--kubeconfig=" + ks, "--authentication-kubeconfig=" + ks, "--authorization-kubeconfig=" + ks, "--leader-elect=false", "--profiling=false",
	})
	return err
}

func waitTCP(ctx context.Context, p paths, name, addr string) error {
	err := Poll(ctx, 20*time.Second, 100*time.Millisecond, func() (bool, error) {
		if _, ok := readPID(p, name); !ok {
			return false, errors.New("process exited")
		}
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
		}
		return err == nil, err
	})
	if err != nil {
		return componentError(p, name, err)
	}
	return nil
}

// startNode starts the kubelet and kube-proxy of the host's node.
func startNode(ctx context.Context, p paths, n Node, hk string) error {
	if _, err := startProc(p, "kubelet-"+n.Name, kubeletArgv(p, n, hk)); err != nil {
		return err
	}
	_, err := startProc(p, "kube-proxy-"+n.Name, []string{hk, "kube-proxy", "--config=" + p.node(n.Name) + "/kube-proxy.yaml"})
	return err
}

func kubeletArgv(p paths, n Node, hk string) []string {
	argv := []string{hk, "kubelet", "--config=" + p.node(n.Name) + "/kubelet.yaml", "--kubeconfig=" + p.kubeconfig("kubelet-"+n.Name),
		"--hostname-override=" + n.Name, "--node-ip=" + n.IP, "--v=1",
		// One zone per node, so that zone spreading is exercised as on a multi-zone cluster.
		fmt.Sprintf("--node-labels=topology.kubernetes.io/zone=zone-%d", n.Index)}
	if n.Netns != "" {
		argv = append(argv, "--root-dir="+kubeletRoot(n))
	}
	return argv
}

func kubeletRoot(n Node) string {
	if n.Netns == "" {
		return "/var/lib/kubelet"
	}
	return "/var/lib/kubelet-" + n.Name
}

// waitReady waits for every node to be Ready and for the default ServiceAccount (pods need it).
func waitReady(ctx context.Context, p paths, c *Cluster) error {
	client, err := Client(c.Kubeconfig)
	if err != nil {
		return err
	}
	for _, n := range c.Nodes {
		err := Poll(ctx, 90*time.Second, 200*time.Millisecond, func() (bool, error) {
			for _, comp := range []string{"kubelet-" + n.Name, "kube-proxy-" + n.Name, "containerd-" + n.Name} {
				if _, ok := readPID(p, comp); !ok {
					return false, fmt.Errorf("%s exited", comp)
				}
			}
			node, err := client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, cond := range node.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					return true, nil
				}
			}
			return false, fmt.Errorf("node %s not Ready yet", n.Name)
		})
		if err != nil {
			comp := "kubelet-" + n.Name
			if strings.Contains(err.Error(), "kube-proxy") {
				comp = "kube-proxy-" + n.Name
			} else if strings.Contains(err.Error(), "containerd") {
				comp = "containerd-" + n.Name
			}
			return componentError(p, comp, err)
		}
	}
	err = Poll(ctx, 60*time.Second, 200*time.Millisecond, func() (bool, error) {
		_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	})
	if err != nil {
		return componentError(p, "kube-controller-manager", fmt.Errorf("no default ServiceAccount: %w", err))
	}
	return nil
}

// writeNodeConfig writes a node's containerd, CNI, kubelet and kube-proxy configuration.
func writeNodeConfig(p paths, n Node, minSync string) error {
	dir := p.node(n.Name)
	data := map[string]any{
		"Name": n.Name, "PodCIDR": n.PodCIDR, "IP": n.IP, "Socket": n.containerdSocket(),
		"Root": "/var/lib/containerd", "State": "/run/containerd", "CNIDir": dir + "/cni", "IPAMDir": "/var/lib/cni/networks",
		"Pause": PauseImage, "CA": p.pki("ca.crt"), "Cert": p.pki("kubelet-" + n.Name + ".crt"), "Key": p.pki("kubelet-" + n.Name + ".key"),
		"CgroupRoot": "", "ProxyKubeconfig": p.kubeconfig("kube-proxy"), "MinSync": minSync, "ClusterCIDR": ClusterCIDR,
	}
	if n.Netns != "" {
		data["Root"] = dir + "/containerd"
		data["State"] = "/run/containerd-" + n.Name
		data["IPAMDir"] = dir + "/ipam"
		data["CgroupRoot"] = "/" + n.Name
	}
	files := map[string]string{"containerd.toml": containerdConfig, "cni/10-bridge.conflist": cniConfig,
		"cni/99-loopback.conf": `{"cniVersion": "1.0.0", "name": "lo", "type": "loopback"}` + "\n",
		"kubelet.yaml":         kubeletConfig, "kube-proxy.yaml": proxyConfig}
	for f, tmpl := range files {
		t, err := template.New(f).Option("missingkey=error").Parse(tmpl)
		if err != nil {
			return err
		}
		var b strings.Builder
		if err := t.Execute(&b, data); err != nil {
			return err
		}
		if err := writeFile(dir+"/"+f, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: {{.CA}}}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
failCgroupV1: false
containerRuntimeEndpoint: unix://{{.Socket}}
clusterDomain: cluster.local
clusterDNS: [10.96.0.10]
failSwapOn: false
resolvConf: /etc/resolv.conf
tlsCertFile: {{.Cert}}
tlsPrivateKeyFile: {{.Key}}
serializeImagePulls: false
# Images are imported, never pulled: never garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
syncFrequency: 10s
fileCheckFrequency: 5s
nodeStatusUpdateFrequency: 5s
registerNode: true
{{- if .CgroupRoot}}
cgroupRoot: {{.CgroupRoot}}
{{- end}}
`

const proxyConfig = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: {{.ProxyKubeconfig}}}
mode: iptables
clusterCIDR: {{.ClusterCIDR}}
hostnameOverride: {{.Name}}
bindAddress: 0.0.0.0
conntrack: {maxPerCore: 0}
iptables: {localhostNodePorts: true, syncPeriod: 10s, minSyncPeriod: {{.MinSync}}}
`

// LoadImage imports an image tarball into the containerd of every node.
func (c *Cluster) LoadImage(ctx context.Context, tar string) error {
	for _, n := range c.Nodes {
		if err := image.Load(ctx, tar, n.containerdSocket()); err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
	}
	return nil
}
