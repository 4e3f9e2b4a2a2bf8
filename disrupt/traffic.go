// Package disrupt proves that a release loses no request while its pods are replaced: it runs open-loop
// load against the release's Service while a test disrupts the pods (a rolling update, a drain, an
// eviction), records the pods' and endpoints' timeline, and passes every client's run through the gates
// of package gate (coverage, reality, failures, latency), writing a JSON and an HTML report per run.
//
// The clients are the ones real callers are: a GET on a new connection per request and POSTs on a
// keep-alive pool (never retried by net/http), from inside the cluster (a pod running `go-service load`)
// and, when this machine can reach the Service's cluster IP (a node of the cluster), from the host too.
//
// It drops into a terratest test: a Target takes terratest's *helm.Options and *k8s.KubectlOptions.
// terratest runs the `helm` on PATH, whatever its version: Helm 4 (this project's live suite), or Helm 3
// (its Helm 3 lane puts Helm 3 first on PATH as `helm`).
//
//	tr := disrupt.Start(t, disrupt.Target{Helm: opts, Release: "shop", Deployment: "shop-api", Service: "shop-api"},
//		disrupt.Options{LoadImage: "ghcr.io/acme/go-service:0.3.0"})
//	tr.Upgrade(t, "rollout", chart, map[string]string{"image.tag": "v2"})
//	tr.Stop(t, disrupt.Scenario{Name: "rolling update"}) // fails t on any lost or slow request
package disrupt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gruntwork-io/terratest/modules/helm"
	"github.com/gruntwork-io/terratest/modules/k8s"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/go-service/go-service/cluster"
	"github.com/go-service/go-service/gate"
	"github.com/go-service/go-service/internal/kubeproxy"
	"github.com/go-service/go-service/load"
	"github.com/go-service/go-service/tcptrace"
)

// Target is the release under test: where it runs and which objects the disruption replaces.
type Target struct {
	// Helm is the release's terratest options; Upgrade uses them, and their KubectlOptions name the
	// cluster and namespace when Kubectl is nil.
	Helm *helm.Options
	// Release is the Helm release name, for Upgrade.
	Release string
	// Kubectl names the cluster (kubeconfig, context) and the namespace.
	Kubectl *k8s.KubectlOptions
	// Client, when set, is used instead of a client built from Kubectl (Kubectl still names the
	// namespace, or Namespace does).
	Client kubernetes.Interface
	// Namespace overrides the namespace of Kubectl.
	Namespace string
	// Deployment is the Deployment whose pods are replaced (its selector picks the pods the reality
	// gate follows). Required.
	Deployment string
	// Service is the Service the load targets. Required.
	Service string
	// Port is the Service port the load targets (default: the Service's first port).
	Port int32
}

// HostClients says whether the host clients run.
type HostClients int

const (
	// HostAuto runs the host clients when the Service's cluster IP answers from this machine (it is a
	// node of the cluster), and only the in-cluster ones otherwise.
	HostAuto HostClients = iota
	// HostAlways requires the host clients: an unreachable cluster IP fails the test.
	HostAlways
	// HostNever runs only the in-cluster clients.
	HostNever
)

// Options say which clients run, at what rates, and what the gates allow. The zero value of every field
// is a sensible default.
type Options struct {
	Rate          int // host GET, new connection per request (default 200/s)
	KeepAliveRate int // host POST from a keep-alive pool (default 50/s)
	// InClusterRate and InClusterKeepAliveRate are the same two clients in a pod (defaults 100/s and
	// 50/s), sending to the Service from inside the cluster until Stop.
	InClusterRate, InClusterKeepAliveRate int
	// GRPCPort, when set, adds a gRPC client in each place: unary calls (load.WhoamiMethod) multiplexed
	// on one long-lived HTTP/2 connection to the Service's cluster IP on this port (load.GRPCPickFirst),
	// from the host at GRPCRate and from the load pod at InClusterGRPCRate (defaults 50/s). Such a
	// client moves to another pod only when the server sends GOAWAY or the connection breaks.
	GRPCPort                    int32
	GRPCRate, InClusterGRPCRate int
	// GRPCRequest is the gRPC clients' request (e.g. "sleep=500ms", which the reference service honours,
	// so calls are always in flight on the connection).
	GRPCRequest string
	// NoInCluster runs no client in a pod (then the host clients are required).
	NoInCluster bool
	Host        HostClients
	// KeepAliveQuery is a query string for the keep-alive clients' requests (e.g. "sleep=100ms", which
	// the reference app honours, so requests are always in flight on the pooled connections).
	KeepAliveQuery string
	// LoadImage is an image whose entrypoint is the go-service binary (`go-service load`), for the
	// in-cluster clients; LoadImagePullPolicy defaults to IfNotPresent.
	LoadImage           string
	LoadImagePullPolicy corev1.PullPolicy
	// Steady is how long the load runs before Start returns, the steady-state window the disruption's
	// latency is compared with (default 3s).
	Steady time.Duration
	// ProxyMinSync is the lag between an endpoint change and the nodes' rules (kube-proxy's
	// minSyncPeriod). Zero: read from the cluster where it is published, 1s (kube-proxy's default)
	// otherwise. The settle time after a disruption and the gates' allowance follow from it.
	ProxyMinSync time.Duration
	// SlowAfter is the latency above which a request counts as slow (default 1s).
	SlowAfter time.Duration
	// ProxyMetrics names each node's kube-proxy metrics page (node → URL, e.g.
	// http://127.0.0.1:10249/metrics). Each run reports the network programming lag every one of them
	// measured while the load ran (Run.Propagation); a page that cannot be read is reported as such.
	ProxyMetrics map[string]string
	// ControlURL is a Service nothing disrupts (e.g. http://10.96.0.50/), reachable from this machine
	// and from pods. When set, a control client sends GETs on new connections to it at ControlRate
	// (default 20/s) from each place the clients under test run; a failure or a stall it sees too is
	// the machine's or the cluster's, and each run's report says so (Run.Control, Run.Noise).
	ControlURL  string
	ControlRate int
	// Reports collects the runs and writes their reports; nil writes them to ./results/disruption.
	Reports *Reports
	// Kernel, when set, is the kernel's record of TCP handshakes on this machine (tcptrace.Start, as
	// root): every request whose connect had its SYN sent again gets what the kernel saw of it
	// (load.Request.Kernel), in the host's clients and the load pod's alike (one kernel), and the latency
	// gate's violation says it. A host client's slow request whose every retransmitted SYN the kernel
	// saw answered by a TIME_WAIT (tcptrace.Handshake.Collided), not lost, is the cluster's noise
	// (Run.Noise): the scenario is repeated once and fails if it fails again.
	Kernel *tcptrace.Watcher
}

func (o *Options) defaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.Rate, 200)
	def(&o.KeepAliveRate, 50)
	def(&o.InClusterRate, 100)
	def(&o.InClusterKeepAliveRate, 50)
	def(&o.ControlRate, 20)
	def(&o.GRPCRate, 50)
	def(&o.InClusterGRPCRate, 50)
	if o.Steady == 0 {
		o.Steady = 3 * time.Second
	}
	if o.LoadImagePullPolicy == "" {
		o.LoadImagePullPolicy = corev1.PullIfNotPresent
	}
	if o.Reports == nil {
		o.Reports = NewReports("results/disruption")
	}
}

// Policy is what every gated run must meet: requests are not slow, and the load covers the disruption
// and the lag after it.
func (o Options) Policy() gate.Policy {
	return gate.Policy{SteadyBefore: o.Steady, SettleAfter: o.ProxyMinSync + time.Second, SlowAfter: o.SlowAfter}
}

// Settle is the pause after a disruption (and between two): longer than the propagation lag + 1 s, so
// one disruption's endpoint changes have reached the rules before the next begins or the load stops.
// kube-proxy does not publish when a change reached the rules, so this is a named wait, not a condition.
func (o Options) Settle() time.Duration { return o.ProxyMinSync + 1500*time.Millisecond }

// controlPort is where the in-cluster load pod answers /healthz and /stop.
const controlPort = "8081"

// Traffic is load running against a target while something disrupts its pods.
type Traffic struct {
	o        Options
	client   kubernetes.Interface
	target   Target
	ns, url  string
	ip       string // the Service's cluster IP
	selector map[string]string
	timeline *Timeline
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	results  []*load.Result
	errs     []error
	mu       sync.Mutex
	marks    []Mark
	changes  []Change
	podRun   string // name of the in-cluster load pod, if any
	stopped  bool
	// progBefore are the nodes' network programming histograms read when the load started.
	progBefore     map[string]kubeproxy.Programming
	progBeforeErrs map[string]error
	// load is this Traffic's time in Options.Reports, for the runs that ran beside it.
	load *loadSpan
}

// Start resolves the target, clears this node's conntrack entries for the Service (host clients), checks
// that the Service serves, starts the timeline, the in-cluster clients (and waits until they send), then
// the host clients, and returns after Options.Steady. A test that fails before Stop still stops the load
// and its watches (t.Cleanup).
func Start(tb testing.TB, target Target, o Options) *Traffic {
	tb.Helper()
	o.defaults()
	tr, err := newTraffic(tb, target, &o)
	if err != nil {
		tb.Fatalf("disrupt: %v", err)
	}
	host := o.Host != HostNever
	if host {
		err := reachable(tr.url, 3*o.ProxyMinSync+3*time.Second)
		switch {
		case err != nil && (o.Host == HostAlways || o.NoInCluster):
			tb.Fatalf("disrupt: the host clients cannot reach the Service %s/%s at %s: %v", tr.ns, target.Service, tr.url, err)
		case err != nil:
			tb.Logf("disrupt: only the in-cluster clients run: the Service's cluster IP does not answer from this machine (%v)", err)
			host = false
		}
	}
	if host {
		ClearConntrack(tb, tr.ip)
		WaitServing(tb, tr.url)
		if o.ControlURL != "" {
			WaitServing(tb, o.ControlURL)
		}
	}
	tr.progBefore, tr.progBeforeErrs = readProgramming(o.ProxyMetrics)
	tl, err := WatchNamespace(tr.client, tr.ns)
	if err != nil {
		tb.Fatalf("disrupt: watch namespace %s: %v", tr.ns, err)
	}
	tr.timeline = tl
	tr.load = o.Reports.begin(tr.ns, tb.Name())
	ctx, cancel := context.WithCancel(context.Background())
	tr.cancel = cancel
	tb.Cleanup(func() {
		cancel()
		tr.wg.Wait()
		o.Reports.finish(tr.load, "")
		tl.Stop()
		if tr.podRun != "" && !tr.stopped {
			_ = tr.client.CoreV1().Pods(tr.ns).Delete(context.Background(), tr.podRun, metav1.DeleteOptions{})
		}
	})
	if !o.NoInCluster {
		if o.LoadImage == "" {
			tb.Fatal("disrupt: Options.LoadImage is required for the in-cluster clients (or set NoInCluster)")
		}
		tr.startInCluster(tb)
	}
	// Both host clients start together at a time set here, so the steady window below is exactly Steady
	// for each of them, however late their goroutines get scheduled.
	start := time.Now().Add(100 * time.Millisecond)
	if host {
		cfgs := []load.Config{
			{Name: "host GET new-conn", URL: tr.url, Rate: o.Rate, StartAt: start, Processes: true},
			{Name: "host POST keep-alive", URL: load.WithQuery(tr.url, o.KeepAliveQuery), Rate: o.KeepAliveRate, KeepAlive: true, Method: http.MethodPost, StartAt: start},
		}
		if o.GRPCPort != 0 {
			cfgs = append(cfgs, load.Config{Name: "host gRPC pick_first", URL: tr.grpcTarget(), GRPC: load.GRPCPickFirst, GRPCRequest: o.GRPCRequest, Rate: o.GRPCRate, StartAt: start})
		}
		if o.ControlURL != "" {
			cfgs = append(cfgs, load.Config{Name: "host control GET new-conn", URL: o.ControlURL, Rate: o.ControlRate, StartAt: start, Control: true})
		}
		for _, cfg := range cfgs {
			tr.wg.Add(1)
			go func() {
				defer tr.wg.Done()
				res, err := load.Run(ctx, cfg)
				tr.mu.Lock()
				defer tr.mu.Unlock()
				if err != nil {
					tr.errs = append(tr.errs, fmt.Errorf("%s: %w", cfg.Name, err))
					return
				}
				tr.results = append(tr.results, res)
			}()
		}
	}
	time.Sleep(time.Until(start.Add(o.Steady))) // a measurement window, not a wait for a condition
	return tr
}

// newTraffic resolves the client, the namespace, the Service's URL and the Deployment's selector.
func newTraffic(tb testing.TB, target Target, o *Options) (*Traffic, error) {
	kubectl := target.Kubectl
	if kubectl == nil && target.Helm != nil {
		kubectl = target.Helm.KubectlOptions
	}
	ns := target.Namespace
	if ns == "" && kubectl != nil {
		ns = kubectl.Namespace
	}
	switch {
	case ns == "":
		return nil, errors.New("Target names no namespace (Namespace, Kubectl or Helm.KubectlOptions)")
	case target.Deployment == "":
		return nil, errors.New("Target.Deployment is required")
	case target.Service == "":
		return nil, errors.New("Target.Service is required")
	}
	client := target.Client
	if client == nil {
		if kubectl == nil {
			return nil, errors.New("Target names no cluster (Client, Kubectl or Helm.KubectlOptions)")
		}
		cs, err := k8s.GetKubernetesClientFromOptionsE(tb, kubectl)
		if err != nil {
			return nil, fmt.Errorf("connect to the cluster: %w", err)
		}
		client = cs
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svc, err := client.CoreV1().Services(ns).Get(ctx, target.Service, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("the target's Service: %w", err)
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return nil, fmt.Errorf("Service %s/%s has no cluster IP (a headless Service has no load balancing to prove)", ns, target.Service)
	}
	port := target.Port
	if port == 0 {
		if len(svc.Spec.Ports) == 0 {
			return nil, fmt.Errorf("Service %s/%s has no port", ns, target.Service)
		}
		port = svc.Spec.Ports[0].Port
	}
	d, err := client.AppsV1().Deployments(ns).Get(ctx, target.Deployment, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("the target's Deployment: %w", err)
	}
	if d.Spec.Selector == nil || len(d.Spec.Selector.MatchExpressions) > 0 || len(d.Spec.Selector.MatchLabels) == 0 {
		return nil, fmt.Errorf("Deployment %s/%s: only a matchLabels selector is supported", ns, target.Deployment)
	}
	if o.ProxyMinSync == 0 {
		o.ProxyMinSync = time.Second
		if d, _ := kubeproxy.MinSync(ctx, client); d != nil {
			o.ProxyMinSync = d.Duration
		}
	}
	return &Traffic{o: *o, client: client, target: target, ns: ns, ip: svc.Spec.ClusterIP,
		url: fmt.Sprintf("http://%s/", net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(port)))), selector: d.Spec.Selector.MatchLabels}, nil
}

// reachable reports whether url answers at all from this machine within the given time. A Service
// created a moment ago refuses connections until kube-proxy has synced its rules, which it may delay
// by its minSyncPeriod after the previous sync: the caller allows a few of those.
func reachable(url string, within time.Duration) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(within)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// ClearConntrack deletes this node's conntrack entries of connections to a Service IP, so that a run
// never sends packets along a translation left by an earlier run to a pod that no longer exists (source
// ports are reused within conntrack's timeout at hundreds of connections per second). It needs the
// conntrack tool.
func ClearConntrack(tb testing.TB, ip string) {
	tb.Helper()
	out, err := exec.Command("conntrack", "-D", "-p", "tcp", "--orig-dst", ip).CombinedOutput()
	// conntrack exits 1 when there was nothing to delete.
	if err != nil && !strings.Contains(string(out), "0 flow entries have been deleted") {
		tb.Fatalf("conntrack -D --orig-dst %s: %v\n%s", ip, err, out)
	}
}

// WaitServing waits until url answers 200 on new connections 20 times in a row (the Service is
// programmed on this node), before any load starts.
func WaitServing(tb testing.TB, url string) {
	tb.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	streak := 0
	err := cluster.Poll(context.Background(), 60*time.Second, 50*time.Millisecond, func() (bool, error) {
		resp, err := client.Get(url)
		if err != nil {
			streak = 0
			return false, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			streak = 0
			return false, fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		streak++
		return streak >= 20, nil
	})
	if err != nil {
		tb.Fatalf("%s is not serving: %v", url, err)
	}
}

// startInCluster runs the in-cluster clients in a pod that meets Pod Security "restricted", and waits
// until its control endpoint answers (the clients are sending).
func (tr *Traffic) startInCluster(tb testing.TB) {
	tb.Helper()
	o := tr.o
	tr.podRun = fmt.Sprintf("load-%d", time.Now().UnixNano()%100000)
	no, yes, uid := false, true, int64(65532)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: tr.podRun, Labels: map[string]string{"role": "load", "app.kubernetes.io/managed-by": "go-service-disrupt"}},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: &yes, RunAsUser: &uid,
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers: []corev1.Container{{Name: "load", Image: o.LoadImage, ImagePullPolicy: o.LoadImagePullPolicy,
				Args: tr.loadArgs(),
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: &no,
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}}},
		},
	}
	ctx := context.Background()
	if _, err := tr.client.CoreV1().Pods(tr.ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		tb.Fatalf("disrupt: create the in-cluster load pod: %v", err)
	}
	WaitPodPhase(tb, tr.client, tr.ns, tr.podRun, corev1.PodRunning, time.Minute)
	err := cluster.Poll(ctx, 30*time.Second, 100*time.Millisecond, func() (bool, error) {
		_, err := tr.client.CoreV1().Pods(tr.ns).ProxyGet("http", tr.podRun, controlPort, "healthz", nil).DoRaw(ctx)
		return err == nil, err
	})
	if err != nil {
		tb.Fatalf("the in-cluster load pod never answered on :%s: %v\n%s", controlPort, err, Describe(tr.client, tr.ns))
	}
}

// loadArgs are the in-cluster load pod's arguments: its two clients, the gRPC client when
// Options.GRPCPort is set, and the control client when Options.ControlURL is set.
func (tr *Traffic) loadArgs() []string {
	o := tr.o
	args := []string{"load", "-url", tr.url, "-duration", "20m", "-control", ":" + controlPort,
		"-client", fmt.Sprintf("GET:new-conn-close:%d", o.InClusterRate), "-client", strings.TrimSuffix(fmt.Sprintf("POST:keep-alive:%d:%s", o.InClusterKeepAliveRate, o.KeepAliveQuery), ":")}
	if o.GRPCPort != 0 {
		args = append(args, "-grpc", fmt.Sprintf("%s:%d:%s", load.GRPCPickFirst, o.InClusterGRPCRate, tr.grpcTarget()), "-grpc-request", o.GRPCRequest)
	}
	if o.ControlURL != "" {
		args = append(args, "-baseline", o.ControlURL, "-baseline-rate", strconv.Itoa(o.ControlRate))
	}
	return args
}

// grpcTarget is the gRPC clients' target: the Service's cluster IP on Options.GRPCPort.
func (tr *Traffic) grpcTarget() string {
	return net.JoinHostPort(tr.ip, strconv.Itoa(int(tr.o.GRPCPort)))
}

// stopInCluster stops the pod's clients and returns their results.
func (tr *Traffic) stopInCluster(tb testing.TB) []*load.Result {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data, err := tr.client.CoreV1().Pods(tr.ns).ProxyGet("http", tr.podRun, controlPort, "stop", nil).DoRaw(ctx)
	if err != nil {
		tb.Fatalf("stop the in-cluster load: %v\n%s", err, Describe(tr.client, tr.ns))
	}
	tr.stopped = true
	var res []*load.Result
	if err := json.Unmarshal(data, &res); err != nil {
		tb.Fatalf("in-cluster load result: %v\n%.2000s", err, data)
	}
	for _, r := range res {
		r.Name = "in-cluster " + r.Mode()
	}
	return res
}

// Options returns the options in force (defaults filled in, the propagation lag read from the cluster).
func (tr *Traffic) Options() Options { return tr.o }

// Timeline is the pod and endpoint timeline of the run.
func (tr *Traffic) Timeline() *Timeline { return tr.timeline }

// Mark records a moment of the disruption (drawn on the timeline). The first and the last mark bound
// the disruption window the gates check.
func (tr *Traffic) Mark(what string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.marks = append(tr.marks, Mark{At: time.Now(), What: what})
}

// Settle waits Options.Settle: between two disruptions, so the first one's endpoint changes have
// reached every node.
func (tr *Traffic) Settle() { time.Sleep(tr.o.Settle()) }

// Upgrade is a Rollout that runs `helm upgrade` of the target's release (terratest's helm.Upgrade) with
// its Helm options plus set, given as --set-string values: what a rollout changes is a string (an image
// tag, an annotation), and --set would turn a tag 2 into a number. For other changes, call Rollout with
// helm.Upgrade and options of your own.
func (tr *Traffic) Upgrade(tb testing.TB, what, chart string, set map[string]string) {
	tb.Helper()
	if tr.target.Helm == nil || tr.target.Release == "" {
		tb.Fatal("disrupt: Upgrade needs Target.Helm and Target.Release")
	}
	opts := *tr.target.Helm
	opts.SetStrValues = map[string]string{}
	for k, v := range tr.target.Helm.SetStrValues {
		opts.SetStrValues[k] = v
	}
	for k, v := range set {
		opts.SetStrValues[k] = v
	}
	tr.Rollout(tb, what, 5*time.Minute, func() { helm.Upgrade(tb, &opts, chart, tr.target.Release) })
}

// Snapshot returns the target's pods that are not terminating, by UID, with their pod-template-hash.
func (tr *Traffic) Snapshot(tb testing.TB) gate.Pods {
	tb.Helper()
	out := gate.Pods{}
	for _, p := range PodsOf(tb, tr.client, tr.ns, tr.selector) {
		if p.DeletionTimestamp == nil {
			out[string(p.UID)] = gate.Pod{Name: p.Name, Hash: p.Labels[appsv1.DefaultDeploymentUniqueLabelKey]}
		}
	}
	return out
}

// ReplicaSets returns the (spec, status) replica counts of the target's ReplicaSets, by
// pod-template-hash.
func (tr *Traffic) ReplicaSets(tb testing.TB) map[string][2]int32 {
	tb.Helper()
	list, err := tr.client.AppsV1().ReplicaSets(tr.ns).List(context.Background(), metav1.ListOptions{LabelSelector: labels.SelectorFromSet(tr.selector).String()})
	if err != nil {
		tb.Fatalf("list ReplicaSets: %v", err)
	}
	out := map[string][2]int32{}
	for _, rs := range list.Items {
		spec := int32(1)
		if rs.Spec.Replicas != nil {
			spec = *rs.Spec.Replicas
		}
		out[rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]] = [2]int32{spec, rs.Status.Replicas}
	}
	return out
}

// Scenario names a run and says what it must show.
type Scenario struct {
	Name   string
	Expect Expect // ZeroFailures (the zero value) or a negative control's FailuresOf
	// Floor is the shortest time the disruption can take with the settings (drawn against the
	// measured time in the reports; 0: none).
	Floor time.Duration
	// OnNoise, when set, is called instead of failing the test when the gates failed only where the
	// control clients failed or stalled too (Noisy): the violations are logged and reported, and the
	// caller repeats the scenario once (e.g. OnNoise skips a first attempt's subtest, and a second
	// attempt runs without OnNoise, so that it fails if it fails again). Never set it on the repeat.
	OnNoise func(why string)
}

// End keeps the load running for the settle time (late endpoint changes are still under load), stops
// every client and returns one Run per client, not yet gated: Stop gates them; a test of the gates
// themselves calls Evaluate.
func (tr *Traffic) End(tb testing.TB, scenario string) []*Run {
	tb.Helper()
	time.Sleep(tr.o.Settle()) // the settle window the coverage gate requires, not a wait for a condition
	var inCluster []*load.Result
	if tr.podRun != "" {
		inCluster = tr.stopInCluster(tb)
	}
	tr.cancel()
	tr.wg.Wait()
	tr.o.Reports.finish(tr.load, scenario)
	beside := tr.o.Reports.beside(tr.load)
	events := tr.timeline.Stop()
	for _, err := range tr.errs {
		tb.Errorf("disrupt: %v", err)
	}
	if at := tr.timeline.WatchEnded(); !at.IsZero() {
		tb.Errorf("disrupt: %s: the watch of the namespace's pods and endpoints ended at %s, before the run did: what followed was not observed, and the reality checks cannot be trusted", scenario, at.Format("15:04:05.000"))
	}
	results := append(append([]*load.Result(nil), tr.results...), inCluster...)
	if tr.o.Kernel != nil {
		tr.o.Kernel.Flush()
		if err := tr.o.Kernel.Err(); err != nil {
			tb.Logf("%s: the kernel's record of TCP handshakes is incomplete, so no slow connect is explained by it: %v", scenario, err)
		} else {
			explainHandshakes(tr.o.Kernel.Events, results)
			tb.Logf("%s: %s", scenario, kernelSummary(tr.o.Kernel.Events, results))
		}
	}
	prop := propagation(tr.o.ProxyMetrics, tr.progBefore, tr.progBeforeErrs)
	var lagNotes []string
	if len(beside) > 0 {
		tb.Logf("%s: ran beside %s", scenario, strings.Join(beside, "; "))
	}
	if len(prop) > 0 {
		what, delay, known := preStopOf(tr.client, tr.ns, tr.target.Deployment)
		for _, p := range prop {
			tb.Logf("%s: %s (the pods' preStop: %s)", scenario, p, what)
		}
		if known {
			lagNotes = outlasted(prop, what, delay)
		}
	}
	var out []*Run
	controls := map[bool]*load.Result{} // by place: in the cluster or not
	for _, res := range results {
		if res.Control {
			controls[strings.HasPrefix(res.Name, "in-cluster")] = res
		}
	}
	for _, res := range results {
		if res.Control {
			continue
		}
		out = append(out, &Run{Scenario: scenario, Client: res.Name, Deployment: tr.target.Deployment, Load: res, Marks: tr.marks, Events: events, Changes: tr.changes,
			Propagation: prop, Lag: lagNotes, Control: controls[strings.HasPrefix(res.Name, "in-cluster")], Beside: beside})
	}
	return out
}

// Stop ends the load (End), gates every client's run against the scenario's expectation, writes the
// reports, fails tb with each violation, and returns the runs.
func (tr *Traffic) Stop(tb testing.TB, s Scenario) []*Run {
	tb.Helper()
	runs := tr.End(tb, s.Name)
	for _, r := range runs {
		r.Floor = s.Floor
	}
	tr.o.Reports.gate(tb, runs, s.Expect, tr.o.Policy(), s.OnNoise)
	return runs
}

// explainHandshakes gives every request whose connect was slow (load.SlowConnect) what the kernel
// recorded of that handshake, found by the connection's addresses while it connected.
func explainHandshakes(events func(from, to time.Time) []tcptrace.Event, results []*load.Result) {
	for _, res := range results {
		for i := range res.Requests {
			q := &res.Requests[i]
			if q.ConnectMicros == 0 || q.Local == "" || q.Remote == "" {
				continue
			}
			from := res.SentAt(*q) // the dial starts after it: no event of an earlier socket at the same address counts
			to := res.SentAt(*q).Add(q.Connect() + 50*time.Millisecond)
			h := tcptrace.Explain(events(from, to), q.Local, q.Remote, from, to)
			q.Kernel = &h
		}
	}
}

// target is the address (host:port) a client connects to: its URL's host and port, or a gRPC client's
// target.
func target(c load.Config) string {
	if c.GRPC != "" {
		return c.URL // host:port, or a name (dns:///...) no socket's address matches
	}
	u, err := url.Parse(c.URL)
	switch {
	case err != nil:
		return c.URL
	case u.Port() != "":
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// kernelSummary counts what the kernel recorded while the results' load ran: SYNs a TIME_WAIT refused
// (every socket on the machine, the kubelet's probes too), those of them the clients' sockets reset (a
// reset of an older connection's answer to a connect to a client's target, within PAWSLead of the drop),
// SYNs sent again, and the clients' slow connects it explained.
func kernelSummary(events func(from, to time.Time) []tcptrace.Event, results []*load.Result) string {
	var from, to time.Time
	slow, collided := 0, 0
	targets := map[string]bool{}
	for _, res := range results {
		targets[target(res.Config)] = true
		if from.IsZero() || res.Start.Before(from) {
			from = res.Start
		}
		if res.End.After(to) {
			to = res.End
		}
		for _, q := range res.Requests {
			if q.Kernel != nil {
				slow++
				if q.Kernel.Collided() {
					collided++
				}
			}
		}
	}
	evs := slices.Clone(events(from, to))
	slices.SortStableFunc(evs, func(a, b tcptrace.Event) int { return a.At.Compare(b.At) })
	paws, clients, syns := 0, 0, 0
	var drops []time.Time // PAWS drops no reset has been matched to yet
	for _, e := range evs {
		switch e.Kind {
		case tcptrace.PAWS:
			paws++
			drops = append(drops, e.At)
		case tcptrace.Reset:
			// A client's reset of an older connection's answer right after a PAWS drop: that drop
			// refused the client's SYN (tcptrace.Explain matches a slow connect the same way).
			for len(drops) > 0 && e.At.Sub(drops[0]) > tcptrace.PAWSLead {
				drops = drops[1:]
			}
			if targets[e.Remote] && len(drops) > 0 {
				clients++
				drops = drops[1:]
			}
		case tcptrace.Retransmit:
			syns++
		}
	}
	return fmt.Sprintf("the kernel, while the load ran: %d SYN(s) refused by a TIME_WAIT for PAWS (%s) on the whole machine, %d of them the clients' (their sockets reset the old connection's answer), and %d SYN(s) sent again; %d of the clients' connects took longer than %s, %d of them with every SYN sent again after a TIME_WAIT's answer",
		paws, tcptrace.TimeWaitPAWS, clients, syns, slow, load.SlowConnect, collided)
}
