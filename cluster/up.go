package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// ProxyMetricsURLs names every node's kube-proxy metrics page, by node name (disrupt.Options.ProxyMetrics).
func (c *Cluster) ProxyMetricsURLs() map[string]string {
	out := map[string]string{}
	for _, n := range c.Nodes {
		out[n.Name] = n.ProxyMetricsURL()
	}
	return out
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

// Up starts the cluster, or keeps a healthy one with the same settings. A broken or stale one (processes
// gone, state, rules or mounts left behind) is torn down first. Bring-up is the list of steps in
// (*bringUp).steps: each component starts once what it depends on answers.
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
	b := newBringUp(o)
	// The long builds run beside the first steps; the steps that need them wait for them.
	b.startBuilds(ctx)
	if err := b.run(ctx, b.steps()); err != nil {
		return nil, err
	}
	c := &Cluster{Kubeconfig: p.admin(), HostIP: b.hostIP, Nodes: b.nodes, Binary: b.hk, StartedIn: time.Since(start)}
	o.Log("cluster ready: %d node(s), Kubernetes %s, in %s; kubeconfig %s", len(b.nodes), KubernetesVersion, c.StartedIn.Round(100*time.Millisecond), c.Kubeconfig)
	return c, nil
}

func saveState(p paths, s *state) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(p.stateFile(), data, 0o644)
}

// procs starts the cluster's long-running processes and tells whether they still run. hostProcs is the
// real one; the startup-order test drives the steps with a fake.
type procs interface {
	start(name string, wrap, argv []string) error
	alive(name string) bool
}

type hostProcs struct{ p paths }

func (h hostProcs) start(name string, wrap, argv []string) error {
	_, err := startProc(h.p, name, wrap, argv)
	return err
}

func (h hostProcs) alive(name string) bool {
	_, ok := procAlive(h.p, name)
	return ok
}

// built is the result of a build running beside the steps.
type built struct {
	path string
	err  error
}

// bringUp is one start of the cluster: its settings, what the steps found or made so far, and the
// seams the unit tests replace (procs, kindOf, loadImage).
type bringUp struct {
	o     Options
	p     paths
	procs procs
	// kindOf says where a node's components run (Node.kind).
	kindOf func(Node) nodeKind
	// loadImage imports an image tarball into a containerd (image.Load).
	loadImage func(ctx context.Context, tar, socket string) error
	// timeout bounds each wait for a component to answer.
	timeout time.Duration

	hostIP string
	nodes  []Node
	state  *state

	hkBuild, pauseBuild, dnsBuild, metricsBuild chan built
	hk, pause                                   string
}

func newBringUp(o Options) *bringUp {
	p := paths{o.StateDir}
	return &bringUp{o: o, p: p, procs: hostProcs{p}, kindOf: Node.kind, loadImage: image.Load, timeout: 60 * time.Second}
}

// step is one named step of bring-up.
type step struct {
	name string
	run  func(context.Context) error
}

// steps is bring-up, in order.
func (b *bringUp) steps() []step {
	return []step{
		{"host packages", b.installPackages},
		{"egress guard", b.installGuard},
		{"host network", b.hostNetwork},
		{"certificates and node configuration", b.writeConfig},
		{"node networks", b.prepareNodes},
		{"containerd", b.startContainerds},
		{"etcd", b.startEtcd},
		{"kube-apiserver", b.startAPIServer},
		{"controller-manager and scheduler", b.startControllers},
		{"kubelet and kube-proxy", b.startNodeAgents},
		{"nodes ready", b.waitNodesReady},
		{"cluster DNS", b.startDNS},
		{"resource metrics", b.startMetrics},
	}
}

// run runs steps in order, logging each one's duration; the first failure stops it, named by its step.
func (b *bringUp) run(ctx context.Context, steps []step) error {
	for _, s := range steps {
		t := time.Now()
		if err := s.run(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		b.o.Log("up: %-36s %s", s.name, time.Since(t).Round(10*time.Millisecond))
	}
	return nil
}

func (b *bringUp) startBuilds(ctx context.Context) {
	b.hkBuild, b.pauseBuild, b.dnsBuild, b.metricsBuild = make(chan built, 1), make(chan built, 1), make(chan built, 1), make(chan built, 1)
	go func() { path, err := buildComponents(ctx, &b.o); b.hkBuild <- built{path, err} }()
	go func() { path, err := buildPause(ctx, &b.o); b.pauseBuild <- built{path, err} }()
	go func() { path, err := buildCoreDNS(ctx, &b.o); b.dnsBuild <- built{path, err} }()
	go func() { path, err := buildMetricsServer(ctx, &b.o); b.metricsBuild <- built{path, err} }()
}

// awaitBuild waits for a build started by startBuilds.
func awaitBuild(ctx context.Context, ch chan built, what string) (string, error) {
	select {
	case r := <-ch:
		if r.err != nil {
			return "", fmt.Errorf("%s: %w", what, r.err)
		}
		return r.path, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (b *bringUp) installPackages(ctx context.Context) error { return ensurePackages(ctx, b.o.Log) }

// installGuard: no packet to a cluster address may leave the machine, from before the first component
// starts.
func (b *bringUp) installGuard(ctx context.Context) error { return installGuard(ctx) }

// hostNetwork sets the host's sysctls and makes /run/netns a shared mount point, and picks the nodes'
// addresses.
func (b *bringUp) hostNetwork(ctx context.Context) error {
	hostIP, _, err := hostIPv4()
	if err != nil {
		return err
	}
	b.hostIP = hostIP
	b.nodes = make([]Node, b.o.Nodes)
	for i := range b.nodes {
		b.nodes[i] = nodeFor(i+1, hostIP)
	}
	if err := setSysctls(ctx, ""); err != nil {
		return err
	}
	mountedNetns := !isMountPoint("/run/netns")
	if err := ensureNetnsMount(ctx); err != nil {
		return err
	}
	b.state = &state{HostIP: hostIP, Nodes: b.nodes, ProxyMinSyncPeriod: b.o.ProxyMinSyncPeriod, Started: time.Now(), MountedNetns: mountedNetns}
	return saveState(b.p, b.state) // recorded early: Down can clean up a half-started cluster
}

func (b *bringUp) writeConfig(context.Context) error {
	if err := writePKI(b.p, b.hostIP, b.nodes); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	for _, n := range b.nodes {
		if err := writeNodeConfig(b.p, n, b.kindOf(n).layout(b.p), b.o.ProxyMinSyncPeriod); err != nil {
			return err
		}
	}
	return nil
}

func (b *bringUp) prepareNodes(ctx context.Context) error {
	for _, n := range b.nodes {
		if err := b.kindOf(n).prepare(ctx, b.p); err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
	}
	return nil
}

// startComponent starts one of a node's components inside the node.
func (b *bringUp) startComponent(n Node, component string, argv []string) error {
	full, err := b.kindOf(n).command(b.p, component, argv)
	if err != nil {
		return err
	}
	wrap := full[:len(full)-len(argv)]
	return b.procs.start(n.proc(component), wrap, argv)
}

// startContainerds starts every node's containerd, waits until it answers the CRI, and imports the pause
// image every pod sandbox runs.
func (b *bringUp) startContainerds(ctx context.Context) error {
	pause, err := awaitBuild(ctx, b.pauseBuild, "pause image")
	if err != nil {
		return err
	}
	b.pause = pause
	for _, n := range b.nodes {
		l := b.kindOf(n).layout(b.p)
		if err := b.startComponent(n, compContainerd, []string{"/usr/bin/containerd", "--config", b.p.node(n.Name) + "/containerd.toml"}); err != nil {
			return err
		}
		if err := b.waitContainerd(ctx, n); err != nil {
			return err
		}
		if err := b.loadImage(ctx, b.pause, l.socket()); err != nil {
			return componentError(b.p, n.proc(compContainerd), err)
		}
	}
	return nil
}

func (b *bringUp) waitContainerd(ctx context.Context, n Node) error {
	return waitFor(ctx, b.p, b.procs, n.proc(compContainerd), b.timeout, criAnswers(b.kindOf(n).layout(b.p).socket()))
}

// componentBinary waits for the component build, and records it.
func (b *bringUp) componentBinary(ctx context.Context) error {
	if b.hk != "" {
		return nil
	}
	hk, err := awaitBuild(ctx, b.hkBuild, "components")
	if err != nil {
		return err
	}
	b.hk, b.state.Binary = hk, hk
	return saveState(b.p, b.state)
}

func (b *bringUp) startEtcd(ctx context.Context) error {
	if err := b.componentBinary(ctx); err != nil {
		return err
	}
	if err := b.procs.start("etcd", nil, []string{b.hk, "etcd", "--data-dir", b.p.etcd()}); err != nil {
		return err
	}
	return waitFor(ctx, b.p, b.procs, "etcd", b.timeout, httpAnswers("http://127.0.0.1:2379/health", ""))
}

func (b *bringUp) startAPIServer(ctx context.Context) error {
	p := b.p
	err := b.procs.start("kube-apiserver", nil, []string{b.hk, "kube-apiserver",
		"--etcd-servers=http://127.0.0.1:2379", "--advertise-address=" + b.hostIP, "--bind-address=0.0.0.0", "--secure-port=6443",
		"--service-cluster-ip-range=" + ServiceCIDR, "--service-node-port-range=" + NodePortRange,
		"--client-ca-file=" + p.pki("ca.crt"), "--tls-cert-file=" + p.pki("apiserver.crt"), "--tls-private-key-file=" + p.pki("apiserver.key"),
		"--kubelet-client-certificate=" + p.pki("apiserver-kubelet-client.crt"), "--kubelet-client-key=" + p.pki("apiserver-kubelet-client.key"),
		"--kubelet-preferred-address-types=InternalIP,Hostname",
		"--service-account-key-file=" + p.pki("sa.pub"), "--service-account-signing-key-file=" + p.pki("sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction", "--allow-privileged=true",
		"--profiling=false", "--v=1",
		// The aggregation layer, for metrics-server (the HPA's resource metrics). The API server runs on
		// the host, which routes to every pod CIDR, so it proxies to the endpoints' pod IPs.
		"--requestheader-client-ca-file=" + p.pki("front-proxy-ca.crt"), "--requestheader-allowed-names=" + FrontProxyClient,
		"--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + p.pki("front-proxy-client.crt"), "--proxy-client-key-file=" + p.pki("front-proxy-client.key"),
		"--enable-aggregator-routing=true",
	})
	if err != nil {
		return err
	}
	return waitFor(ctx, p, b.procs, "kube-apiserver", 2*b.timeout, httpAnswers("https://127.0.0.1:6443/readyz", "ok"))
}

// startControllers starts the controller-manager and the scheduler (the apiserver is ready) and waits
// for their health endpoints.
func (b *bringUp) startControllers(ctx context.Context) error {
	p := b.p
	kc, ks := p.kubeconfig("controller-manager"), p.kubeconfig("scheduler")
	for _, c := range []struct {
		name, healthz string
		argv          []string
	}{
		{"kube-controller-manager", "https://127.0.0.1:10257/healthz", []string{b.hk, "kube-controller-manager",
			"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
			"--service-account-private-key-file=" + p.pki("sa.key"), "--root-ca-file=" + p.pki("ca.crt"),
			"--cluster-signing-cert-file=" + p.pki("ca.crt"), "--cluster-signing-key-file=" + p.pki("ca.key"),
			"--use-service-account-credentials=true", "--leader-elect=false", "--allocate-node-cidrs=false",
			"--cluster-cidr=" + ClusterCIDR, "--service-cluster-ip-range=" + ServiceCIDR, "--profiling=false"}},
		{"kube-scheduler", "https://127.0.0.1:10259/healthz", []string{b.hk, "kube-scheduler",
			"--kubeconfig=" + ks, "--authentication-kubeconfig=" + ks, "--authorization-kubeconfig=" + ks, "--leader-elect=false", "--profiling=false"}},
	} {
		if err := b.procs.start(c.name, nil, c.argv); err != nil {
			return err
		}
		if err := waitFor(ctx, p, b.procs, c.name, b.timeout, httpAnswers(c.healthz, "ok")); err != nil {
			return err
		}
	}
	return nil
}

// startNodeAgents starts each node's kubelet and kube-proxy, each only once the node's containerd
// answers and the node's network namespace, mounts and CNI configuration exist.
func (b *bringUp) startNodeAgents(ctx context.Context) error {
	for _, n := range b.nodes {
		if err := b.startNodeAgent(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

func (b *bringUp) startNodeAgent(ctx context.Context, n Node) error {
	if err := b.waitContainerd(ctx, n); err != nil {
		return err
	}
	kind := b.kindOf(n)
	if err := Poll(ctx, b.timeout, 100*time.Millisecond, func() (bool, error) {
		err := kind.kubeletPrereqs(b.p)
		return err == nil, err
	}); err != nil {
		return componentError(b.p, n.proc(compKubelet), fmt.Errorf("not started: %w", err))
	}
	if err := b.startComponent(n, compKubelet, b.kubeletArgv(n)); err != nil {
		return err
	}
	return b.startComponent(n, compProxy, []string{b.hk, "kube-proxy", "--config=" + b.p.node(n.Name) + "/kube-proxy.yaml"})
}

func (b *bringUp) kubeletArgv(n Node) []string {
	return []string{b.hk, "kubelet", "--config=" + b.p.node(n.Name) + "/kubelet.yaml", "--kubeconfig=" + b.p.kubeconfig(n.proc(compKubelet)),
		"--hostname-override=" + n.Name, "--node-ip=" + n.IP, "--v=1", "--root-dir=" + b.kindOf(n).layout(b.p).KubeletRoot,
		// One zone per node, so that zone spreading is exercised as on a multi-zone cluster.
		fmt.Sprintf("--node-labels=topology.kubernetes.io/zone=zone-%d", n.Index)}
}

// waitNodesReady waits for every node to be Ready and for the default ServiceAccount (pods need it).
func (b *bringUp) waitNodesReady(ctx context.Context) error {
	client, err := Client(b.p.admin())
	if err != nil {
		return err
	}
	for _, n := range b.nodes {
		var exited string
		err := Poll(ctx, 90*time.Second, 200*time.Millisecond, func() (bool, error) {
			for _, comp := range nodeComponents {
				if !b.procs.alive(n.proc(comp)) {
					exited = n.proc(comp)
					return false, fmt.Errorf("%s: %w", exited, errNotRunning)
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
			if exited == "" {
				exited = n.proc(compKubelet)
			}
			return componentError(b.p, exited, err)
		}
	}
	err = Poll(ctx, 60*time.Second, 200*time.Millisecond, func() (bool, error) {
		_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	})
	if err != nil {
		return componentError(b.p, "kube-controller-manager", fmt.Errorf("no default ServiceAccount: %w", err))
	}
	return nil
}

// importBuilt waits for an image's build (started by startBuilds), imports it into every node, and returns
// an admin client to deploy it with.
func (b *bringUp) importBuilt(ctx context.Context, build chan built, what string) (*kubernetes.Clientset, error) {
	tar, err := awaitBuild(ctx, build, what)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Nodes: b.nodes}
	if err := c.LoadImage(ctx, tar); err != nil {
		return nil, err
	}
	return Client(b.p.admin())
}

// startDNS imports the CoreDNS image into every node and deploys it.
func (b *bringUp) startDNS(ctx context.Context) error {
	client, err := b.importBuilt(ctx, b.dnsBuild, "CoreDNS image")
	if err != nil {
		return err
	}
	if err := deployDNS(ctx, client); err != nil {
		return fmt.Errorf("CoreDNS %s not ready: %w", CoreDNSVersion, err)
	}
	return nil
}

// writeNodeConfig writes a node's containerd, CNI, kubelet and kube-proxy configuration.
func writeNodeConfig(p paths, n Node, l nodeLayout, minSync string) error {
	dir := p.node(n.Name)
	data := map[string]any{
		"Name": n.Name, "PodCIDR": n.PodCIDR, "IP": n.IP, "Socket": l.socket(),
		"Root": l.ContainerdRoot, "State": l.ContainerdState, "CNIDir": dir + "/cni", "IPAMDir": l.IPAMDir,
		"Pause": PauseImage, "CA": p.pki("ca.crt"), "Cert": p.pki(n.proc(compKubelet) + ".crt"), "Key": p.pki(n.proc(compKubelet) + ".key"),
		"CgroupRoot": l.CgroupRoot, "ProxyKubeconfig": p.kubeconfig("kube-proxy"), "MinSync": minSync, "ClusterCIDR": ClusterCIDR,
		"ProxyMetrics": n.proxyMetricsAddr(),
	}
	files := map[string]string{"containerd.toml": containerdConfig, cniConfigs[0]: cniConfig, cniConfigs[1]: loopbackConfig,
		"kubelet.yaml": kubeletConfig, "kube-proxy.yaml": proxyConfig}
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

const loopbackConfig = `{"cniVersion": "1.0.0", "name": "lo", "type": "loopback"}` + "\n"

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
metricsBindAddress: {{.ProxyMetrics}}
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
