// Package live holds what the zero-downtime live suite shares: traffic under a disruption (open-loop load
// from the host and from a pod, new connections and keep-alive POSTs, a pod/endpoint timeline, conntrack
// hygiene), the gates every run passes through (package gate), and the reports (JSON and an HTML
// timeline per run, a summary table at the end).
package live

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/go-service/go-service/gate"
	"github.com/go-service/go-service/internal/repo"
	"github.com/go-service/go-service/load"
	"github.com/go-service/go-service/test/kube"
)

var repoRoot, _ = repo.Root()

// ClearConntrack deletes the conntrack entries of connections to a Service IP, so that a run never sends
// packets along a translation left by an earlier run to a pod that no longer exists (source ports are
// reused within conntrack's timeout at hundreds of connections per second).
func ClearConntrack(tb testing.TB, ip string) {
	tb.Helper()
	out, err := exec.Command("conntrack", "-D", "-p", "tcp", "--orig-dst", ip).CombinedOutput()
	// conntrack exits 1 when there was nothing to delete.
	if err != nil && !strings.Contains(string(out), "0 flow entries have been deleted") {
		tb.Fatalf("conntrack -D --orig-dst %s: %v\n%s", ip, err, out)
	}
}

// WaitServing waits until url answers 200 on new connections several times in a row (the Service is
// programmed on this node), before any load starts.
func WaitServing(tb testing.TB, url string) {
	tb.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	streak := 0
	err := kube.Poll(context.Background(), 60*time.Second, 50*time.Millisecond, func() (bool, error) {
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

// Traffic is load running while something disrupts the pods.
type Traffic struct {
	env      *kube.Env
	ns, url  string
	timeline *Timeline
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	results  []*load.Result
	mu       sync.Mutex
	marks    []Mark
	replaced []Replaced
	podRun   string // name of the in-cluster load pod, if any
	stopped  bool
}

// Replaced is one rollout's before and after, for the reality gate.
type Replaced struct {
	What        string
	Replacement gate.Replacement
}

// TrafficOptions say which clients run. Every client is gated.
type TrafficOptions struct {
	Rate          int // host GET, new connection per request (default 200/s)
	KeepAliveRate int // host POST from a keep-alive pool (default 50/s)
	// InClusterRate and InClusterKeepAliveRate are the same two clients in a pod (defaults 100/s and
	// 50/s), sending to the Service from inside the cluster until Stop.
	InClusterRate, InClusterKeepAliveRate int
	NoInCluster                           bool // no client in a pod
	// KeepAliveQuery is a query string for the keep-alive clients' requests (e.g. "sleep=100ms", which
	// the reference app honours, so requests are always in flight on the pooled connections).
	KeepAliveQuery string
	Image          string // the image with `go-service load`, for the in-cluster clients
	// Steady is how long the load runs before StartTraffic returns, the steady-state window the
	// disruption's latency is compared with (default 3s).
	Steady time.Duration
}

func (o *TrafficOptions) defaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.Rate, 200)
	def(&o.KeepAliveRate, 50)
	def(&o.InClusterRate, 100)
	def(&o.InClusterKeepAliveRate, 50)
	if o.Steady == 0 {
		o.Steady = 3 * time.Second
	}
}

// controlPort is where the in-cluster load pod answers /healthz and /stop.
const controlPort = "8081"

// StartTraffic clears conntrack for the Service, checks it serves, starts the timeline, the in-cluster
// clients (and waits until they send), then the host clients, and returns after Steady.
func StartTraffic(t *testing.T, env *kube.Env, ns, serviceIP string, o TrafficOptions) *Traffic {
	t.Helper()
	o.defaults()
	url := fmt.Sprintf("http://%s:80/", serviceIP)
	ClearConntrack(t, serviceIP)
	WaitServing(t, url)
	tl, err := WatchNamespace(env.Client, ns)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tr := &Traffic{env: env, ns: ns, url: url, timeline: tl, cancel: cancel}
	// A test that fails before Stop (t.Fatal anywhere) still stops its load and its watches: nothing
	// keeps sending requests into the next scenario.
	t.Cleanup(func() {
		cancel()
		tr.wg.Wait()
		tl.Stop()
		if tr.podRun != "" && !tr.stopped {
			_ = env.Client.CoreV1().Pods(ns).Delete(context.Background(), tr.podRun, metav1.DeleteOptions{})
		}
	})
	if !o.NoInCluster {
		if o.Image == "" {
			t.Fatal("TrafficOptions.Image is required for the in-cluster clients")
		}
		tr.startInCluster(t, o)
	}
	// Both host clients start together at a time set here, so the steady window below is exactly Steady
	// for each of them, however late their goroutines get scheduled.
	start := time.Now().Add(100 * time.Millisecond)
	for _, cfg := range []load.Config{
		{Name: "host GET new-conn", URL: url, Rate: o.Rate, StartAt: start},
		{Name: "host POST keep-alive", URL: load.WithQuery(url, o.KeepAliveQuery), Rate: o.KeepAliveRate, KeepAlive: true, Method: http.MethodPost, StartAt: start},
	} {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			res, err := load.Run(ctx, cfg)
			if err != nil {
				t.Error(err)
				return
			}
			tr.mu.Lock()
			tr.results = append(tr.results, res)
			tr.mu.Unlock()
		}()
	}
	time.Sleep(time.Until(start.Add(o.Steady))) // a measurement window, not a wait for a condition
	return tr
}

// startInCluster runs the in-cluster clients in a pod that meets Pod Security "restricted", and waits
// until its control endpoint answers (the clients are sending).
func (tr *Traffic) startInCluster(t *testing.T, o TrafficOptions) {
	t.Helper()
	tr.podRun = fmt.Sprintf("load-%d", time.Now().UnixNano()%100000)
	no, yes, uid := false, true, int64(65532)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: tr.podRun, Labels: map[string]string{"role": "load"}},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: &yes, RunAsUser: &uid,
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers: []corev1.Container{{Name: "load", Image: o.Image, ImagePullPolicy: corev1.PullNever,
				Args: []string{"load", "-url", tr.url, "-duration", "20m", "-control", ":" + controlPort,
					"-client", fmt.Sprintf("GET:new-conn:%d", o.InClusterRate), "-client", strings.TrimSuffix(fmt.Sprintf("POST:keep-alive:%d:%s", o.InClusterKeepAliveRate, o.KeepAliveQuery), ":")},
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: &no,
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}}},
		},
	}
	ctx := context.Background()
	if _, err := tr.env.Client.CoreV1().Pods(tr.ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr.env.WaitPodPhase(t, tr.ns, tr.podRun, corev1.PodRunning, time.Minute)
	err := kube.Poll(ctx, 30*time.Second, 100*time.Millisecond, func() (bool, error) {
		_, err := tr.env.Client.CoreV1().Pods(tr.ns).ProxyGet("http", tr.podRun, controlPort, "healthz", nil).DoRaw(ctx)
		return err == nil, err
	})
	if err != nil {
		t.Fatalf("the in-cluster load pod never answered on :%s: %v\n%s", controlPort, err, tr.env.Describe(tr.ns))
	}
}

// stopInCluster stops the pod's clients and returns their results.
func (tr *Traffic) stopInCluster(t *testing.T) []*load.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data, err := tr.env.Client.CoreV1().Pods(tr.ns).ProxyGet("http", tr.podRun, controlPort, "stop", nil).DoRaw(ctx)
	if err != nil {
		t.Fatalf("stop the in-cluster load: %v\n%s", err, tr.env.Describe(tr.ns))
	}
	tr.stopped = true
	var res []*load.Result
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatalf("in-cluster load result: %v\n%.2000s", err, data)
	}
	for _, r := range res {
		r.Name = "in-cluster " + r.Mode()
	}
	return res
}

// Timeline is the pod and endpoint timeline of the run.
func (tr *Traffic) Timeline() *Timeline { return tr.timeline }

// Mark records a moment of the disruption (drawn on the timeline). The first and the last mark bound
// the disruption window the gates check.
func (tr *Traffic) Mark(what string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.marks = append(tr.marks, Mark{At: time.Now(), What: what})
}

// Replaced records a rollout's pods before and after, checked by the reality gate at Stop.
func (tr *Traffic) Replaced(r Replaced) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.replaced = append(tr.replaced, r)
}

// Stop keeps the load running for tail (kube-proxy's minSyncPeriod + 1 s at least, so late endpoint
// changes are still under load), then stops every client and returns one Run per client.
func (tr *Traffic) Stop(t *testing.T, scenario string, tail time.Duration) []*Run {
	t.Helper()
	time.Sleep(tail) // the settle window the coverage gate requires, not a wait for a condition
	var inCluster []*load.Result
	if tr.podRun != "" {
		inCluster = tr.stopInCluster(t)
	}
	tr.cancel()
	tr.wg.Wait()
	events := tr.timeline.Stop()
	results := append(append([]*load.Result(nil), tr.results...), inCluster...)
	var out []*Run
	for _, res := range results {
		out = append(out, &Run{Scenario: scenario, Client: res.Name, Load: res, Marks: tr.marks, Events: events, Replaced: tr.replaced})
	}
	return out
}

// Snapshot returns the pods a selector matches that are not terminating, by UID, with their
// pod-template-hash.
func Snapshot(tb testing.TB, env *kube.Env, ns string, selector map[string]string) gate.Pods {
	tb.Helper()
	out := gate.Pods{}
	for _, p := range env.PodsOf(tb, ns, selector) {
		if p.DeletionTimestamp == nil {
			out[string(p.UID)] = gate.Pod{Name: p.Name, Hash: p.Labels[appsv1.DefaultDeploymentUniqueLabelKey]}
		}
	}
	return out
}

// ReplicaSets returns the (spec, status) replica counts of the ReplicaSets a selector matches, by
// pod-template-hash.
func ReplicaSets(tb testing.TB, env *kube.Env, ns string, selector map[string]string) map[string][2]int32 {
	tb.Helper()
	list, err := env.Client.AppsV1().ReplicaSets(ns).List(context.Background(), metav1.ListOptions{LabelSelector: labels.SelectorFromSet(selector).String()})
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
