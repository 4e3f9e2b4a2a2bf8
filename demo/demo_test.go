// Package demo is `make demo`: the same Go service installed twice, side by side in one namespace, as
// the usual setup (`helm create`'s chart, an app that calls Shutdown on SIGTERM) and with go-service's
// defaults, under the same load, through the same three disruptions (a rolling update, a node drain, the
// eviction of one pod). It prints a verdict table, writes results/demo/index.html (both timelines on one
// scale, the settings that made the difference, the checker's messages) and checks that page in
// headless Chromium. The cluster and the releases stay up for exploration.
//
// It is a Go test because the disruption kit is built for tests; `make demo` runs it with go test -v.
package demo

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gruntwork-io/terratest/modules/helm"
	"github.com/gruntwork-io/terratest/modules/k8s"
	"github.com/gruntwork-io/terratest/modules/logger"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/go-service/go-service/cluster"
	"github.com/go-service/go-service/cluster/image"
	"github.com/go-service/go-service/disrupt"
	"github.com/go-service/go-service/internal/repo"
	"github.com/go-service/go-service/tcptrace"
	"github.com/go-service/go-service/test/kube"
	"github.com/go-service/go-service/test/tools"
)

// Namespace is where both releases run, kept after the demo for exploration.
const Namespace = "go-service-demo"

// cleanupEnv, when set, makes the demo delete its namespace at the end (make test-demo sets it).
const cleanupEnv = "GO_SERVICE_DEMO_CLEANUP"

// replicas of each release: with 4, the Deployment default maxUnavailable of 25% stops one pod at a time.
const replicas = 4

// The load on each release: the live suite's four clients, at half the suite's rates (two releases
// share the machine).
var loadOptions = disrupt.Options{Rate: 100, KeepAliveRate: 25, InClusterRate: 50, InClusterKeepAliveRate: 25,
	Host: disrupt.HostAuto, LoadImagePullPolicy: corev1.PullIfNotPresent}

// release is one of the two setups.
type release struct {
	Key, Title string
	Summary    string // one line on what it is
	chart      string
	opts       *helm.Options
	name       string // release name = Deployment and Service name
	tr         *disrupt.Traffic
	Windows    []window
	Runs       []*disrupt.Run
}

// window is one disruption of a release: from its start to its end.
type window struct {
	Name     string
	From, To time.Time
}

type demo struct {
	env      *kube.Env
	root     string
	out      string // results/demo
	tmp      string // lives as long as the demo
	releases []*release
	start    time.Time
	settings []setting
	checks   map[string][]string
	// controlURL is the control clients' Service (kube.Env.StartControl), in the demo's namespace.
	controlURL string
	// kernel is the kernel's record of TCP handshakes (nil where it cannot be read: the reports say less).
	kernel *tcptrace.Watcher
}

func TestDemo(t *testing.T) {
	root, err := repo.Root()
	require.NoError(t, err)
	d := &demo{root: root, out: filepath.Join(root, "results", "demo"), tmp: t.TempDir(), start: time.Now()}
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"tools", d.tools},
		{"cluster", d.cluster},
		{"images", d.images},
		{"install both releases", d.install},
		{"start the load on both", d.startLoad},
		{"rolling update", func(t *testing.T) { d.both(t, "rolling update", d.rollingUpdate) }},
		{"node drain", d.drain},
		{"eviction of one pod", func(t *testing.T) { d.both(t, "eviction of one pod", d.evictOne) }},
		{"stop the load", d.stop},
		{"report", d.report},
		{"check the page in Chromium", d.checkPage},
	}
	if os.Getenv(cleanupEnv) != "" {
		// CI: the suites after the demo get a quiet cluster.
		t.Cleanup(func() { d.deleteNamespace(t) })
	}
	for _, s := range steps {
		d.step(t, s.name, s.run)
	}
	if os.Getenv(cleanupEnv) != "" {
		return
	}
	fmt.Printf(`
The cluster and both releases are still running. Look around:
  export KUBECONFIG=%s
  kubectl get pods,pdb -n %s -o wide
  open %s
Stop the cluster with: make cluster-down
`, d.env.Kubeconfig, Namespace, filepath.Join(d.out, "index.html"))
}

// step runs one step, printing its start and its elapsed time, and a progress line every 10 s while it
// runs (a cold build of the cluster's components takes minutes). The steps run on the demo's own test, so
// that what they start (the load, its watches) lives until the demo ends; a failed step ends the demo.
func (d *demo) step(t *testing.T, name string, run func(t *testing.T)) {
	begin := time.Now()
	fmt.Printf("demo [%s] %s ...\n", clock(time.Since(d.start)), name)
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				fmt.Printf("demo [%s] %s: still running (%s)\n", clock(time.Since(d.start)), name, clock(time.Since(begin)))
			}
		}
	}()
	defer func() {
		close(done)
		status := "done"
		if t.Failed() {
			status = "FAILED (the cluster and namespace " + Namespace + " are left as they are for a look)"
		}
		fmt.Printf("demo [%s] %s: %s in %s\n", clock(time.Since(d.start)), name, status, clock(time.Since(begin)))
	}()
	run(t)
	if t.Failed() {
		t.FailNow()
	}
}

func clock(d time.Duration) string {
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

// tools puts the pinned helm on PATH (terratest runs helm from there).
func (d *demo) tools(t *testing.T) {
	require.NoError(t, tools.PutOnPath("helm"))
}

// cluster connects to KUBECONFIG's cluster, or starts (or reuses) the local two-node cluster, which needs
// root.
func (d *demo) cluster(t *testing.T) {
	if os.Getenv("KUBECONFIG") == "" && os.Geteuid() != 0 {
		t.Fatal("make demo starts a local Kubernetes cluster, which needs root: run it as root (or with sudo), or set KUBECONFIG to a cluster of yours")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	env, err := kube.Connect(ctx, cluster.Options{Nodes: 2})
	require.NoError(t, err)
	d.env = env
	nodes, err := env.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(nodes.Items), 2, "the node drain needs a second node to move pods to")
}

// images builds the service once and loads it twice: as go-service's default image, and for the usual
// setup as a plain net/http server (:8080, Shutdown on SIGTERM, nothing else).
func (d *demo) images(t *testing.T) {
	spec := image.Spec{Package: "./cmd/go-service", Tags: []string{"service_only"}, Binary: "/go-service"}
	spec.Ref = "go-service:0.1.0"
	d.env.Image(t, spec)
	spec.Ref, spec.Env = "go-service-usual:0.1.0", []string{"GO_SERVICE_MODE=plain"}
	d.env.Image(t, spec)
}

// deleteNamespace deletes the demo's namespace, if there is one, and waits until it is gone.
func (d *demo) deleteNamespace(t *testing.T) {
	if d.env == nil {
		return
	}
	ctx := context.Background()
	ns := d.env.Client.CoreV1().Namespaces()
	if err := ns.Delete(ctx, Namespace, metav1.DeleteOptions{}); err == nil {
		fmt.Printf("demo: deleting the namespace %s\n", Namespace)
	}
	err := kube.Poll(ctx, 3*time.Minute, 500*time.Millisecond, func() (bool, error) {
		_, err := ns.Get(ctx, Namespace, metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	})
	if err != nil {
		t.Errorf("namespace %s not deleted: %v", Namespace, err)
	}
}

// install recreates the namespace and installs both releases, waiting until they are ready.
func (d *demo) install(t *testing.T) {
	ctx := context.Background()
	d.deleteNamespace(t)
	_, err := d.env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}, metav1.CreateOptions{})
	require.NoError(t, err)
	// The control clients' Service: a stall they see too is the machine's, not a release's.
	d.controlURL, err = d.env.StartControl(ctx, Namespace, "go-service:0.1.0")
	require.NoError(t, err)

	usualChart := filepath.Join(d.tmp, "usual")
	_, err = helm.RunHelmCommandAndGetOutputE(t, &helm.Options{}, "create", usualChart)
	require.NoError(t, err)
	kubectl := k8s.NewKubectlOptions("", d.env.Kubeconfig, Namespace)
	wait := map[string][]string{"install": {"--wait", "--timeout", "3m"}}
	d.releases = []*release{
		{Key: "usual", Title: "The usual setup", name: "usual", chart: usualChart,
			Summary: "helm create's chart (maxUnavailable 25%, no preStop, one probe path, no PodDisruptionBudget) and an app that calls Shutdown on SIGTERM",
			opts: &helm.Options{KubectlOptions: kubectl, Logger: logger.Discard, ExtraArgs: wait, SetValues: map[string]string{
				"replicaCount": fmt.Sprint(replicas), "image.repository": "go-service-usual", "image.tag": "0.1.0", "service.port": "8080"}}},
		{Key: "go-service", Title: "go-service's defaults", name: "go-service", chart: filepath.Join(d.root, "charts", "go-service"),
			Summary: "the go-service chart with its defaults and the graceful package",
			opts: &helm.Options{KubectlOptions: kubectl, Logger: logger.Discard, ExtraArgs: wait, SetValues: map[string]string{
				"replicaCount": fmt.Sprint(replicas)}}},
	}
	for _, r := range d.releases {
		helm.Install(t, r.opts, r.chart, r.name)
		disrupt.WaitRolledOut(t, d.env.Client, Namespace, r.name, int32(replicas), 3*time.Minute)
	}
}

// startLoad starts the same four clients on each release.
func (d *demo) startLoad(t *testing.T) {
	if w, err := tcptrace.Start(); err != nil {
		t.Logf("the kernel's record of TCP handshakes is off (slow connects are reported without it): %v", err)
	} else {
		d.kernel = w
		t.Cleanup(func() { require.NoError(t, w.Close(), "remove the tracefs instance") })
	}
	for _, r := range d.releases {
		o := loadOptions
		o.LoadImage = "go-service:0.1.0"
		o.ControlURL, o.Kernel = d.controlURL, d.kernel
		if d.env.Local != nil {
			o.ProxyMetrics = d.env.Local.ProxyMetricsURLs()
		}
		r.tr = disrupt.Start(t, disrupt.Target{Client: d.env.Client, Namespace: Namespace, Helm: r.opts, Release: r.name,
			Deployment: r.name, Service: r.name}, o)
	}
}

// both runs a disruption on both releases at once (one subtest each), records its window per release,
// and leaves the settle time before the next.
func (d *demo) both(t *testing.T, name string, disrupt func(t *testing.T, r *release)) {
	t.Run("releases", func(t *testing.T) {
		for _, r := range d.releases {
			t.Run(r.Key, func(t *testing.T) {
				t.Parallel()
				from := time.Now()
				disrupt(t, r)
				r.Windows = append(r.Windows, window{Name: name, From: from, To: time.Now()})
			})
		}
	})
	d.releases[0].tr.Settle()
}

func (d *demo) rollingUpdate(t *testing.T, r *release) {
	r.tr.Upgrade(t, "rolling update", r.chart, map[string]string{"podAnnotations.demo": time.Now().Format("150405.000")})
}

func (d *demo) evictOne(t *testing.T, r *release) {
	r.tr.EvictOne(t, 3*time.Minute)
}

// drain cordons the node that runs pods of both releases (the most of them), evicts their pods there
// as a drain does, then makes it schedulable again.
func (d *demo) drain(t *testing.T) {
	count := map[string]int{}
	both := map[string]int{}
	for _, r := range d.releases {
		for node, pods := range r.tr.PodsByNode(t) {
			count[node] += len(pods)
			both[node]++
		}
	}
	var node string
	for n, c := range count {
		if both[n] == len(d.releases) && (node == "" || c > count[node] || c == count[node] && n < node) {
			node = n
		}
	}
	require.NotEmpty(t, node, "no node runs pods of both releases: %v", count)
	fmt.Printf("demo: draining %s (%d pods of the two releases)\n", node, count[node])
	uncordon := disrupt.Cordon(t, d.env.Client, node)
	d.both(t, "node drain", func(t *testing.T, r *release) { r.tr.EvictFrom(t, node, 3*time.Minute) })
	uncordon()
}

// stop ends both loads and evaluates every run: go-service's must lose nothing (the demo fails
// otherwise); the usual setup's are reported as they are.
func (d *demo) stop(t *testing.T) {
	reports := disrupt.NewReports(filepath.Join(d.out, "runs"))
	for _, r := range d.releases {
		r.Runs = r.tr.End(t, "demo: "+r.Title)
		disrupt.Evaluate(r.Runs, disrupt.ZeroFailures, r.tr.Options().Policy())
		for _, run := range r.Runs {
			require.NoError(t, reports.Record(run))
		}
	}
	require.NoError(t, reports.WriteIndex("make demo: every client's run"))
	for _, p := range loadProblems(d.releases) {
		t.Errorf("the demo's load: %s", p)
	}
	for _, run := range d.releases[1].Runs {
		for _, v := range run.Violations {
			t.Errorf("go-service's defaults, %s: %s", run.Client, v)
		}
	}
}

// inClusterClients are the clients every release's load runs from a pod; the host clients run too when
// the Service answers from this machine (disrupt.HostAuto), and the page says which ran.
var inClusterClients = []string{"in-cluster GET new-conn", "in-cluster POST keep-alive"}

// loadProblems lists why a verdict would rest on no load: a release without runs, a client that runs
// for one release and not the other, an in-cluster client that did not run, a run that sent nothing, a
// run whose requests were not recorded one by one.
func loadProblems(releases []*release) []string {
	var out []string
	if len(releases) == 0 {
		return []string{"no release"}
	}
	clients := map[string]int{}
	for _, r := range releases {
		if len(r.Runs) == 0 {
			out = append(out, r.Title+": no load ran")
			continue
		}
		for _, run := range r.Runs {
			clients[run.Client]++
			switch {
			case run.Load == nil || run.Load.Sent == 0:
				out = append(out, fmt.Sprintf("%s, %s: sent nothing", r.Title, run.Client))
			case len(run.Load.Requests) != run.Load.Sent:
				out = append(out, fmt.Sprintf("%s, %s: %d requests recorded of %d sent", r.Title, run.Client, len(run.Load.Requests), run.Load.Sent))
			}
		}
	}
	for _, c := range inClusterClients {
		if clients[c] == 0 {
			out = append(out, c+": did not run")
		}
	}
	for _, c := range slices.Sorted(maps.Keys(clients)) {
		if clients[c] != len(releases) {
			out = append(out, fmt.Sprintf("%s: ran for %d of the %d releases", c, clients[c], len(releases)))
		}
	}
	return out
}
